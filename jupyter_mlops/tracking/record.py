"""``Run``: a recorded run read back from the store, with its rich display."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from ..errors import NotFoundError, ValidationError
from ..store import Store, current_store, schema
from .codeslice import slice_source
from .modelio import load_model_bytes
from .values import decode_param
from .writer import DEFAULT_PARAMS_TAG, default_param_names

__all__ = ["Run", "get_run"]


@dataclass
class Run:
    """Everything a run recorded. Lists and dicts are plain Python, ready to inspect."""

    run_id: str
    name: str
    experiment: str
    status: str
    start_time: float
    end_time: float | None
    duration_s: float | None
    parent_run_id: str | None
    user: str | None
    notebook: str | None
    code: str | None
    error: str | None
    stdout: str | None
    stderr: str | None
    environment: dict[str, Any]
    params: dict[str, Any]
    metrics: dict[str, float]
    metric_sources: dict[str, str]
    tags: dict[str, str]
    inputs: list[dict[str, Any]]
    artifacts: list[dict[str, Any]]
    children: list[str] = field(default_factory=list)
    # the params captured from estimators that hold the estimator's defaults (the run card
    # folds them); empty for runs recorded before this was kept
    default_params: frozenset[str] = frozenset()
    _slice: list[dict[str, Any]] = field(default_factory=list, repr=False)
    _store: Store | None = field(default=None, repr=False, compare=False)
    # curves the process that recorded the run still holds, as ``metric_curve`` gives
    # them ({metric: (sample, n)}): its card draws them without reading them back
    known_curves: dict[str, tuple[list[tuple[float, float]], int]] = field(
        default_factory=dict, repr=False, compare=False
    )

    @property
    def models(self) -> list[dict[str, Any]]:
        """The model artifacts (name, format, signature, class, size)."""
        return [a for a in self.artifacts if a["kind"] == "model"]

    @property
    def code_slice(self) -> str:
        """The earlier cells this run depends on plus its own code, as one runnable script."""
        return slice_source(self.code_slice_cells, self.executed_code)

    @property
    def code_slice_cells(self) -> list[dict[str, Any]]:
        """The cells of the code slice: execution count, what was typed, runnable code."""
        return [c for c in self._slice if not c.get("tracked")]

    @property
    def executed_code(self) -> str:
        """The run's own code as Python (IPython syntax such as ``%time`` transformed)."""
        for cell in self._slice:
            if cell.get("tracked"):
                return str(cell.get("code") or "")
        return self.code or ""

    def metric_history(self, name: str) -> Any:
        """Every logged value of metric ``name``: a DataFrame with step, value, timestamp."""
        import pandas as pd

        mh = schema.metric_history
        with self._store_or_current().read() as conn:
            rows = conn.execute(
                sa.select(mh.c.step, mh.c.value, mh.c.timestamp)
                .where(mh.c.run_id == self.run_id, mh.c.key == name)
                .order_by(mh.c.step, mh.c.id)
            ).all()
        if not rows and name not in self.metrics:
            raise NotFoundError(
                f"Run {self.run_id[:8]} has no metric {name!r}; it has: "
                f"{', '.join(sorted(self.metrics)) or 'none'}."
            )
        # from columns, not rows: pandas inspects every row object otherwise (seconds for
        # a loop's 30,000 points)
        columns = [list(c) for c in zip(*rows, strict=True)] if rows else [[], [], []]
        frame = pd.DataFrame(dict(zip(("step", "value", "timestamp"), columns, strict=True)))
        frame["timestamp"] = pd.to_datetime(frame["timestamp"], unit="s", utc=True)
        return frame

    def metric_curve(self, name: str, points: int = 160) -> tuple[list[tuple[float, float]], int]:
        """(sample, n): at most ``points`` finite ``(step, value)`` points of metric ``name``
        spread evenly over its curve, its minimum, maximum and last value always among
        them, and how many finite points the whole curve has. One indexed read of two
        columns and no DataFrame: what a card draws, for a curve of any length."""
        mh = schema.metric_history
        with self._store_or_current().read() as conn:
            rows = conn.execute(
                sa.select(mh.c.step, mh.c.value)
                .where(
                    mh.c.run_id == self.run_id,
                    mh.c.key == name,
                    mh.c.value.is_not(None),  # NaN is stored as NULL
                    mh.c.value > -math.inf,
                    mh.c.value < math.inf,
                )
                .order_by(mh.c.step, mh.c.id)
            ).all()
        if not rows:
            return [], 0
        from ..html import sample_curve

        steps, values = zip(*rows, strict=True)
        return sample_curve(steps, values, points)

    def artifact_bytes(self, name: str) -> bytes:
        """The stored bytes of artifact ``name`` (hash-checked)."""
        for art in self.artifacts:
            if art["name"] == name:
                return self._store_or_current().objects.get(art["object_hash"])
        raise NotFoundError(
            f"Run {self.run_id[:8]} has no artifact {name!r}; it has: "
            f"{', '.join(a['name'] for a in self.artifacts) or 'none'}."
        )

    def load_model(self, name: str | None = None, *, trusted: bool | list[str] = False) -> Any:
        """The fitted model saved by this run (``name`` when it saved several)."""
        models = self.models
        if not models:
            raise NotFoundError(f"Run {self.run_id[:8]} ({self.name}) saved no model.")
        if name is None:
            if len(models) > 1:
                raise ValidationError(
                    f"Run {self.run_id[:8]} saved several models "
                    f"({', '.join(m['name'] for m in models)}); pass name=."
                )
            chosen = models[0]
        else:
            matches = [m for m in models if m["name"] == name]
            if not matches:
                raise NotFoundError(
                    f"Run {self.run_id[:8]} has no model {name!r}; it has: "
                    f"{', '.join(m['name'] for m in models)}."
                )
            chosen = matches[0]
        data = self._store_or_current().objects.get(chosen["object_hash"])
        return load_model_bytes(data, chosen["format"], trusted=trusted)

    def _store_or_current(self) -> Store:
        return self._store or current_store()

    def _repr_html_(self) -> str:
        from ..html import run_card

        return run_card(self)

    def __repr__(self) -> str:
        return (
            f"<Run {self.run_id[:8]} {self.name!r} {self.status} in {self.experiment!r}: "
            f"{len(self.params)} params, {len(self.metrics)} metrics>"
        )


def _loads(text: str | None, default: Any) -> Any:
    if not text:
        return default
    try:
        return json.loads(text)
    except ValueError:
        return default


def get_run(run_id: str, store: Store | None = None) -> Run:
    """Read run ``run_id`` (the full id, or a unique prefix of at least 6 characters)."""
    store = store or current_store()
    if not isinstance(run_id, str) or len(run_id) < 6:
        raise ValidationError(
            f"A run id must be a string of at least 6 characters, got {run_id!r}."
        )
    if not store.exists:
        raise NotFoundError(f"No run {run_id!r}: the store at {store.describe()} is empty.")
    r, e = schema.runs, schema.experiments
    with store.read() as conn:
        query = sa.select(r, e.c.name.label("experiment")).join(
            e, e.c.experiment_id == r.c.experiment_id
        )
        if len(run_id) == 32:
            rows = conn.execute(query.where(r.c.run_id == run_id)).all()
        else:
            rows = conn.execute(query.where(r.c.run_id.startswith(run_id)).limit(2)).all()
        if not rows:
            raise NotFoundError(f"No run {run_id!r} in the store at {store.describe()}.")
        if len(rows) > 1:
            raise ValidationError(f"Run id prefix {run_id!r} is ambiguous; give more characters.")
        row = rows[0]
        rid = row.run_id
        params = {
            p.key: decode_param(p.value, p.vtype)
            for p in conn.execute(
                sa.select(schema.params)
                .where(schema.params.c.run_id == rid)
                .order_by(schema.params.c.key)
            )
        }
        lm = schema.latest_metrics
        metrics, sources = {}, {}
        for m in conn.execute(sa.select(lm).where(lm.c.run_id == rid).order_by(lm.c.key)):
            metrics[m.key] = float("nan") if m.value is None else m.value
            if m.source:
                sources[m.key] = m.source
        tags = {
            t.key: t.value
            for t in conn.execute(sa.select(schema.tags).where(schema.tags.c.run_id == rid))
        }
        defaults = _default_params(tags.pop(DEFAULT_PARAMS_TAG, None), params)
        inputs = [
            {
                "name": i.name,
                "role": i.role,
                "kind": i.kind,
                "content_hash": i.content_hash,
                "shape": tuple(_loads(i.shape, [])),
                "columns": [tuple(c) for c in _loads(i.columns, [])] or None,
                "data_version_id": i.data_version_id,
            }
            for i in conn.execute(
                sa.select(schema.inputs)
                .where(schema.inputs.c.run_id == rid)
                .order_by(schema.inputs.c.role, schema.inputs.c.name)
            )
        ]
        artifacts = [
            {
                "name": a.name,
                "kind": a.kind,
                "object_hash": a.object_hash,
                "size": a.size,
                "format": a.format,
                **_loads(a.meta, {}),
            }
            for a in conn.execute(
                sa.select(schema.artifacts)
                .where(schema.artifacts.c.run_id == rid)
                .order_by(schema.artifacts.c.created, schema.artifacts.c.name)
            )
        ]
        children = list(
            conn.execute(
                sa.select(r.c.run_id).where(r.c.parent_run_id == rid).order_by(r.c.name)
            ).scalars()
        )
    return Run(
        run_id=rid,
        name=row.name,
        experiment=row.experiment,
        status=row.status,
        start_time=row.start_time,
        end_time=row.end_time,
        duration_s=row.duration_s,
        parent_run_id=row.parent_run_id,
        user=row.user,
        notebook=row.notebook,
        code=row.source_code,
        error=row.error,
        stdout=row.stdout,
        stderr=row.stderr,
        environment=_loads(row.environment, {}),
        params=params,
        metrics=metrics,
        metric_sources=sources,
        tags=tags,
        default_params=defaults,
        inputs=inputs,
        artifacts=artifacts,
        children=children,
        _slice=_loads(row.code_slice, []),
        _store=store,
    )


def _default_params(recorded: str | None, params: dict[str, Any]) -> frozenset[str]:
    """The recorded names of the params left at their defaults; a damaged record folds
    nothing rather than keep the run from showing."""
    return frozenset(n for n in default_param_names(recorded) if n in params)
