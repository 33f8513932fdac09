"""The active run: what ``mlops.log_metric`` and friends act on inside ``%%track`` or
``with mlops.track():``. Store failures become warnings here, never lost cells."""

from __future__ import annotations

import io
import json
import os
import sys
import warnings
from collections import ChainMap
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import MlopsError, StoreError, ValidationError

if TYPE_CHECKING:
    from .capture import ExplicitModel
    from .steps import StepRecorder
    from .writer import RunWriter

__all__ = [
    "ActiveRun",
    "TrackingWarning",
    "activate",
    "active_run",
    "caller_scope",
    "require_active_run",
]

T = TypeVar("T")


class TrackingWarning(UserWarning):
    """The cell ran, but something about its run could not be recorded."""


warnings.simplefilter("always", TrackingWarning)


def warn(message: str) -> None:
    """Tell the user that tracking degraded, without interrupting their code."""
    warnings.warn(message, TrackingWarning, stacklevel=4)


class ActiveRun:
    """A run being recorded. ``run_id`` is None when the store could not be written."""

    def __init__(self, writer: RunWriter | None, name: str, experiment: str):
        self._writer = writer
        self.name = name
        self.experiment = experiment
        self._explicit: list[ExplicitModel] = []
        # the values the cell's loops recorded so far (``%%track``), readable from another
        # thread while the cell runs; None when the code is not rewritten
        self.steps: StepRecorder | None = None

    @property
    def run_id(self) -> str | None:
        """The id of the run in the store (None if it is not being recorded)."""
        return self._writer.run_id if self._writer is not None else None

    @property
    def recorded(self) -> bool:
        """Whether the run is being written to the store."""
        return self._writer is not None

    @property
    def writer(self) -> RunWriter | None:
        """The underlying writer (None once recording failed)."""
        return self._writer

    def _guard(self, action: Callable[[RunWriter], T]) -> T | None:
        if self._writer is None:
            return None
        try:
            return action(self._writer)
        except StoreError as exc:
            warn(f"jupyter_mlops: this run is no longer recorded: {exc}")
            self._writer = None
            return None

    def log_param(self, key: str, value: Any) -> None:
        """Record a param (objects are stored as a short repr)."""
        self._guard(lambda w: w.log_param(key, value))

    def log_params(self, values: dict[str, Any]) -> None:
        """Record several params."""
        self._guard(lambda w: w.log_params(values))

    def log_metric(self, key: str, value: Any, step: int | None = None) -> None:
        """Record a metric; give ``step`` (or call repeatedly) to draw a curve."""
        self._guard(lambda w: w.log_metric(key, value, step=step, source="log_metric"))

    def log_metrics(self, values: dict[str, Any], step: int | None = None) -> None:
        """Record several metrics at one step."""
        for key, value in values.items():
            self.log_metric(key, value, step=step)

    def set_tag(self, key: str, value: Any) -> None:
        """Attach a tag."""
        self._guard(lambda w: w.set_tag(key, value))

    @property
    def explicit_models(self) -> list[ExplicitModel]:
        """The models ``log_model`` saved in this run so far."""
        return list(self._explicit)

    def log_model(
        self,
        model: Any,
        name: str = "model",
        *,
        x: Any = None,
        y: Any = None,
        input_example: Any = None,
        signature: Any = None,
        scope: Mapping[str, Any] | None = None,
        trusted: bool = False,
    ) -> None:
        """Save a fitted model with its signature (its flavor's safe format: no code runs
        on load).

        The signature is ``signature=`` if given, else read from ``input_example`` (rows
        the model takes, as MLflow names it), else from ``x``/``y``, else from the model
        and a DataFrame in ``scope`` (default: the caller's variables) holding its
        features. A model the tracked block also fitted is saved once, under ``name``.
        A model no safe format holds (a custom Keras layer) raises ``UnsafeModelError``
        unless ``trusted=True``, which pickles its code (loading it needs trusted=True).
        """
        from .capture import ExplicitModel, frames_in, log_model, model_meta
        from .estimators import FittedState

        if scope is None:
            scope = caller_scope(sys._getframe(1))
        meta = model_meta(
            model,
            x=x,
            y=y,
            inputs=frames_in(scope),
            input_example=input_example,
            given=signature,
        )  # a bad example or signature is refused before anything is stored
        state = FittedState(model)
        if self._guard(lambda w: log_model(w, model, name, meta=meta, trusted=trusted)) is not None:
            self._explicit = [e for e in self._explicit if e.name != name]
            given = signature is not None or input_example is not None
            self._explicit.append(ExplicitModel(name, model, state, given))

    def log_artifact(
        self,
        path_or_object: Any,
        name: str | None = None,
        *,
        scope: Mapping[str, Any] | None = None,
    ) -> None:
        """Attach a file (path) or an object (bytes, dict, figure, chart, DataFrame, model)."""
        data, kind, fmt, default = artifact_bytes(path_or_object)
        if kind == "model":
            if scope is None:
                scope = caller_scope(sys._getframe(1))
            self.log_model(path_or_object, name or "model", scope=scope)
            return
        final = name or default
        if not final:
            raise ValidationError("log_artifact needs a name= for objects that are not files.")
        self._guard(lambda w: w.log_object(final, data, kind=kind, format=fmt))

    def __repr__(self) -> str:
        rid = self.run_id[:8] if self.run_id else "not recorded"
        return f"<ActiveRun {self.name!r} in {self.experiment!r} ({rid})>"


def caller_scope(frame: Any) -> Mapping[str, Any]:
    """The variables visible where ``log_model`` was called (locals over globals)."""
    if frame is None:
        return {}
    if frame.f_locals is frame.f_globals:
        return frame.f_globals
    return ChainMap(dict(frame.f_locals), frame.f_globals)


def artifact_bytes(obj: Any) -> tuple[bytes, str, str, str | None]:
    """(bytes, kind, format, default name) for what ``log_artifact`` accepts."""
    from .flavors import flavor_for

    if isinstance(obj, str | os.PathLike):
        path = Path(obj)
        if not path.is_file():
            raise ValidationError(
                f"log_artifact: {str(obj)!r} is not a file. Pass a file path, or an object "
                "(bytes, dict, figure, chart, DataFrame, model) with name=."
            )
        return path.read_bytes(), "file", path.suffix.lstrip(".") or "bytes", path.name
    if isinstance(obj, bytes | bytearray | memoryview):
        return bytes(obj), "file", "bytes", None
    if isinstance(obj, dict | list):
        return json.dumps(obj, default=str, indent=1).encode(), "file", "json", None
    if flavor_for(obj) is not None:  # a model of any framework
        return b"", "model", "", "model"
    module = type(obj).__module__
    if module.startswith("matplotlib") and hasattr(obj, "savefig"):
        buf = io.BytesIO()
        obj.savefig(buf, format="png", bbox_inches="tight")
        return buf.getvalue(), "figure", "png", None
    if module.startswith("altair") and hasattr(obj, "to_json"):
        return obj.to_json().encode(), "figure", "vega-lite", None
    if module.startswith("pandas") and hasattr(obj, "to_parquet"):
        import pandas as pd

        frame = obj.to_frame() if isinstance(obj, pd.Series) else obj
        buf = io.BytesIO()
        frame.to_parquet(buf)
        return buf.getvalue(), "data", "parquet", None
    raise ValidationError(
        f"log_artifact cannot store a {type(obj).__name__}: pass a file path, bytes, a dict, "
        "a matplotlib figure, an altair chart, a DataFrame or a fitted model."
    )


_stack: list[ActiveRun] = []


def active_run() -> ActiveRun | None:
    """The innermost run being recorded, if any."""
    return _stack[-1] if _stack else None


def require_active_run() -> ActiveRun:
    """The active run, or an error that says how to start one."""
    run = active_run()
    if run is None:
        raise MlopsError(
            "No active run. Put %%track on the cell, or wrap the code in "
            "`with mlops.track('name'):`."
        )
    return run


@contextmanager
def activate(run: ActiveRun) -> Iterator[ActiveRun]:
    """Make ``run`` the active run for the duration of the block."""
    _stack.append(run)
    try:
        yield run
    finally:
        if _stack and _stack[-1] is run:
            _stack.pop()
        elif run in _stack:
            _stack.remove(run)
