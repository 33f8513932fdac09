"""Retraining jobs in the store: submit (at most one running and one waiting per model,
later triggers merge into the waiting job), claim, record each step, finish, and mark
failed the jobs whose process died.

Queueing is decided inside one write transaction each (submit; finish-and-claim-next), so
a job is never stranded: either the runner sees the new job before it exits, or the
submitter sees no running job and starts a runner.
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from ..errors import ConflictError, NotFoundError
from ..store import Store, current_store, schema
from ..store.process import is_alive, spawn_detached, store_env, this_process
from .gate import GateResult

__all__ = [
    "STEPS",
    "RetrainingJob",
    "claim_next",
    "finish_job",
    "get_job",
    "kick_runners",
    "queue_job",
    "reap_jobs",
    "record_step",
    "retraining_jobs",
    "start_foreground",
    "start_runner",
    "start_waiting_runner",
    "submit_job",
    "trigger",
]

# The steps a job goes through, in order (the progress bar counts them).
STEPS = ("queued", "champion", "training", "register", "gate", "promote", "done")
# (a job also records "promoting" just before it moves the alias)
COLUMNS = (
    "job_id", "model", "kind", "status", "step", "trigger", "triggers", "created", "started",
    "ended", "champion", "challenger", "run_id", "parent_run_id", "holdout", "gate",
    "passed", "promoted", "error",
)  # fmt: skip
DIED = (
    "The job's process ended before the job finished (killed or crashed; its output is in "
    ".mlops/retraining/<model>.log); "
)


def _died(step: str | None) -> str:
    if step == "promoting":
        return DIED + "it died while moving the alias: mlops.model_events() shows whether it moved."
    if step in ("promote", "done"):
        return DIED + "the alias had already moved."
    return DIED + "the alias was not moved."


def trigger(kind: str, detail: str = "", **extra: Any) -> dict[str, Any]:
    """A trigger record: manual, alert, new_data, schedule or ci, with what fired it."""
    return {"kind": kind, "detail": detail, "time": time.time(), **extra}


def _trigger_text(t: dict[str, Any]) -> str:
    return f"{t['kind']}: {t['detail']}" if t.get("detail") else str(t["kind"])


def _loads(text: str | None, default: Any) -> Any:
    return json.loads(text) if text else default


@dataclass
class RetrainingJob:
    """One retraining (or CI) job: what fired it, each step, the gate's lines and whether
    the alias moved. ``wait()`` follows it with a progress bar."""

    job_id: str
    model: str
    kind: str
    status: str
    triggers: list[dict[str, Any]]
    spec: dict[str, Any]
    step: str | None
    steps: list[dict[str, Any]]
    created: float
    started: float | None
    ended: float | None
    champion: str | None
    challenger: str | None
    run_id: str | None
    parent_run_id: str | None
    holdout: dict[str, Any] | None
    gate: GateResult | None
    passed: bool | None
    promoted: bool
    error: str | None
    merged: bool = False  # submit() merged this trigger into a job already waiting
    _store: Store | None = field(default=None, repr=False, compare=False)

    @property
    def trigger(self) -> str:
        """The first trigger, as text (``alert: #12 drift …``, ``manual``)."""
        return _trigger_text(self.triggers[0]) if self.triggers else ""

    @property
    def done(self) -> bool:
        return self.status in ("finished", "failed")

    def refresh(self) -> RetrainingJob:
        """The job as the store has it now."""
        return get_job(self.job_id, self._store)

    def wait(self, timeout: float | None = None, *, progress: bool = True) -> RetrainingJob:
        """Block until the job ends (or ``timeout`` seconds), showing its steps; Ctrl-C
        stops waiting, not the job."""
        deadline = None if timeout is None else time.monotonic() + timeout
        job = self
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(STEPS) - 1, desc=f"{self.model}: {self.step or 'queued'}")
        shown = None
        checked = time.monotonic()
        try:
            while True:
                job = job.refresh()
                if not job.done and time.monotonic() - checked > 2.0:
                    checked = time.monotonic()
                    job = self._watch(job)
                if bar is not None and (job.step, job.status) != shown:
                    shown = (job.step, job.status)
                    step = "promote" if job.step == "promoting" else job.step
                    index = STEPS.index(step) if step in STEPS else 0
                    bar.n = len(STEPS) - 1 if job.done else index
                    bar.set_description(f"{job.model}: {job.step or job.status}", refresh=False)
                    bar.refresh()
                if job.done or (deadline is not None and time.monotonic() > deadline):
                    return job
                time.sleep(0.2)
        except KeyboardInterrupt:
            print(
                f"Stopped waiting; job {job.job_id[:8]} goes on in the background "
                f"(mlops.retraining_jobs({job.model!r}) shows it).",
                file=sys.stderr,
            )
            return job
        finally:
            if bar is not None:
                bar.close()

    def _watch(self, job: RetrainingJob) -> RetrainingJob:
        """While waiting: a runner that died is noticed (its job marked failed), and a job
        left waiting without a runner gets one."""
        store = self._store or current_store()
        if reap_jobs(store):
            return job.refresh()
        if job.status == "queued" and time.time() - job.created > 10.0:
            kick_runners(store)
        return job

    def to_row(self) -> dict[str, Any]:
        """The job as one row of ``retraining_jobs()``."""
        gate = self.gate
        return {
            "job_id": self.job_id,
            "model": self.model,
            "kind": self.kind,
            "status": self.status,
            "step": self.step,
            "trigger": self.trigger,
            "triggers": len(self.triggers),
            "created": self.created,
            "started": self.started,
            "ended": self.ended,
            "champion": self.champion,
            "challenger": self.challenger,
            "run_id": self.run_id,
            "parent_run_id": self.parent_run_id,
            "holdout": (self.holdout or {}).get("ref"),
            "gate": "; ".join(line.line for line in gate.lines) if gate else None,
            "passed": self.passed,
            "promoted": self.promoted,
            "error": self.error,
        }

    def _repr_html_(self) -> str:
        from ..html import job_card

        return job_card(self)

    def __repr__(self) -> str:
        outcome = "promoted" if self.promoted else ("failed" if self.status == "failed" else "")
        return (
            f"<RetrainingJob {self.job_id[:8]} {self.model} {self.status}"
            f"{' ' + outcome if outcome and outcome != self.status else ''}"
            f" trigger={self.trigger!r}>"
        )


def _from_row(row: Any, store: Store) -> RetrainingJob:
    gate = _loads(row.gate, None)
    return RetrainingJob(
        job_id=row.job_id,
        model=row.model_name,
        kind=row.kind,
        status=row.status,
        triggers=_loads(row.triggers, []),
        spec=_loads(row.spec, {}),
        step=row.step,
        steps=_loads(row.steps, []),
        created=row.created,
        started=row.started,
        ended=row.ended,
        champion=row.champion,
        challenger=row.challenger,
        run_id=row.run_id,
        parent_run_id=row.parent_run_id,
        holdout=_loads(row.holdout, None),
        gate=GateResult.from_dict(gate) if gate else None,
        passed=row.passed,
        promoted=bool(row.promoted),
        error=row.error,
        _store=store,
    )


def get_job(job_id: str, store: Store | None = None) -> RetrainingJob:
    """A job by id (or a unique prefix of at least 6 characters)."""
    store = store or current_store()
    jobs = schema.retraining_jobs
    if store.exists:
        with store.read() as conn:
            rows = conn.execute(
                sa.select(jobs).where(jobs.c.job_id.startswith(job_id, autoescape=True)).limit(2)
            ).all()
        if len(rows) == 1 and (len(job_id) >= 6 or rows[0].job_id == job_id):
            return _from_row(rows[0], store)
        if len(rows) > 1:
            raise NotFoundError(f"Job id prefix {job_id!r} is ambiguous; give more characters.")
    raise NotFoundError(f"No retraining job {job_id!r}; mlops.retraining_jobs() lists them.")


def _dead(rows: list[Any]) -> list[Any]:
    return [r for r in rows if is_alive(r.host, r.pid, r.proc_start) is False]


def _running_rows(conn: sa.Connection) -> list[Any]:
    jobs = schema.retraining_jobs
    return conn.execute(
        sa.select(jobs.c.job_id, jobs.c.host, jobs.c.pid, jobs.c.proc_start, jobs.c.step).where(
            jobs.c.status == "running"
        )
    ).all()


def _reap(conn: sa.Connection) -> list[str]:
    jobs = schema.retraining_jobs
    dead = _dead(_running_rows(conn))
    now = time.time()
    for r in dead:
        conn.execute(
            jobs.update()
            .where(jobs.c.job_id == r.job_id, jobs.c.status == "running")
            .values(status="failed", ended=now, error=_died(r.step))
        )
    return [r.job_id for r in dead]


def reap_jobs(store: Store | None = None) -> list[str]:
    """Mark failed every running job whose process on this host is gone; their ids. Only
    takes the write lock when it found one."""
    store = store or current_store()
    if not store.exists:
        return []
    with store.read() as conn:
        if not _dead(_running_rows(conn)):
            return []
    return store.write_retrying(_reap)


def _same_spec(a: dict[str, Any], b: dict[str, Any]) -> bool:
    def key(spec: dict[str, Any]) -> str:
        return json.dumps(spec, sort_keys=True, default=str)

    return key(a) == key(b)


def queue_job(
    conn: sa.Connection,
    model: str,
    spec: dict[str, Any],
    fired: list[dict[str, Any]],
    kind: str = "retrain",
) -> tuple[str, bool, bool]:
    """In the caller's write transaction: add a waiting job for ``model``, or merge
    ``fired`` into the one already waiting with the same spec. (job id, merged, whether a
    job of the model runs). A waiting job with other options is a conflict: its options
    would be lost in a merge."""
    jobs = schema.retraining_jobs
    _reap(conn)
    waiting = conn.execute(
        sa.select(jobs.c.job_id, jobs.c.triggers, jobs.c.spec)
        .where(jobs.c.model_name == model, jobs.c.status == "queued", jobs.c.kind == kind)
        .order_by(jobs.c.created)
        .limit(1)
    ).first()
    running = conn.execute(
        sa.select(sa.func.count())
        .select_from(jobs)
        .where(jobs.c.model_name == model, jobs.c.status == "running", jobs.c.kind == "retrain")
    ).scalar()
    if waiting is not None:
        if not _same_spec(_loads(waiting.spec, {}), spec):
            raise ConflictError(
                f"A retraining job of {model} with other options is already waiting "
                f"(job {waiting.job_id[:8]}); it runs after the current one. Try again once "
                "it has started, or give the same options to merge into it."
            )
        merged = [*_loads(waiting.triggers, []), *fired]
        conn.execute(
            jobs.update()
            .where(jobs.c.job_id == waiting.job_id)
            .values(triggers=json.dumps(merged, default=str))
        )
        return waiting.job_id, True, bool(running)
    job_id = uuid.uuid4().hex
    now = time.time()
    detail = "; ".join(_trigger_text(t) for t in fired)
    conn.execute(
        jobs.insert().values(
            job_id=job_id,
            model_name=model,
            kind=kind,
            status="queued",
            triggers=json.dumps(fired, default=str),
            spec=json.dumps(spec, default=str),
            step="queued",
            steps=json.dumps([{"time": now, "step": "queued", "detail": detail}]),
            created=now,
            promoted=False,
        )
    )
    return job_id, False, bool(running)


def submit_job(
    model: str,
    spec: dict[str, Any],
    fired: dict[str, Any] | list[dict[str, Any]],
    *,
    kind: str = "retrain",
    store: Store | None = None,
    start: bool = True,
) -> RetrainingJob:
    """Queue a job for ``model``; if one with the same options is already waiting, add
    ``fired`` to its triggers instead (the returned job has ``merged=True``). Starts a
    runner when none runs."""
    store = store or current_store()
    triggers = list(fired) if isinstance(fired, list) else [fired]
    job_id, merged, running = store.write_retrying(
        lambda conn: queue_job(conn, model, spec, triggers, kind)
    )
    if start and not running:
        start_runner(model, store)
    job = get_job(job_id, store)
    job.merged = merged
    return job


def start_foreground(
    model: str,
    spec: dict[str, Any],
    fired: dict[str, Any],
    *,
    kind: str,
    store: Store,
    alone: bool = False,
) -> RetrainingJob:
    """A job this process runs itself, now (a CI run, or a retraining job whose gate holds
    function objects of this process): recorded as running, so it shows with the others
    and is marked failed if this process dies. ``alone``: refuse (ConflictError) while a
    retraining job of the model runs or waits, decided in the same transaction, so at
    most one job per model still runs at a time."""
    host, pid, proc_start = this_process()
    job_id = uuid.uuid4().hex
    now = time.time()
    jobs = schema.retraining_jobs

    def work(conn: sa.Connection) -> None:
        if alone:
            _reap(conn)
            busy = conn.execute(
                sa.select(jobs.c.job_id, jobs.c.status)
                .where(
                    jobs.c.model_name == model,
                    jobs.c.kind == "retrain",
                    jobs.c.status.in_(("running", "queued")),
                )
                .limit(1)
            ).first()
            if busy is not None:
                state = "runs" if busy.status == "running" else "is waiting"
                raise ConflictError(
                    f"A retraining job of {model} {state} (job {busy.job_id[:8]}). A gate "
                    "given as a function object runs in this process and cannot wait in the "
                    "queue: try again once that job has ended, or give the function as an "
                    "import path ('mypkg.gates:fairness_ok') so the job can queue."
                )
        conn.execute(
            jobs.insert().values(
                job_id=job_id,
                model_name=model,
                kind=kind,
                status="running",
                triggers=json.dumps([fired], default=str),
                spec=json.dumps(spec, default=str),
                step="queued",
                steps=json.dumps([{"time": now, "step": "queued", "detail": _trigger_text(fired)}]),
                created=now,
                started=now,
                host=host,
                pid=pid,
                proc_start=proc_start,
                promoted=False,
            )
        )

    store.write_retrying(work)
    return get_job(job_id, store)


def start_waiting_runner(model: str, store: Store) -> bool:
    """After a job run in a foreground process: start a runner when jobs of ``model``
    queued meanwhile (their submitters saw a job running and started none)."""
    jobs = schema.retraining_jobs
    with store.read() as conn:
        statuses = set(
            conn.execute(
                sa.select(jobs.c.status).where(
                    jobs.c.model_name == model,
                    jobs.c.kind == "retrain",
                    jobs.c.status.in_(("running", "queued")),
                )
            ).scalars()
        )
    if statuses == {"queued"}:
        start_runner(model, store)
        return True
    return False


def claim_next(model: str, store: Store) -> RetrainingJob | None:
    """Take the oldest waiting job of ``model`` for this process, unless another job of
    the model is running."""
    jobs = schema.retraining_jobs
    host, pid, proc_start = this_process()

    def work(conn: sa.Connection) -> str | None:
        _reap(conn)
        retrain = (jobs.c.model_name == model, jobs.c.kind == "retrain")
        running = conn.execute(
            sa.select(jobs.c.job_id).where(*retrain, jobs.c.status == "running").limit(1)
        ).first()
        if running is not None:
            return None
        waiting = conn.execute(
            sa.select(jobs.c.job_id)
            .where(*retrain, jobs.c.status == "queued")
            .order_by(jobs.c.created)
            .limit(1)
        ).first()
        if waiting is None:
            return None
        claimed = conn.execute(  # conditional: two claimers never both win (any database)
            jobs.update()
            .where(jobs.c.job_id == waiting.job_id, jobs.c.status == "queued")
            .values(
                status="running", started=time.time(), host=host, pid=pid, proc_start=proc_start
            )
        )
        return waiting.job_id if claimed.rowcount == 1 else None

    job_id = store.write_retrying(work)
    return get_job(job_id, store) if job_id else None


def _append_step(
    conn: sa.Connection, job_id: str, step: str, detail: str, values: dict[str, Any]
) -> None:
    jobs = schema.retraining_jobs
    steps = _loads(
        conn.execute(sa.select(jobs.c.steps).where(jobs.c.job_id == job_id)).scalar(), []
    )
    steps.append({"time": time.time(), "step": step, "detail": detail})
    conn.execute(
        jobs.update()
        .where(jobs.c.job_id == job_id)
        .values(step=step, steps=json.dumps(steps, default=str), **_encode(values))
    )


def record_step(
    job_id: str, step: str, detail: str = "", store: Store | None = None, **values: Any
) -> None:
    """Append a step to the job's audit list (and set any result columns given)."""
    store = store or current_store()
    store.write_retrying(lambda conn: _append_step(conn, job_id, step, detail, values))


def _encode(values: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in values.items():
        if key in ("holdout", "gate", "spec", "triggers") and value is not None:
            value = json.dumps(value.to_dict() if hasattr(value, "to_dict") else value, default=str)
        out[key] = value
    return out


def finish_job(
    job_id: str, status: str, detail: str, store: Store | None = None, **values: Any
) -> None:
    """Close the job as ``finished`` or ``failed`` with a last audit step, in one
    transaction (the status never disagrees with the steps)."""
    store = store or current_store()
    values = {**values, "status": status, "ended": time.time()}
    step = "done" if status == "finished" else "failed"
    store.write_retrying(lambda conn: _append_step(conn, job_id, step, detail, values))


def start_runner(model: str, store: Store) -> Any:
    """A detached process that runs the model's waiting jobs one after the other: forked
    by the store's warm launcher when it runs (imports done), else a new interpreter."""
    folder = store.home / "retraining"
    folder.mkdir(parents=True, exist_ok=True)
    env = store_env(store)
    env.pop("MLOPS_JOB", None)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in model)
    log = str(folder / f"{safe}.log")
    if os.environ.get("MLOPS_LAUNCHER", "1") != "0":
        from ..serving.launcher import launch_runner

        pid = launch_runner(store.home, model, env, log)
        if pid is not None:
            return pid
    command = [_python_for(model, store), "-m", "jupyter_mlops.retraining", "--model", model]
    return spawn_detached(command, log, env)


def _python_for(model: str, store: Store) -> str:
    """The interpreter the model's waiting job asked for (the environment its kernel or
    policy was set up in), when it exists here; else this one."""
    jobs = schema.retraining_jobs
    with store.read() as conn:
        spec = conn.execute(
            sa.select(jobs.c.spec)
            .where(jobs.c.model_name == model, jobs.c.status == "queued")
            .order_by(jobs.c.created)
            .limit(1)
        ).scalar()
    python = _loads(spec, {}).get("python")
    return python if python and os.access(python, os.X_OK) else sys.executable


def kick_runners(store: Store, skip: set[str] | None = None) -> list[str]:
    """Start a runner for every model with waiting jobs and none running (a runner that
    died before claiming its job leaves one waiting); ``skip``: runners just started."""
    jobs = schema.retraining_jobs
    reap_jobs(store)
    with store.read() as conn:
        queued = set(
            conn.execute(
                sa.select(jobs.c.model_name).where(
                    jobs.c.status == "queued", jobs.c.kind == "retrain"
                )
            ).scalars()
        )
        running = set(
            conn.execute(
                sa.select(jobs.c.model_name).where(
                    jobs.c.status == "running", jobs.c.kind == "retrain"
                )
            ).scalars()
        )
    started = sorted(queued - running - (skip or set()))
    for model in started:
        start_runner(model, store)
    return started


def retraining_jobs(
    model: str | None = None, *, limit: int = 200, store: Store | None = None
) -> Any:
    """Jobs as a DataFrame, newest first: trigger, status, runs, gate lines, promoted?"""
    import pandas as pd

    store = store or current_store()
    rows: list[dict[str, Any]] = []
    if store.exists:
        reap_jobs(store)
        jobs = schema.retraining_jobs
        query = sa.select(jobs).order_by(jobs.c.created.desc()).limit(limit)
        if model is not None:
            from ..registry.references import parse_model_ref

            query = query.where(jobs.c.model_name == parse_model_ref(model).name)
        with store.read() as conn:
            rows = [_from_row(r, store).to_row() for r in conn.execute(query)]
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    for column in ("created", "started", "ended"):
        frame[column] = pd.to_datetime(frame[column], unit="s", utc=True)
    return frame
