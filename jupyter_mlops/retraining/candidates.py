"""The models a gate compares and the holdout it scores them on.

A candidate knows the rows it was fitted on (the data versions its run recorded for the
variables passed to ``fit``), so the holdout can be cut down to rows neither model saw:
a holdout row that appears in either model's training rows is left out and counted.
"""

from __future__ import annotations

from typing import Any

from ..errors import MlopsError, NotFoundError, ValidationError
from ..store import Store
from ..tracking.record import Run
from .gate import Candidate, Holdout

__all__ = ["candidate_from_run", "candidate_from_version", "resolve_holdout"]


def _load(item: dict[str, Any], store: Store) -> tuple[str, Any] | None:
    from ..data.versions import load_data, refs_for

    version_id = item.get("data_version_id")
    if version_id is None:
        return None
    ref = refs_for([version_id], store).get(version_id) or f"#{item['content_hash'][:12]}"
    try:
        return ref, load_data(f"#{item['content_hash']}", store)
    except MlopsError:
        return None


def training_data(run: Run, artifact: dict[str, Any], store: Store) -> list[tuple[str, Any]]:
    """The data versions the model was fitted on: the run's data named by the ``fit`` call
    (inputs or outputs of the cell); else every input frame holding the model's features."""
    fit = artifact.get("fit") or {}
    by_name = {}
    for item in run.inputs:
        by_name.setdefault(item["name"], item)  # an input wins over an output of one name
    found = []
    for role in ("x", "y"):
        name = fit.get(role)
        if name and name in by_name:
            loaded = _load(by_name[name], store)
            if loaded is not None:
                found.append(loaded)
    if found:
        return found
    features = [str(i["name"]) for i in artifact.get("signature", {}).get("inputs", [])]
    for item in run.inputs:
        if item["role"] != "input" or item.get("kind") not in (None, "dataframe"):
            continue
        columns = [c[0] for c in item.get("columns") or []]
        if features and all(c in columns for c in features):
            loaded = _load(item, store)
            if loaded is not None:
                found.append(loaded)
    return found


def candidate_from_version(mv: Any, store: Store) -> Candidate:
    """A registered version as a gate candidate."""
    run = mv.run
    artifact = next((a for a in run.models if a["name"] == mv.artifact), {})
    return Candidate(
        label=mv.ref,
        model=mv.load(),
        signature=mv.signature,
        training=training_data(run, artifact, store),
        metrics=dict(run.metrics),
    )


def candidate_from_run(run: Run, artifact: dict[str, Any], store: Store) -> Candidate:
    """A run's saved model, before it is registered."""
    return Candidate(
        label=f"run {run.run_id[:8]}",
        model=run.load_model(artifact["name"]),
        signature=artifact.get("signature", {}),
        training=training_data(run, artifact, store),
        metrics=dict(run.metrics),
    )


def _target(frame: Any, features: list[str], target: str | None, signature: dict[str, Any]) -> str:
    if target is not None:
        if target not in frame.columns:
            raise ValidationError(
                f"The holdout has no column {target!r}; its columns: {list(frame.columns)[:20]}."
            )
        return target
    outputs = signature.get("outputs") or [{}]
    recorded = outputs[0].get("target")
    if recorded and recorded in frame.columns:
        return str(recorded)
    extra = [c for c in frame.columns if c not in features]
    if len(extra) == 1:
        return str(extra[0])
    raise ValidationError(
        "Which holdout column holds the label? "
        + (
            f"It has several besides the features: {extra[:10]}"
            if extra
            else "It has only the features"
        )
        + "; pass target='column'."
    )


def _row_keys(frame: Any, features: list[str]) -> Any:
    import pandas as pd

    return pd.util.hash_pandas_object(frame[features], index=False).to_numpy()


def resolve_holdout(
    value: Any,
    candidates: list[Candidate],
    *,
    target: str | None = None,
    model_name: str,
    store: Store,
) -> Holdout:
    """The holdout named by ``value`` (a data reference, or a DataFrame saved as
    ``<model>/holdout``), split into features and label, without the rows any candidate
    was fitted on."""
    import numpy as np
    import pandas as pd

    from ..data.versions import resolve, snapshot

    if isinstance(value, pd.DataFrame):
        version = snapshot(value, f"{model_name}/holdout", store=store, reuse_any=True)
    elif isinstance(value, str):
        try:
            version = resolve(value, store)
        except NotFoundError as exc:
            raise NotFoundError(f"Holdout {value!r}: {exc}") from None
    else:
        raise ValidationError(
            f"holdout must be a data reference ('name@vN') or a DataFrame, got {type(value).__name__}."
        )
    frame = version.load()
    if not isinstance(frame, pd.DataFrame):
        raise ValidationError(f"Holdout {version.ref} is a {version.kind}, not a table.")
    # Every candidate's inputs (each is scored on its own columns, in its own order).
    features = list(dict.fromkeys(c for cand in candidates for c in cand.features))
    missing = [c for c in features if c not in frame.columns]
    if missing:
        raise ValidationError(
            f"Holdout {version.ref} lacks the model's input columns {missing[:10]}."
        )
    label = _target(frame, features, target, candidates[0].signature)
    frame = frame.dropna(subset=[label])
    seen = np.zeros(len(frame), dtype=bool)
    for candidate in candidates:  # rows a candidate saw, by the values of its own inputs
        own = candidate.features or features
        keys = _row_keys(frame, own)
        for _, train in candidate.training:
            if isinstance(train, pd.DataFrame) and all(c in train.columns for c in own):
                seen |= np.isin(keys, _row_keys(train, own))
    kept = frame[~seen]
    if kept.empty:
        raise ValidationError(
            f"Every row of holdout {version.ref} is in the training data of "
            f"{' or '.join(c.label for c in candidates)}; give a holdout neither model was fitted on."
        )
    return Holdout(
        x=kept[features],
        y=kept[label],
        ref=version.ref,
        content_hash=version.content_hash,
        rows=len(kept),
        target=label,
        excluded=int(seen.sum()),
    )
