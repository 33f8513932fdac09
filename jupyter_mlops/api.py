"""The Python API, ``import jupyter_mlops as mlops``: the same functions the magics call."""

from __future__ import annotations

import os
from typing import Any

from .store import Store, current_store
from .store import open_store as _open_store
from .tracking.active import require_active_run
from .tracking.context import Track, default_experiment, set_default_experiment
from .tracking.record import Run
from .tracking.record import get_run as _get_run
from .tracking.search import runs as _runs

__all__ = [
    "get_experiment",
    "get_run",
    "log_artifact",
    "log_metric",
    "log_metrics",
    "log_model",
    "log_param",
    "log_params",
    "open_store",
    "runs",
    "set_experiment",
    "set_tag",
    "track",
]


def track(name: str | None = None, experiment: str | None = None, **options: Any) -> Track:
    """Record a run around a block: ``with mlops.track("baseline") as run: ...``.

    The block's params, metrics, data inputs and fitted models are captured as ``%%track``
    does for a cell; ``run.log_param``/``run.log_metric``/``run.log_artifact`` add more.
    Options: ``params=[...]``, ``metrics=[...]`` (names to capture in any case),
    ``data=False``, ``models=False``, ``tags={...}``, ``capture=False`` (explicit logging only).
    """
    return Track(name, experiment, **options)


def log_param(key: str, value: Any) -> None:
    """Record a param on the active run (objects are stored as a short repr)."""
    require_active_run().log_param(key, value)


def log_params(values: dict[str, Any]) -> None:
    """Record several params on the active run."""
    require_active_run().log_params(values)


def log_metric(key: str, value: Any, step: int | None = None) -> None:
    """Record a metric on the active run; steps (or repeated calls) make a curve."""
    require_active_run().log_metric(key, value, step=step)


def log_metrics(values: dict[str, Any], step: int | None = None) -> None:
    """Record several metrics on the active run at one step."""
    require_active_run().log_metrics(values, step=step)


def set_tag(key: str, value: Any) -> None:
    """Tag the active run."""
    require_active_run().set_tag(key, value)


def log_model(model: Any, name: str = "model", **data: Any) -> None:
    """Save a fitted model on the active run (skops; pass ``x=`` to record its signature)."""
    require_active_run().log_model(model, name, **data)


def log_artifact(path_or_object: Any, name: str | None = None) -> None:
    """Attach a file or an object (bytes, dict, figure, chart, DataFrame) to the active run."""
    require_active_run().log_artifact(path_or_object, name)


def runs(
    experiment: str | None = None,
    filter: str | None = None,
    order_by: str | list[str] | None = None,
    limit: int | None = None,
) -> Any:
    """Runs as a pandas DataFrame; ``filter`` like ``"metrics.accuracy > 0.8 and status = 'finished'"``."""
    return _runs(experiment, filter, order_by, limit)


def get_run(run_id: str) -> Run:
    """One run (by id or a unique prefix of 6+ characters) with params, metrics, models, code."""
    return _get_run(run_id)


def open_store(path_or_url: str | os.PathLike[str] | None = None, **options: Any) -> Store:
    """Use the store at a folder or SQLAlchemy URL from now on (default: the resolution rule)."""
    return _open_store(path_or_url, **options)


def set_experiment(name: str) -> None:
    """Runs without an explicit experiment go to ``name`` from now on."""
    set_default_experiment(name)


def get_experiment() -> str:
    """The experiment runs go to by default."""
    return default_experiment()


def store() -> Store:
    """The store in use."""
    return current_store()
