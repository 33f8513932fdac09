"""What a run learns from scikit-learn estimators: hyperparameters, fitted state,
input signatures, and the candidates of a hyperparameter search."""

from __future__ import annotations

import inspect
import math
import sys
import warnings
from typing import Any

from .values import is_metric_value, is_scalar_param, short_repr
from .writer import ChildRun

__all__ = [
    "default_params",
    "estimator_params",
    "is_estimator",
    "is_fitted",
    "is_search",
    "search_children",
    "signature",
]


def is_estimator(obj: Any) -> bool:
    """A scikit-learn (compatible) estimator instance, without importing sklearn."""
    if "sklearn" not in sys.modules or isinstance(obj, type):
        return False
    from sklearn.base import BaseEstimator

    return isinstance(obj, BaseEstimator)


def is_fitted(obj: Any) -> bool:
    """Whether an estimator has been fitted (sklearn's own test)."""
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    try:
        check_is_fitted(obj)
    except (NotFittedError, TypeError):
        return False
    except Exception:
        return False
    return True


def is_search(obj: Any) -> bool:
    """A fitted GridSearchCV / RandomizedSearchCV (anything with ``cv_results_``)."""
    return hasattr(obj, "cv_results_") and hasattr(obj, "best_params_")


def estimator_params(prefix: str, est: Any) -> dict[str, Any]:
    """``get_params(deep=True)`` flattened under ``prefix``: ``model.C``, ``model.clf__max_depth``.

    Nested estimators appear by class name; other objects as a short repr.
    """
    out: dict[str, Any] = {}
    try:
        params = est.get_params(deep=True)
    except Exception:
        return out
    for key, value in params.items():
        name = f"{prefix}.{key}"
        if is_estimator(value):
            out[name] = type(value).__name__
        elif is_scalar_param(value):
            out[name] = value
        elif (
            isinstance(value, list)
            and value
            and all(isinstance(v, tuple) and len(v) == 2 for v in value)
        ):
            out[name] = short_repr([step for step, _ in value])  # pipeline steps: their names
        else:
            out[name] = short_repr(value)
    return out


def _class_defaults(cls: type) -> dict[str, Any] | None:
    """The params of a default ``cls()`` (scikit-learn's ``__init__`` only stores its
    arguments, as ``clone`` relies on); else the defaults its signature declares."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return dict(cls().get_params(deep=False))
    except Exception:
        pass
    try:
        parameters = inspect.signature(cls.__init__).parameters.values()
    except (TypeError, ValueError):
        return None
    return {
        p.name: p.default
        for p in parameters
        if p.default is not p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    }


def _same(value: Any, default: Any) -> bool:
    """Whether a param holds its default: equal plain values (1 and 1.0 alike, NaN equals
    NaN); an estimator or an array only when it is the default object itself."""
    if value is default:
        return True
    if isinstance(value, bool) or isinstance(default, bool):
        return type(value) is type(default) and value == default
    if isinstance(value, int | float) and isinstance(default, int | float):
        both_nan = isinstance(value, float) and isinstance(default, float)
        return value == default or (both_nan and math.isnan(value) and math.isnan(default))
    if type(value) is not type(default) or is_estimator(value):
        return False
    try:
        equal = value == default
    except Exception:
        return False
    return equal if isinstance(equal, bool) else False


def default_params(prefix: str, est: Any) -> list[str]:
    """The names ``estimator_params(prefix, est)`` gives to the params whose values are
    their estimator's defaults (nested estimators each compared with their own class)."""
    try:
        params = est.get_params(deep=True)
    except Exception:
        return []
    owners: dict[str, Any] = {"": est}
    owners.update({k: v for k, v in params.items() if is_estimator(v)})
    defaults: dict[int, dict[str, Any] | None] = {}
    out = []
    for key, value in params.items():
        path, _, own = key.rpartition("__")
        owner = owners.get(path)
        if owner is None:
            continue
        if id(owner) not in defaults:
            defaults[id(owner)] = _class_defaults(type(owner))
        known = defaults[id(owner)]
        if known is not None and own in known and _same(value, known[own]):
            out.append(f"{prefix}.{key}")
    return out


def search_children(name: str, search: Any) -> list[ChildRun]:
    """One child run per candidate of a fitted search: its params and CV scores."""
    results = search.cv_results_
    n = len(results["params"])
    scores = [
        k
        for k in results
        if k.startswith(("mean_", "std_", "rank_")) or (k.startswith("split") and "_test_" in k)
    ]
    children = []
    for i in range(n):
        params = {
            k: (v if is_scalar_param(v) else short_repr(v)) for k, v in results["params"][i].items()
        }
        metrics = {}
        for key in scores:
            value = results[key][i]
            if is_metric_value(value):
                metrics[key] = value
        children.append(ChildRun(name=f"{name} #{i}", params=params, metrics=metrics))
    return children


def _dtype_name(dtype: Any) -> str:
    return str(dtype)


def signature(model: Any, x: Any = None, y: Any = None) -> dict[str, Any]:
    """The input columns and dtypes a model was fitted on, and its output type.

    ``x``/``y`` are the data passed to ``fit`` when known; otherwise the model's
    ``feature_names_in_``/``n_features_in_`` say what they can.
    """
    from ..data.fingerprint import data_kind

    inputs: list[dict[str, str]] = []
    kind = data_kind(x) if x is not None else None
    if kind == "dataframe":
        inputs = [{"name": str(c), "dtype": _dtype_name(t)} for c, t in x.dtypes.items()]
    elif kind == "ndarray" and x.ndim == 2:
        inputs = [{"name": f"x{i}", "dtype": _dtype_name(x.dtype)} for i in range(x.shape[1])]
    else:
        names = getattr(model, "feature_names_in_", None)
        if names is not None:
            inputs = [{"name": str(c), "dtype": "unknown"} for c in names]
        elif getattr(model, "n_features_in_", None):
            inputs = [{"name": f"x{i}", "dtype": "unknown"} for i in range(model.n_features_in_)]
    output: dict[str, Any] = {"name": "prediction"}
    if y is not None and hasattr(y, "dtype"):
        output["dtype"] = _dtype_name(y.dtype)
    if getattr(y, "name", None) is not None and data_kind(y) == "series":
        output["target"] = str(y.name)  # the label column gates look for in a holdout
    classes = getattr(model, "classes_", None)
    if classes is not None:
        try:
            output["classes"] = [c.item() if hasattr(c, "item") else c for c in classes][:1000]
            output.setdefault("dtype", _dtype_name(classes.dtype))
        except Exception:
            pass
    return {
        "inputs": inputs,
        "input_kind": kind or "unknown",
        "outputs": [output],
        "estimator": f"{type(model).__module__}.{type(model).__qualname__}",
    }
