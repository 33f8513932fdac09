"""One round of automation (due monitors, then due retraining policies) and the loop
``jupyter-mlops scheduler`` runs; the server extension's background loop calls the same
``run_round``. A failing monitor or policy is reported and the loop goes on."""

from __future__ import annotations

import signal
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from ..store import Store, current_store

__all__ = ["RoundReport", "run_round", "run_scheduler"]


@dataclass
class RoundReport:
    """What one round did."""

    checks: list[Any] = field(default_factory=list)
    jobs: list[Any] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [
            f"check {c.model}@{c.version}: {c.state}, {c.rows:,} rows"
            + (f", opened {', '.join(a['subject'] for a in c.opened)}" if c.opened else "")
            for c in self.checks
        ]
        out += [
            f"retrain {j.model}: job {j.job_id[:8]} "
            + ("merged into the waiting job" if j.merged else "queued")
            + f" ({j.trigger})"
            for j in self.jobs
        ]
        return out + [f"error: {e}" for e in self.errors]


def run_round(
    *, now: float | None = None, monitors: bool = True, store: Store | None = None
) -> RoundReport:
    """Check due monitors (their alerts may fire policies), then start due retraining."""
    from ..monitoring.monitor import run_due_monitors
    from .policy import run_due_policies

    store = store or current_store()
    report = RoundReport()
    if monitors:
        try:
            report.checks = run_due_monitors(now=now, store=store)
        except Exception as exc:
            report.errors.append(f"monitors: {type(exc).__name__}: {exc}")
    try:
        report.jobs = run_due_policies(now=now, store=store)
    except Exception as exc:
        report.errors.append(f"retraining policies: {type(exc).__name__}: {exc}")
    return report


def run_scheduler(*, interval: float = 30.0, once: bool = False, monitors: bool = True) -> int:
    """Run rounds every ``interval`` seconds until interrupted (SIGTERM or Ctrl-C)."""
    stopping = False

    def stop(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    store = current_store()
    print(f"jupyter-mlops scheduler on {store.describe()}, every {interval:g}s", flush=True)
    try:
        while not stopping:
            started = time.monotonic()
            report = run_round(monitors=monitors, store=store)
            for line in report.lines():
                print(time.strftime("%H:%M:%S"), line, flush=True)
            if once:
                return 1 if report.errors else 0
            while not stopping and time.monotonic() - started < interval:
                time.sleep(min(0.5, interval))
    except KeyboardInterrupt:
        pass
    print("jupyter-mlops scheduler stopped", file=sys.stderr, flush=True)
    return 0
