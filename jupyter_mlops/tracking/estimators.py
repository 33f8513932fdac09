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
    "NUMBER",
    "FittedState",
    "column_hints",
    "components",
    "default_params",
    "dtype_kind",
    "estimator_params",
    "inputs_for",
    "is_estimator",
    "is_fitted",
    "is_search",
    "model_inputs",
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


# -- fitted state ---------------------------------------------------------------------------


# the private attribute XGBoost's and LightGBM's wrappers keep their trained model in:
# a refit assigns a new one
_BOOSTERS = frozenset({"_Booster"})


class FittedState:
    """References to an estimator's fitted attributes (those of nested estimators too), to
    tell later whether the same object was fitted again: a refit assigns new arrays.

    Holding the references (not their ids) keeps a freed array's address from being
    reused by the new one, so identity comparison is exact.
    """

    def __init__(self, obj: Any, depth: int = 0):
        self.leaves: list[tuple[str, Any]] = []
        self.nested: list[tuple[str, FittedState]] = []
        try:
            attrs = dict(vars(obj))
        except TypeError:
            return
        for key, value in attrs.items():
            if (key.endswith("_") and not key.startswith("_")) or key in _BOOSTERS:
                self.leaves.append((key, value))
            if depth < 6:
                for child in _nested_estimators(value):
                    self.nested.append((key, FittedState(child, depth + 1)))

    def same_as(self, other: FittedState) -> bool:
        """Whether both states hold the very same fitted objects."""
        if len(self.leaves) != len(other.leaves) or len(self.nested) != len(other.nested):
            return False
        for (ka, va), (kb, vb) in zip(self.leaves, other.leaves, strict=True):
            if ka != kb or va is not vb:
                return False
        return all(
            ka == kb and a.same_as(b)
            for (ka, a), (kb, b) in zip(self.nested, other.nested, strict=True)
        )


def _nested_estimators(value: Any) -> list[Any]:
    if is_estimator(value):
        return [value]
    if isinstance(value, list | tuple):
        out = []
        for item in value[:1000]:
            if is_estimator(item):
                out.append(item)
            elif isinstance(item, tuple):
                out.extend(v for v in item if is_estimator(v))
        return out
    return []


def _estimators_in(value: Any, depth: int = 0) -> list[Any]:
    """The estimators a param or fitted attribute holds: itself, or those in a list, tuple
    (a ``(name, estimator, columns)`` step) or mapping (``named_transformers_``)."""
    if is_estimator(value):
        return [value]
    if depth > 2:
        return []
    if isinstance(value, dict) or type(value).__name__ == "Bunch":
        items = list(value.values())
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        return []
    out: list[Any] = []
    for item in items[:1000]:
        out.extend(_estimators_in(item, depth + 1))
    return out


def components(est: Any) -> list[Any]:
    """Every estimator object ``est`` is made of, at any depth: Pipeline steps,
    ColumnTransformer and FeatureUnion transformers (as given and as fitted), a
    meta-estimator's ``estimator``/``estimator_``/``estimators_``/``best_estimator_``.
    Found by object identity, so a model that is a part of another one in a cell is not
    taken for a second model."""
    seen: dict[int, Any] = {id(est): est}
    todo = [est]
    while todo and len(seen) < 10_000:
        current = todo.pop()
        values: list[Any] = []
        try:
            values += list(current.get_params(deep=False).values())
        except Exception:
            pass
        try:
            attrs = vars(current)
        except TypeError:
            attrs = {}
        values += [v for k, v in attrs.items() if k.endswith("_") and not k.startswith("_")]
        values += [attrs[k] for k in ("steps", "transformers", "transformer_list") if k in attrs]
        for value in values:
            for inner in _estimators_in(value):
                if id(inner) not in seen:
                    seen[id(inner)] = inner
                    todo.append(inner)
    del seen[id(est)]
    return list(seen.values())


# -- input dtypes ---------------------------------------------------------------------------

NUMBER = "number"  # a hint: the column must be numeric (any numeric dtype will do)


def dtype_kind(dtype: Any) -> str:
    """float, int, bool, text or any, for a numpy/pandas dtype or its name."""
    text = str(dtype).lower()
    if text.startswith(("float", "double")):
        return "float"
    if text.startswith(("int", "uint")):
        return "int"
    if text.startswith(("bool", "boolean")):
        return "bool"
    if text in ("object", "category") or text.startswith(("str", "string")):
        return "text"
    return "any"


def _categories_dtype(values: Any) -> str:
    import numpy as np

    arr = np.asarray(values)
    if arr.dtype.kind in "fiub":
        return "bool" if arr.dtype.kind == "b" else str(arr.dtype)
    return "object"


def column_hints(est: Any, n: int) -> list[str | None]:
    """What each of the ``n`` input columns of a fitted estimator must hold, read from the
    estimator itself: an exact dtype where it says (an encoder's ``categories_``, an
    imputer's fitted dtype), ``NUMBER`` where a numeric step takes the column, None where
    nothing tells (a passthrough, a ``FunctionTransformer``)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    if isinstance(est, Pipeline):
        for _, step in est.steps:
            if step is None or (isinstance(step, str) and step == "passthrough"):
                continue
            return column_hints(step, n)
        return [None] * n
    if isinstance(est, ColumnTransformer):
        hints: list[str | None] = [NUMBER] * n  # columns no transformer takes are dropped
        by_name = {t[0]: t[1] for t in getattr(est, "transformers_", [])}
        for name, indices in (getattr(est, "_transformer_to_input_indices", None) or {}).items():
            trans = by_name.get(name)
            if trans is None or (isinstance(trans, str) and trans == "drop"):
                continue
            if isinstance(trans, str):  # "passthrough": whatever comes next decides
                sub: list[str | None] = [None] * len(indices)
            else:
                sub = column_hints(trans, len(indices))
            for i, hint in zip(indices, sub, strict=False):
                if 0 <= i < n:
                    hints[i] = hint
        return hints
    if isinstance(est, FunctionTransformer):
        return [None] * n
    categories = getattr(est, "categories_", None)
    if isinstance(categories, list) and len(categories) == n:
        return [_categories_dtype(c) for c in categories]
    fit_dtype = getattr(est, "_fit_dtype", None)  # SimpleImputer
    if fit_dtype is not None:
        import numpy as np

        try:
            kind = np.dtype(fit_dtype).kind
        except TypeError:
            kind = "O"
        return ["object" if kind == "O" else NUMBER] * n
    return [NUMBER] * n  # scikit-learn's estimators take numbers


def _merge(hint: str | None, seen: str | None) -> str:
    """The dtype to record from the estimator's hint and the dtype of a frame in scope."""
    if seen is None or dtype_kind(seen) == "any":
        return "float64" if hint in (None, NUMBER) else str(hint)
    if hint is None:
        return seen
    if hint == NUMBER:
        return seen if dtype_kind(seen) in ("float", "int", "bool") else "float64"
    return seen if dtype_kind(seen) == dtype_kind(hint) else hint


def frame_dtype(series: Any) -> str:
    """A column's dtype name; a categorical column records its categories' dtype when they
    are numbers (the server then takes numbers), else ``category``."""
    dtype = series.dtype
    if str(dtype) == "category":
        inner = dtype.categories.dtype
        if inner.kind in "fiub":
            return str(inner)
        return "category"
    return str(dtype)


def inputs_for(
    names: list[str] | None,
    n: int | None,
    frames: Any = (),
    hints: list[str | None] | None = None,
) -> tuple[list[dict[str, str]], str]:
    """Input columns from a model's feature ``names`` (else ``n`` columns ``x0…``): the
    dtypes of a DataFrame in ``frames`` that holds them all, merged with ``hints`` (what
    the model says each column must hold); numeric columns default to float64."""
    if names is not None:
        cols = [str(c) for c in names]
        kind = "dataframe"
    elif isinstance(n, int) and n > 0:
        cols = [f"x{i}" for i in range(n)]
        kind = "ndarray"
    else:
        return [], "unknown"
    if hints is None or len(hints) != len(cols):
        hints = [None] * len(cols)
    seen: dict[str, str] = {}
    if kind == "dataframe":
        for frame in frames:
            columns = getattr(frame, "columns", None)
            if columns is None:
                continue
            try:
                present = {str(c): c for c in columns}
            except Exception:
                continue
            if all(c in present for c in cols):
                seen = {c: frame_dtype(frame[present[c]]) for c in cols}
                break
    inputs = [
        {"name": c, "dtype": _merge(h, seen.get(c))} for c, h in zip(cols, hints, strict=True)
    ]
    return inputs, kind


def model_inputs(model: Any, frames: Any = ()) -> tuple[list[dict[str, str]], str] | None:
    """The input columns and kind of a fitted estimator whose training data is not known:
    names from ``feature_names_in_`` (else ``x0…``), dtypes from the estimator's hints and,
    for the columns where it does not say, from a DataFrame in ``frames`` that holds them
    all. Numeric columns default to float64: every scikit-learn estimator takes it."""
    names = getattr(model, "feature_names_in_", None)
    n = getattr(model, "n_features_in_", None)
    if names is None and not (isinstance(n, int) and n > 0):
        return None
    count = len(names) if names is not None else n
    try:
        hints = column_hints(model, count)
    except Exception:
        hints = [None] * count
    return inputs_for([str(c) for c in names] if names is not None else None, n, frames, hints)


def signature(model: Any, x: Any = None, y: Any = None, frames: Any = ()) -> dict[str, Any]:
    """The input columns and dtypes a model takes, and its output type.

    ``x``/``y`` are the data passed to ``fit`` (or an input example) when known; otherwise
    ``model_inputs`` reads them from the model and the frames in scope.
    """
    from ..data.fingerprint import data_kind

    inputs: list[dict[str, str]] = []
    missing: list[str] | None = None  # the columns the training data had missing values in
    kind = data_kind(x) if x is not None else None
    if kind == "dataframe":
        inputs = [{"name": str(c), "dtype": frame_dtype(x[c])} for c in x.columns]
        missing = _missing_columns(x)
    elif kind == "ndarray" and x.ndim == 2:
        dtype = "object" if x.dtype.kind in "US" else str(x.dtype)
        inputs = [{"name": f"x{i}", "dtype": dtype} for i in range(x.shape[1])]
        missing = _missing_columns(x)
    else:
        found = model_inputs(model, frames)
        if found is not None:
            inputs, kind = found
    output: dict[str, Any] = {"name": "prediction"}
    if y is not None and hasattr(y, "dtype"):
        output["dtype"] = str(y.dtype)
    if getattr(y, "name", None) is not None and data_kind(y) == "series":
        output["target"] = str(y.name)  # the label column gates look for in a holdout
    classes = getattr(model, "classes_", None)
    if classes is not None:
        try:
            output["classes"] = [c.item() if hasattr(c, "item") else c for c in classes][:1000]
            output.setdefault("dtype", str(classes.dtype))
        except Exception:
            pass
    found = {
        "inputs": inputs,
        "input_kind": kind or "unknown",
        "outputs": [output],
        "estimator": f"{type(model).__module__}.{type(model).__qualname__}",
    }
    if missing is not None:  # serving takes missing values where the model was fitted on them
        found["trained_with_missing"] = missing
    return found


def _missing_columns(x: Any) -> list[str] | None:
    """The columns of a training frame or 2-D array holding a missing value (null, NaN)."""
    import numpy as np

    try:
        if hasattr(x, "columns"):
            return [
                str(c) for c, hit in zip(x.columns, x.isna().any().to_numpy(), strict=True) if hit
            ]
        if x.dtype.kind == "f":
            return [f"x{i}" for i in np.flatnonzero(np.isnan(x).any(axis=0))]
        if x.dtype.kind == "O":
            import pandas as pd

            hits = pd.DataFrame(x).isna().any().to_numpy()
            return [f"x{i}" for i in np.flatnonzero(hits)]
        return []
    except Exception:
        return None
