"""``retrain``: check what a retraining job needs before anything runs, queue the job and
follow it. The job itself runs in a separate process (``runner``), so it survives the
kernel and never blocks it."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..errors import NotFoundError, ValidationError
from ..registry.references import check_alias, check_model_name, parse_model_ref
from ..store import Store, current_store
from .gate import parse_gate
from .jobs import RetrainingJob, submit_job, trigger

__all__ = ["build_spec", "retrain"]

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
    store: Store,
) -> dict[str, Any]:
    """A job's specification, checked now: model and alias names, gate expressions and
    metric names, data and holdout references, the notebook path."""
    check_model_name(model)
    alias = promote or "production"
    check_alias(alias)
    if champion is not None:
        check_alias(champion)
    items = [gate] if isinstance(gate, str) or callable(gate) else list(gate or [])
    parsed = parse_gate(items)
    scores_models = any(getattr(item, "metrics", None) for item in parsed)
    if scores_models and holdout is None:
        raise ValidationError(
            "The gate scores the models, so it needs a holdout: pass holdout='name@vN' (a "
            "stored data version with the model's inputs and its label, that no model was "
            "fitted on)."
        )
    texts = [g for g in items if isinstance(g, str)]
    functions = [g for g in items if callable(g)]
    spec: dict[str, Any] = {
        # The interpreter of whoever asked (a kernel's environment), which a runner started
        # later by the server extension's loop or the scheduler uses too.
        "python": sys.executable,
        "gate": texts,
        "promote": alias if promote is not None else False,
        "champion": champion,
        "register": register,
        "target": target,
        "timeout": timeout,
    }
    if functions:
        import cloudpickle

        from .runner import _owner

        spec["gate_callables"] = store.objects.put(cloudpickle.dumps(functions))
        spec["gate_callables_by"] = _owner()  # pickled code runs only for its author
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
    seconds at most, after which the job goes on in the background)."""
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
        store=store,
    )
    job = submit_job(name, spec, trigger("manual"), store=store)
    if job.merged:
        print(
            f"A retraining job of {name} is already waiting ({job.job_id[:8]}); "
            "this request was merged into it.",
        )
    return job.wait(timeout) if wait else job
