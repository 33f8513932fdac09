"""Execute a retraining or CI job, step by step, each step recorded on the job:

champion → training (replay the champion's run on new data, or run a notebook) →
register → gate (both models scored on one holdout) → promote (move the alias only if the
gate passed; deployments following the alias switch by themselves).

Any failure ends the job ``failed`` with the reason; the alias is moved last, so the
champion and its deployments are untouched by a job that fails.
"""

from __future__ import annotations

import os
import traceback
from pathlib import Path
from typing import Any

from ..errors import MlopsError, NotFoundError
from ..store import Store
from ..tracking.defaults import JOB_ENV
from ..tracking.record import Run
from .candidates import candidate_from_run, candidate_from_version, resolve_holdout
from .gate import Candidate, GateLine, GateResult, evaluate_gate, parse_gate
from .jobs import RetrainingJob, claim_next, finish_job, record_step

__all__ = ["default_gate", "execute_job", "judge", "refuse_stored_code", "run_jobs"]


def default_gate(signature: dict[str, Any]) -> list[str]:
    """No regression on the primary metric: accuracy for classifiers, r2 for regressors."""
    outputs = signature.get("outputs") or [{}]
    return ["accuracy >= champion" if outputs[0].get("classes") else "r2 >= champion"]


def refuse_stored_code(spec: dict[str, Any], functions: list[Any] | None) -> None:
    """Refuse, before anything runs, a job whose gate needs code this process does not
    have: function objects held by the process that submitted it, or functions pickled
    into the store by an older version (never unpickled: anyone who can write the store's
    database could have written them)."""
    example = "'mypkg.gates:fairness_ok'"
    if spec.get("gate_callables"):
        raise MlopsError(
            "This job's gate functions were stored pickled (by an older jupyter_mlops); code "
            "read from the store is never unpickled, since anyone who can write the store's "
            "database could have written it. Give gate functions as import paths, e.g. "
            f"gate=[{example}] (imported where the job runs), and submit the job again "
            "(for a policy: set it again with mlops.retrain_policy)."
        )
    held = spec.get("gate_functions") or []
    if held and functions is None:
        names = ", ".join(str(n) for n in held)
        raise MlopsError(
            f"This job's gate functions ({names}) were Python objects of the process that "
            "submitted it, which this runner cannot have (that process ended before running "
            f"the job). Give them as import paths, e.g. gate=[{example}], imported in the "
            "runner's environment, and submit the job again."
        )


def judge(
    spec: dict[str, Any],
    challenger: Candidate,
    champion_mv: Any,
    store: Store,
    model: str,
    functions: list[Any] | None = None,
) -> GateResult:
    """Evaluate the job's gate; a holdout that cannot be used is a FAIL line, not a crash.
    With no check at all (no gate, no holdout), nothing is compared: a SKIP line, and
    ``compared`` is False so the job does not promote."""
    texts = list(spec.get("gate") or [])
    if not texts and spec.get("holdout"):
        texts = default_gate(challenger.signature)
    items = parse_gate(texts) + parse_gate(functions or [])
    champion = candidate_from_version(champion_mv, store) if champion_mv is not None else None
    holdout, problem = None, None
    if spec.get("holdout"):
        try:
            holdout = resolve_holdout(
                spec["holdout"],
                [c for c in (challenger, champion) if c is not None],
                target=spec.get("target"),
                model_name=model,
                store=store,
            )
        except MlopsError as exc:
            problem = GateLine("holdout", "FAIL", str(exc))
    result = evaluate_gate(items, challenger, champion, holdout)
    if problem is not None:
        result.lines.append(problem)
    if not items:
        result.compared = False
        result.lines.append(
            GateLine(
                "compare with the champion",
                "SKIP",
                "no gate and no holdout given: registered, not promoted",
            )
        )
    return result


def _champion(model: str, alias: str, store: Store) -> Any:
    from ..registry.service import get_model_version

    try:
        return get_model_version(f"{model}@{alias}", store)
    except NotFoundError:
        return None


def _bindings(spec: dict[str, Any], source: Run, store: Store) -> dict[str, str]:
    """``data`` as given; unnamed inputs of a run follow their dataset to ``@latest``."""
    from ..data.versions import refs_for

    given = dict(spec.get("data") or {})
    if given or spec.get("snapshots"):
        return given
    inputs = [i for i in source.inputs if i["role"] == "input"]
    refs = refs_for([i["data_version_id"] for i in inputs if i.get("data_version_id")], store)
    out = {}
    for item in inputs:
        ref = refs.get(item.get("data_version_id"))
        if ref:
            out[item["name"]] = ref.rsplit("@", 1)[0] + "@latest"
    return out


def _event(model: str, kind: str, detail: str, store: Store) -> None:
    from ..registry.service import record_event

    try:
        record_event(model, kind, detail=detail, store=store)
    except NotFoundError:  # a CI job's first model is not registered yet
        pass


def _train(job: RetrainingJob, source: Any, store: Store) -> tuple[Run, dict[str, Any]]:
    """The challenger's run and its model artifact."""
    spec = job.spec
    if spec.get("notebook"):
        from .notebook import execute_notebook, job_runs, pick_run

        output = Path(spec.get("output") or store.home / "jobs" / job.job_id / "executed.ipynb")
        record_step(job.job_id, "training", f"executing {spec['notebook']}", store)
        executed = execute_notebook(
            spec["notebook"],
            output,
            parameters=spec.get("parameters"),
            job_id=job.job_id,
            store=store,
            timeout=spec.get("timeout"),
        )
        run, artifact = pick_run(job_runs(job.job_id, store), job.model)
        from ..tracking.writer import attach_artifact

        attach_artifact(
            store, run.run_id, "executed_notebook", executed.read_bytes(), format="ipynb"
        )
        return run, artifact
    from ..tracking.replay import replay

    if source is None:
        raise NotFoundError(
            f"Model {job.model!r} has no version to retrain: register one first, or give "
            "notebook= to train it from a notebook."
        )
    data = _bindings(spec, source.run, store)
    shown = ", ".join(f"{k}={v}" for k, v in data.items()) or "its snapshots"
    record_step(job.job_id, "training", f"replaying run {source.run_id[:8]} on {shown}", store)
    run = replay(
        source.run_id,
        data=data or None,
        name=f"{job.model} retrain",
        tags={"trigger": job.trigger, "mlops.job": job.job_id},
        store=store,
    )
    if run.status != "finished":
        raise MlopsError(f"The replayed run {run.run_id[:8]} ended {run.status}: {run.error}")
    artifact = next((a for a in run.models if a["name"] == source.artifact), None)
    if artifact is None:
        raise MlopsError(
            f"The replayed run {run.run_id[:8]} saved no model {source.artifact!r}; "
            f"its models: {[a['name'] for a in run.models]}."
        )
    return run, artifact


def execute_job(
    job: RetrainingJob, store: Store, functions: list[Any] | None = None
) -> RetrainingJob:
    """Run every step of ``job`` (already claimed by this process). ``functions``: the
    gate's function objects, when this process submitted the job with them."""
    from ..registry.service import archive, register, set_alias

    spec, model = job.spec, job.model
    # The champion is the version behind the alias the job would move (production unless
    # told), or behind ``champion`` (a CI run promoting to staging may compare with production).
    alias = spec.get("champion") or spec.get("promote") or "production"
    target_alias = spec.get("promote") or None
    promoted = False
    try:
        os.environ[JOB_ENV] = job.job_id
        _event(model, "retraining_started", f"job {job.job_id[:8]}: {job.trigger}", store)
        # Before training, so a refusal costs nothing: code this process lacks, and the
        # gate's expressions and import paths (checked at submit too; a stored spec may be
        # old, and an import path is resolved here, in the runner's environment).
        refuse_stored_code(spec, functions)
        parse_gate(spec.get("gate"))
        champion = _champion(model, alias, store)
        source = champion or _champion(model, "latest", store)
        record_step(
            job.job_id,
            "champion",
            f"{champion.ref} ({alias})" if champion else f"no {model}@{alias} yet",
            store,
            champion=champion.ref if champion else None,
            parent_run_id=source.run_id if source else None,
        )
        run, artifact = _train(job, source, store)
        record_step(
            job.job_id, "training", f"run {run.run_id[:8]} finished", store, run_id=run.run_id
        )
        mv = None
        if job.kind == "retrain":  # a retraining job registers its challenger first
            mv = register(run, model, model=artifact["name"], store=store)
            record_step(job.job_id, "register", mv.ref, store, challenger=mv.ref)
            challenger = candidate_from_version(mv, store)
        else:
            challenger = candidate_from_run(run, artifact, store)
        result = judge(spec, challenger, champion, store, model, functions)
        verdict = "passed" if result.passed else f"failed: {result.failures[0].line}"
        record_step(
            job.job_id,
            "gate",
            verdict if result.compared else "nothing compared",
            store,
            gate=result,
            passed=result.passed if result.compared else None,
            holdout=result.holdout,
        )
        if not result.passed and mv is not None:
            # A rejected challenger leaves @latest and the listings (loadable by number).
            archive(mv.ref, reason=f"gate failed in retraining job {job.job_id[:8]}", store=store)
        if result.passed and spec.get("register", True) and mv is None:
            mv = register(run, model, model=artifact["name"], store=store)
            record_step(job.job_id, "register", mv.ref, store, challenger=mv.ref)
        if result.passed and result.compared and mv is not None and target_alias:
            reason = f"{job.kind} job {job.job_id[:8]} ({job.trigger}): gate passed"
            # Only if the alias is where the job found it (a person may have moved it).
            before = champion if target_alias == alias else _champion(model, target_alias, store)
            expected = before.version if before is not None else None
            record_step(job.job_id, "promoting", f"{model}@{target_alias} → {mv.ref}", store)
            set_alias(
                model, target_alias, mv.version, reason=reason, expected=expected, store=store
            )
            promoted = True
            record_step(job.job_id, "promote", f"{model}@{target_alias} → {mv.ref}", store)
        if promoted:
            detail = f"{mv.ref} promoted to {target_alias}"
        elif not result.passed:
            detail = "gate failed, not promoted" + (f"; {mv.ref} archived" if mv else "")
        elif not result.compared:
            detail = f"{mv.ref if mv else 'the challenger'} not compared, not promoted"
        else:
            detail = "gate passed" + (f", {mv.ref} registered" if mv else "") + ", not promoted"
        finish_job(job.job_id, "finished", detail, store, promoted=promoted)
        _event(model, "retraining_finished", f"job {job.job_id[:8]}: {detail}", store)
    except BaseException as exc:
        message = str(exc) if isinstance(exc, MlopsError) else _describe(exc, promoted)
        try:
            finish_job(job.job_id, "failed", message, store, error=message, promoted=promoted)
            _event(model, "retraining_failed", f"job {job.job_id[:8]}: {message}", store)
        except Exception:
            pass  # the reaper marks it failed once this process is gone
        if not isinstance(exc, Exception):
            raise
    finally:
        os.environ.pop(JOB_ENV, None)
    return job.refresh()


def _describe(exc: BaseException, promoted: bool = False) -> str:
    if isinstance(exc, KeyboardInterrupt | SystemExit):
        if promoted:
            return "The job was interrupted after its alias moved."
        return "The job was interrupted; the champion was not changed."
    last = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" (at {Path(last[0].filename).name}:{last[0].lineno})" if last else ""
    return f"{type(exc).__name__}: {exc}{where}"


def run_jobs(model: str, store: Store) -> int:
    """Run ``model``'s waiting jobs one after another until none is left; how many ran."""
    count = 0
    while (job := claim_next(model, store)) is not None:
        execute_job(job, store)
        count += 1
    return count
