"""The server extension's background loop: every ``interval`` seconds it health-checks the
deployments, aggregates their recent traffic (requests and p50 latency over the last hour,
for the sidebar), checks due monitors and starts due retraining policies.

The work runs in a thread of the server's executor, never on its event loop; ``tick``
takes ``now`` so tests drive it with a controlled clock.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import Executor
from typing import Any

from ..store import Store

__all__ = ["AutomationLoop"]

log = logging.getLogger("jupyter_mlops.server")


def _traffic(store: Store, deployment_ids: list[str], now: float) -> dict[str, dict[str, Any]]:
    """{deployment id: {requests_1h, p50_ms}} from the inference log segments each
    deployment wrote in the last hour."""
    import numpy as np
    import sqlalchemy as sa

    from ..serving.inference_log import read_segments
    from ..store import schema

    seg = schema.inference_segments
    since = now - 3600

    def listing() -> list[Any]:
        with store.read() as conn:
            return conn.execute(
                sa.select(seg).where(
                    seg.c.deployment_id.in_(deployment_ids), seg.c.time_max >= since
                )
            ).all()

    latencies: dict[str, list[Any]] = {}
    requests: dict[str, set[str]] = {}
    for row, table in read_segments(store, listing, ["request_id", "time", "latency_ms"]):
        deployment_id = row.deployment_id
        times = table.column("time").to_numpy()
        keep = times >= since
        latencies.setdefault(deployment_id, []).append(table.column("latency_ms").to_numpy()[keep])
        ids = np.asarray(table.column("request_id").to_pylist(), dtype=object)[keep]
        requests.setdefault(deployment_id, set()).update(i.split(":", 1)[0] for i in ids)
    out: dict[str, dict[str, Any]] = {}
    for deployment_id, parts in latencies.items():
        values = np.concatenate(parts) if parts else np.array([])
        if len(values):
            out[deployment_id] = {
                "requests_1h": len(requests[deployment_id]),
                "p50_ms": round(float(np.median(values)), 3),
            }
    return out


class AutomationLoop:
    """Health, traffic, monitors and retraining policies on a timer."""

    def __init__(self, store: Store, *, interval: float = 30.0, executor: Executor | None = None):
        self.store = store
        self.interval = interval
        self.executor = executor
        self.traffic: dict[str, dict[str, Any]] = {}
        self.health: dict[str, str] = {}
        self.last_round: dict[str, Any] = {}
        self.rounds = 0
        self._task: asyncio.Task[None] | None = None

    def run_once(self, now: float | None = None) -> dict[str, Any]:
        """One round, synchronously (what ``tick`` runs in the executor)."""
        from ..retraining.scheduler import run_round
        from ..serving.deployments import deployments

        now = time.time() if now is None else now
        started = time.perf_counter()
        summary: dict[str, Any] = {"time": now, "errors": []}
        if self.store.exists:
            try:
                frame = deployments(store=self.store)
                self.health = dict(zip(frame.deployment_id, frame.status, strict=True))
                self.traffic = _traffic(self.store, list(frame.deployment_id), now)
            except Exception as exc:
                summary["errors"].append(f"deployments: {type(exc).__name__}: {exc}")
            report = run_round(now=now, store=self.store)
            summary["checks"] = [f"{c.model}@{c.version}: {c.state}" for c in report.checks]
            summary["jobs"] = [j.job_id for j in report.jobs]
            summary["errors"] += report.errors
        summary["elapsed_ms"] = round((time.perf_counter() - started) * 1000, 1)
        for error in summary["errors"]:
            log.warning("jupyter_mlops background loop: %s", error)
        self.rounds += 1
        self.last_round = summary
        return summary

    async def tick(self, now: float | None = None) -> dict[str, Any]:
        """One round in the executor, so the event loop keeps serving requests."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, self.run_once, now)

    async def _run(self) -> None:
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:  # a broken round must not stop the loop
                log.exception("jupyter_mlops background loop round failed")
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        """Run rounds every ``interval`` seconds on the running event loop."""
        if self._task is None and self.interval > 0:
            self._task = asyncio.get_running_loop().create_task(self._run())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
