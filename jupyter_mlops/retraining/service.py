"""``retrain``: check what a retraining job needs before anything runs, queue the job and
follow it. The job itself runs in a separate process (``runner``), so it survives the
kernel and never blocks it; a job whose gate holds function objects runs in the process
that holds them, in the foreground (a job row in the store carries only text)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..errors import NotFoundError, ValidationError
from ..registry.references import check_alias, check_model_name, parse_model_ref
from ..store import Store, current_store
from .gate import CallableCheck, GateItem, MetricCheck, import_path, parse_gate
from .jobs import RetrainingJob, start_foreground, start_waiting_runner, submit_job, trigger

__all__ = ["build_spec", "retrain", "retrain_defaults"]

GateSpec = Iterable[str | Callable[..., Any]] | str | None


def _data(data: Mapping[str, Any] | None, model: str, store: Store) -> dict[str, str]:
    """Data references as given; frames are saved first (``<model>/<input>``), so the job
    process and the audit trail see a stored version."""
    import pandas as pd

    from ..data.versions import resolve, snapshot

    out: dict[str, str] = {}
    for name, value in dict(data or {}).items():
        if isinstance(value, pd.DataFrame | pd.Series):
            out[name] = snapshot(value, f"{model}/{name}", store=store, reuse_any=True).ref
        elif isinstance(value, str):
            resolve(value, store)  # a wrong name fails now, with close matches
            out[name] = value
        else:
            raise ValidationError(
                f"data[{name!r}] must be a data reference ('name@latest') or a DataFrame, "
                f"got {type(value).__name__}."
            )
    return out


def _holdout(holdout: Any, model: str, store: Store, *, later: bool) -> str | None:
    """The holdout as a reference; ``later``: the training notebook may create it, so
    only its form is checked now."""
    import pandas as pd

    from ..data.references import parse_data_ref
    from ..data.versions import resolve, snapshot

    if holdout is None:
        return None
    if isinstance(holdout, pd.DataFrame):
        return snapshot(holdout, f"{model}/holdout", store=store, reuse_any=True).ref
    if not isinstance(holdout, str):
        raise ValidationError("holdout must be a data reference ('name@vN') or a DataFrame.")
    if later:
        parse_data_ref(holdout)
        return holdout
    version = resolve(holdout, store)
    return holdout if parse_data_ref(holdout).latest else version.ref


def _refuse_objects(objects: list[CallableCheck]) -> None:
    names = ", ".join(item.label for item in objects)
    one = len(objects) == 1
    paths = [import_path(item.fn) for item in objects]
    if all(paths):
        shown = ", ".join(repr(p) for p in paths)
        hint = f"gate={shown}" if len(paths) == 1 else f"gate=[{shown}]"
    else:
        hint = "gate=['mypkg.gates:fairness_ok'] (a function in a module, not a lambda)"
    what = (
        f"function {names} is a Python object" if one else f"functions {names} are Python objects"
    )
    it = "it" if one else "them"
    raise ValidationError(
        f"The gate {what}, which only this process holds: a job that runs elsewhere "
        f"(retrain(..., wait=False), a retraining policy) cannot have {it}. Give {it} as "
        f"an import path, {hint}, imported in the runner's environment; or run the job "
        "here with mlops.retrain(..., wait=True)."
    )


def _recorded(run: Any) -> set[str]:
    return set(run.metrics) if run is not None else set()


def _check_recorded(
    parsed: list[GateItem], model: str, alias: str, replay: bool, store: Store
) -> None:
    """Refuse now a recorded metric that a run will not have, when that can be known: the
    champion's run for ``champion.metrics.NAME``; for a replay, ``metrics.NAME`` too (the
    replayed code records what the replayed run recorded)."""
    from ..registry.service import get_model_version

    checks = [i for i in parsed if isinstance(i, MetricCheck)]
    if not any(i.recorded or i.champion_recorded for i in checks):
        return

    def version(ref: str) -> Any:
        try:
            return get_model_version(ref, store)
        except NotFoundError:
            return None

    champion = version(f"{model}@{alias}")
    source = champion or (version(f"{model}@latest") if replay else None)
    for item in checks:
        wanted = [(champion, "champion", m) for m in item.champion_recorded]
        if replay:
            wanted += [(source, "replayed", m) for m in item.recorded]
        for mv, who, metric in wanted:
            if mv is None or metric in _recorded(mv.run):
                continue
            have = ", ".join(sorted(_recorded(mv.run))) or "none"
            raise ValidationError(
                f"Gate {item.text!r}: the {who} run of {mv.ref} (run {mv.run_id[:8]}) recorded "
                f"no metric {metric!r}; it recorded: {have}."
            )


def build_spec(
    model: str,
    *,
    data: Mapping[str, Any] | None = None,
    notebook: str | os.PathLike[str] | None = None,
    parameters: Mapping[str, Any] | None = None,
    gate: GateSpec = None,
    holdout: Any = None,
    target: str | None = None,
    promote: str | None = "production",
    champion: str | None = None,
    register: bool = True,
    timeout: float | None = None,
    run_here: bool = False,
    store: Store,
) -> dict[str, Any]:
    """A job's specification, checked now: model and alias names, gate expressions,
    metric names and import paths (imported here), data and holdout references, the
    notebook path. ``run_here``: the job runs in this process, so the gate may hold
    function objects (recorded by name only; anywhere else they are refused)."""
    check_model_name(model)
    alias = promote or "production"
    check_alias(alias)
    if champion is not None:
        check_alias(champion)
    items = gate_items(gate)
    parsed = parse_gate(items)
    objects = [i for i in parsed if isinstance(i, CallableCheck) and i.path is None]
    if objects and not run_here:
        _refuse_objects(objects)
    scores_models = any(getattr(item, "metrics", None) for item in parsed)
    if scores_models and holdout is None:
        raise ValidationError(
            "The gate scores the models, so it needs a holdout: pass holdout='name@vN' (a "
            "stored data version with the model's inputs and its label, that no model was "
            "fitted on); or gate on the run's recorded metric, 'metrics.NAME >= …'."
        )
    spec: dict[str, Any] = {
        # The interpreter of whoever asked (a kernel's environment), which a runner started
        # later by the server extension's loop or the scheduler uses too.
        "python": sys.executable,
        # Text only (expressions and import paths): a job row is data, never code.
        "gate": [g for g in items if isinstance(g, str)],
        "promote": alias if promote is not None else False,
        "champion": champion,
        "register": register,
        "target": target,
        "timeout": timeout,
    }
    if objects:
        spec["gate_functions"] = [item.label for item in objects]  # held by this process
    if notebook is not None:
        path = os.path.abspath(os.fspath(notebook))
        if not os.path.isfile(path):
            raise NotFoundError(f"No notebook at {path}.")
        spec["notebook"] = path
        spec["parameters"] = dict(parameters or {})
    else:
        from ..registry.service import get_model_version

        get_model_version(f"{model}@latest", store)  # nothing to replay: say so now
        if parameters:
            raise ValidationError("parameters= goes with notebook=; a replay takes data=.")
    _check_recorded(parsed, model, champion or alias, notebook is None, store)
    spec["data"] = _data(data, model, store)
    spec["holdout"] = _holdout(holdout, model, store, later=notebook is not None)
    return spec


def retrain(
    model: str,
    data: Mapping[str, Any] | None = None,
    *,
    notebook: str | os.PathLike[str] | None = None,
    parameters: Mapping[str, Any] | None = None,
    gate: GateSpec = None,
    holdout: Any = None,
    target: str | None = None,
    promote: str | None = "production",
    wait: bool = True,
    timeout: float | None = None,
    store: Store | None = None,
) -> RetrainingJob:
    """Retrain ``model`` now in a separate process: replay the champion's training run on
    the latest data (or ``data={"df": "name@v4"}``, or run ``notebook``), register the
    challenger, judge it with ``gate`` on ``holdout`` and move ``promote`` to it if it
    passes. Returns the job, finished when ``wait`` (with a progress bar; ``timeout``
    seconds at most, after which the job goes on in the background).

    ``gate`` takes expressions (``"f1 >= champion"``, ``"metrics.accuracy >= 0.9"``),
    import paths of functions (``"mypkg.gates:fairness_ok"``, imported where the job runs)
    and function objects; a gate with function objects runs the job in this process, to
    its end (``wait=False`` refuses them: give an import path)."""
    store = store or current_store()
    ref = parse_model_ref(model)
    name = ref.name
    if ref.alias is not None and promote == "production":
        promote = ref.alias  # retrain("churn@staging"): the staging champion, moved if it passes
    spec = build_spec(
        name,
        data=data,
        notebook=notebook,
        parameters=parameters,
        gate=gate,
        holdout=holdout,
        target=target,
        promote=promote,
        run_here=bool(wait),
        store=store,
    )
    if spec.get("gate_functions"):
        return _run_here(name, spec, [g for g in gate_items(gate) if callable(g)], store)
    job = submit_job(name, spec, trigger("manual"), store=store)
    if job.merged:
        print(
            f"A retraining job of {name} is already waiting ({job.job_id[:8]}); "
            "this request was merged into it.",
        )
    return job.wait(timeout) if wait else job


_PRIMARY = ("accuracy", "f1", "roc_auc", "r2", "test_accuracy", "val_accuracy")


def retrain_defaults(model: str, *, store: Store | None = None) -> dict[str, Any]:
    """What a retraining of ``model`` without a policy starts from (the sidebar's retrain
    form shows it, to change before submitting): replay the run of its champion
    (``production``, else the latest version) on the latest version of each dataset that
    run read, judge the challenger by the run's primary recorded metric against the
    champion's (no holdout needed), and move ``production`` if it passes."""
    from ..data.versions import refs_for
    from ..registry.service import get_model_version

    store = store or current_store()
    name = parse_model_ref(model).name
    try:
        champion = get_model_version(f"{name}@production", store)
        alias = "production"
    except NotFoundError:
        champion, alias = get_model_version(f"{name}@latest", store), None
    run = champion.run if champion.run_id else None
    inputs = [i for i in (run.inputs if run is not None else []) if i["role"] == "input"]
    refs = refs_for([i.get("data_version_id") for i in inputs], store)
    data = {}
    for item in inputs:
        ref = refs.get(item.get("data_version_id"))
        if ref:
            data[item["name"]] = ref.rsplit("@", 1)[0] + "@latest"
    metrics = list(run.metrics) if run is not None else []
    primary = next((m for m in _PRIMARY if m in metrics), metrics[0] if metrics else None)
    gate = [f"metrics.{primary} >= champion.metrics.{primary}"] if primary else []
    return {
        "model": name,
        "champion": champion.ref,
        "champion_alias": alias,
        "data": data,
        "gate": gate,
        "holdout": None,
        "target": None,
        "promote": "production",
        "metrics": metrics,
    }


def gate_items(gate: GateSpec) -> list[Any]:
    """The gate as a list of items."""
    return [gate] if isinstance(gate, str) or callable(gate) else list(gate or [])


def _run_here(
    model: str, spec: dict[str, Any], functions: list[Any], store: Store
) -> RetrainingJob:
    """The job in this process, its gate functions passed along (never stored); then a
    runner for any job that queued meanwhile."""
    from .runner import execute_job

    job = start_foreground(model, spec, trigger("manual"), kind="retrain", store=store, alone=True)
    try:
        return execute_job(job, store, functions=functions)
    finally:
        start_waiting_runner(model, store)
