"""``jupyter-mlops ci run``: execute a training notebook headless, judge the run it records
with the gate, register and promote on success, and write the reports a CI system reads.

The same job machinery as retraining runs it (kind ``ci``, in this process), so a CI run
appears in ``mlops.retraining_jobs()`` and the sidebar with its steps and gate lines.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ValidationError
from ..registry.references import check_model_name
from ..retraining.jobs import RetrainingJob, start_foreground, trigger
from ..retraining.runner import execute_job
from ..retraining.service import build_spec
from ..store import Store, current_store
from .reports import junit_xml, markdown_summary

__all__ = ["CiResult", "ci_run"]


@dataclass
class CiResult:
    """The job, whether it passed, and the files written."""

    job: RetrainingJob
    junit: Path | None
    summary: Path | None

    @property
    def passed(self) -> bool:
        """Finished and no check failed (a run with no gate at all passes: nothing compared)."""
        return self.job.status == "finished" and self.job.passed is not False

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    def lines(self) -> list[str]:
        """What the command prints: the verdict, the gate lines, what was registered."""
        job = self.job
        out = [f"jupyter-mlops ci: {'passed' if self.passed else 'FAILED'} (job {job.job_id[:8]})"]
        if job.run_id:
            out.append(f"  run {job.run_id[:8]}")
        if job.gate is not None:
            out += [f"  {line.line}" for line in job.gate.lines]
        if job.error:
            out.append(f"  error: {job.error}")
        if job.challenger:
            out.append(f"  registered {job.challenger}")
        if job.promoted:
            out.append(f"  promoted {job.model}@{job.spec.get('promote')} → {job.challenger}")
        for label, path in (("JUnit report", self.junit), ("summary", self.summary)):
            if path is not None:
                out.append(f"  {label}: {path}")
        return out


def ci_run(
    notebook: str | os.PathLike[str],
    *,
    parameters: dict[str, Any] | None = None,
    gates: list[str | Callable[..., Any]] | None = None,
    register: str | None = None,
    promote: str | None = None,
    champion: str | None = None,
    holdout: str | None = None,
    target: str | None = None,
    junit: str | os.PathLike[str] | None = None,
    summary: str | os.PathLike[str] | None = None,
    output: str | os.PathLike[str] | None = None,
    timeout: float | None = None,
    dry_run: bool = False,
    store: Store | None = None,
) -> CiResult:
    """Run ``notebook`` with ``parameters``, gate the model its tracked cells fitted,
    register it as ``register`` and move ``promote`` to it when every check passes
    (``dry_run``: gate against the champion of ``register`` only, change nothing).

    A gate is an expression (``"accuracy >= 0.9"`` on the holdout, ``"metrics.NAME >= 0.9"``
    on the value the run recorded, ``champion.metrics.NAME``), a function's import path
    (``"mypkg.gates:fairness_ok"``) or, from Python, a function: the job runs here."""
    store = store or current_store()
    model = register or Path(notebook).stem.replace(" ", "_")
    if register is not None:
        check_model_name(register)
    elif promote is not None:
        raise ValidationError(
            "--promote moves an alias of a registered model: add --register NAME."
        )
    elif any(isinstance(g, str) and "champion" in g for g in gates or []):
        raise ValidationError("A gate that compares with the champion needs --register NAME.")
    if promote is not None and not gates and holdout is None:
        raise ValidationError(
            "--promote needs a gate to pass: add --gate 'accuracy>=champion' and --holdout DATA."
        )
    spec = build_spec(
        model,
        notebook=notebook,
        parameters=parameters,
        gate=gates,
        holdout=holdout,
        target=target,
        promote=None if dry_run else promote,
        champion=champion or (promote if dry_run else None),
        register=register is not None and not dry_run,
        timeout=timeout,
        run_here=True,
        store=store,
    )
    if output is not None:
        spec["output"] = str(Path(output).resolve())
    detail = os.environ.get("GITHUB_SHA") or os.environ.get("CI_COMMIT_SHA") or ""
    job = start_foreground(
        model,
        spec,
        trigger("ci", f"{Path(notebook).name} {detail[:12]}".strip()),
        kind="ci",
        store=store,
    )
    job = execute_job(job, store, functions=[g for g in gates or [] if callable(g)])
    result = CiResult(job, None, None)
    if junit is not None:
        result.junit = Path(junit)
        result.junit.parent.mkdir(parents=True, exist_ok=True)
        result.junit.write_text(junit_xml(job, Path(notebook).name))
    if summary is not None:
        result.summary = Path(summary)
        result.summary.parent.mkdir(parents=True, exist_ok=True)
        result.summary.write_text(markdown_summary(job, Path(notebook).name))
    return result
