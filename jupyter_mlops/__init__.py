"""jupyter_mlops: the machine-learning lifecycle inside JupyterLab.

``%load_ext jupyter_mlops`` then ``%%track`` on a training cell; or, from Python,
``import jupyter_mlops as mlops``. Heavy modules load on first use, so importing the
package and loading the extension stay fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._version import __version__
from .errors import MlopsError

if TYPE_CHECKING:
    from .api import (
        archive,
        compare,
        data_diff,
        data_history,
        get_experiment,
        get_model_version,
        get_run,
        load_data,
        load_model,
        log_artifact,
        log_metric,
        log_metrics,
        log_model,
        log_param,
        log_params,
        model_events,
        model_versions,
        models,
        open_store,
        register,
        registry_view,
        remove_alias,
        replay,
        runs,
        runs_view,
        set_alias,
        set_description,
        set_experiment,
        set_tag,
        snapshot,
        track,
    )

__all__ = [
    "MlopsError",
    "__version__",
    "alerts",
    "archive",
    "check",
    "compare",
    "data_diff",
    "data_history",
    "deploy",
    "deployments",
    "drift",
    "export_model",
    "get_experiment",
    "get_model_version",
    "get_run",
    "inference_log",
    "load_data",
    "load_ipython_extension",
    "load_model",
    "log_artifact",
    "log_feedback",
    "log_metric",
    "log_metrics",
    "log_model",
    "log_param",
    "log_params",
    "model_events",
    "model_versions",
    "models",
    "monitor",
    "open_store",
    "predict_batch",
    "register",
    "registry_view",
    "remove_alias",
    "replay",
    "retrain",
    "retrain_policy",
    "retraining_jobs",
    "retraining_policies",
    "run_due_policies",
    "runs",
    "runs_view",
    "set_alias",
    "set_description",
    "set_experiment",
    "set_monitor",
    "set_tag",
    "snapshot",
    "track",
    "undeploy",
]

_API = set(__all__) - {"MlopsError", "__version__", "load_ipython_extension"}


def __getattr__(name: str) -> Any:
    if name in _API:
        from . import api

        value = getattr(api, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'jupyter_mlops' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext jupyter_mlops``: register the magics and say which store is used."""
    from .magics import load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext jupyter_mlops``."""
    from .magics import unload

    unload(ipython)


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    """The server extension (REST API and background loop) in ``jupyter_mlops.server``."""
    return [{"module": "jupyter_mlops.server"}]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """The prebuilt JupyterLab sidebar shipped inside the package."""
    return [{"src": "labextension", "dest": "jupyter-mlops"}]
