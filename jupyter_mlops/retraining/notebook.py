"""Run a training notebook headless with papermill (parameters go into the cell tagged
``parameters``) and collect the runs its ``%%track`` cells recorded.

The kernel inherits the job's id (``MLOPS_JOB``) and the store's location, so every run it
records is tagged with the job and lands in the same store.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from ..errors import MlopsError, NotFoundError, ValidationError
from ..store import Store, schema
from ..store.process import store_env
from ..tracking.defaults import JOB_ENV
from ..tracking.record import Run, get_run

__all__ = ["NotebookFailed", "execute_notebook", "job_runs", "pick_run"]


class NotebookFailed(MlopsError):
    """The notebook raised; the message names the cell and the error."""


@contextmanager
def _job_environment(job_id: str, store: Store, kernel_log: Path) -> Iterator[None]:
    """The kernel inherits the job id and the store; its own stderr (start-up warnings,
    shutdown noise) goes to ``kernel_log`` rather than into the CI output."""
    saved = dict(os.environ)
    os.environ.update(store_env(store))
    os.environ[JOB_ENV] = job_id
    sys.stderr.flush()
    stderr = os.dup(2)
    with open(kernel_log, "ab") as log:
        os.dup2(log.fileno(), 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(stderr, 2)
        os.close(stderr)
        os.environ.clear()
        os.environ.update(saved)


def execute_notebook(
    path: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    parameters: Mapping[str, Any] | None = None,
    job_id: str,
    store: Store,
    timeout: float | None = None,
) -> Path:
    """Execute ``path`` into ``output`` in a fresh kernel, in the notebook's folder."""
    source = Path(path).expanduser().resolve()
    if not source.is_file():
        raise NotFoundError(f"No notebook at {source}.")
    if source.suffix != ".ipynb":
        raise ValidationError(f"{source.name} is not a notebook (.ipynb).")
    target = Path(output).resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    import papermill
    from papermill.exceptions import PapermillExecutionError

    with _job_environment(job_id, store, target.with_suffix(".kernel.log")):
        try:
            papermill.execute_notebook(
                str(source),
                str(target),
                parameters=dict(parameters or {}),
                cwd=str(source.parent),
                execution_timeout=int(timeout) if timeout else None,
                progress_bar=False,
                log_output=False,
                kernel_name="python3",
                # parameters are written as Python even when the notebook names no
                # language (one made with nbformat, never opened in Jupyter)
                language="python",
            )
        except PapermillExecutionError as exc:
            raise NotebookFailed(
                f"{source.name} raised in cell {exc.exec_count or exc.cell_index}: "
                f"{exc.ename}: {exc.evalue} (the executed notebook is at {target})."
            ) from None
        except Exception as exc:
            raise NotebookFailed(
                f"{source.name} could not be executed: {type(exc).__name__}: {exc}"
            ) from None
    return target


def job_runs(job_id: str, store: Store) -> list[Run]:
    """The runs recorded for a job (tagged ``mlops.job``), oldest first."""
    t, r = schema.tags, schema.runs
    with store.read() as conn:
        ids = conn.execute(
            sa.select(r.c.run_id)
            .join(t, t.c.run_id == r.c.run_id)
            .where(t.c.key == "mlops.job", t.c.value == job_id)
            .order_by(r.c.start_time)
        ).scalars()
        ids = list(ids)
    return [get_run(i, store) for i in ids]


def pick_run(runs: list[Run], model: str) -> tuple[Run, dict[str, Any]]:
    """The run (and its model artifact) a job judges: the newest finished run that saved a
    model, preferring runs whose cell says ``%%track --register <model>``."""
    candidates = [run for run in runs if run.status == "finished" and run.models]
    if not candidates:
        seen = ", ".join(f"{r.name} ({r.status})" for r in runs) or "none"
        raise MlopsError(
            f"The notebook recorded no finished run with a model (runs: {seen}). Fit the "
            "model in a %%track cell (or call mlops.log_model) so the job can judge it."
        )
    named = [r for r in candidates if r.tags.get("mlops.register") == model]
    run = (named or candidates)[-1]
    wanted = run.tags.get("mlops.register_model") or None
    models = run.models
    if wanted:
        chosen = [m for m in models if m["name"] == wanted]
    else:
        chosen = models if len(models) == 1 else []
    if not chosen:
        raise MlopsError(
            f"Run {run.run_id[:8]} saved several models ({', '.join(m['name'] for m in models)}); "
            "say which with %%track --register NAME --model VAR."
        )
    return run, chosen[0]
