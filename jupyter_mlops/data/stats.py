"""Per-column statistics of a DataFrame, Series or ndarray, for a data version's metadata.

The result is plain JSON (no numpy scalars; NaN and infinities become None) so it can be
stored next to the version and shown in the data history and diff views without loading
the data. Everything is vectorized: a 5-million-row frame takes well under a second per
handful of numeric columns.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import ValidationError

__all__ = ["column_stats"]

_TOP = 5


def column_stats(obj: Any) -> dict:
    """Statistics per column: what a data version records to describe its content.

    Returns ``{"rows": n, "columns": [{"name", "dtype", "count", "nulls", ...}, ...]}`` in
    column order. Numbers (and booleans' share of True) add ``min``, ``max``, ``mean`` and
    ``std``; datetimes and timedeltas add ``min`` and ``max`` as ISO text; everything else
    (strings, categoricals, objects) adds ``unique`` and ``top``: the 5 most frequent values
    with their counts. A 2-D ndarray is described column by column.
    """
    import pandas as pd

    if isinstance(obj, pd.DataFrame):
        items = [(label, obj.iloc[:, i]) for i, label in enumerate(obj.columns)]
        rows = len(obj)
    elif isinstance(obj, pd.Series):
        items = [(obj.name, obj)]
        rows = len(obj)
    elif isinstance(obj, np.ndarray):
        arr = obj.reshape(1) if obj.ndim == 0 else obj
        if arr.ndim == 1:
            items = [(None, pd.Series(arr, dtype=arr.dtype, copy=False))]
        else:
            flat = arr.reshape(arr.shape[0], -1)
            items = [
                (j, pd.Series(flat[:, j], dtype=flat.dtype, copy=False))
                for j in range(flat.shape[1])
            ]
        rows = int(arr.shape[0])
    else:
        raise ValidationError(
            f"Cannot compute statistics of a {type(obj).__name__}: pass a pandas DataFrame, "
            "a pandas Series or a numpy ndarray."
        )
    return {"rows": int(rows), "columns": [_one(label, s) for label, s in items]}


def _name(label: Any) -> Any:
    if label is None or isinstance(label, str):
        return label
    return _jsonable(label)


def _numpy_numeric(label: Any, s: Any) -> dict[str, Any]:
    """A column of a plain numpy number dtype, in as few passes as the values allow: no
    copy, and no null mask when the minimum is not NaN (NaN propagates through ``min``)."""
    raw = s.to_numpy()
    n = len(raw)
    out: dict[str, Any] = {"name": _name(label), "dtype": str(s.dtype)}
    if n == 0:
        out.update(count=0, nulls=0, min=None, max=None, mean=None, std=None)
        return out
    lo, hi = raw.min(), raw.max()
    values = raw
    nulls = 0
    if raw.dtype.kind == "f" and (np.isnan(lo) or np.isnan(hi)):
        present = ~np.isnan(raw)
        values = raw[present]
        nulls = n - len(values)
        if len(values):
            lo, hi = values.min(), values.max()
    out.update(count=n - nulls, nulls=nulls)
    if not len(values):
        out.update(min=None, max=None, mean=None, std=None)
        return out
    if raw.dtype.kind == "f":
        out["min"], out["max"] = _num(lo), _num(hi)
    else:
        out["min"], out["max"] = int(lo), int(hi)
    as_float = values.dtype == np.float64 or values.dtype.kind in "iu"
    mean = values.mean(dtype=np.float64) if as_float else values.astype(np.float64).mean()
    out["mean"] = _num(mean)
    out["std"] = _std(values, float(mean)) if len(values) > 1 else None
    return out


def _std(values: Any, mean: float) -> float | None:
    """The sample standard deviation. For float64 in one BLAS pass (the sum of squares
    less n·mean²) when that loses no precision, i.e. when the mean is not large against
    the spread; otherwise (and for other dtypes) numpy's two-pass ``std``."""
    n = len(values)
    if values.dtype == np.float64 and values.ndim == 1 and math.isfinite(mean):
        squares = float(np.dot(values, values))
        centered = squares - n * mean * mean
        # the subtraction cancels about log10(squares / centered) digits: keep 12 of 16
        if math.isfinite(squares) and centered > 0 and squares < 1e4 * centered:
            return _num(math.sqrt(centered / (n - 1)))
    return _num(values.std(ddof=1, dtype=np.float64))


def _one(label: Any, s: Any) -> dict[str, Any]:
    import pandas as pd

    dtype = s.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "iuf":
        return _numpy_numeric(label, s)
    nulls = int(s.isna().sum())
    out: dict[str, Any] = {
        "name": _name(label),
        "dtype": str(dtype),
        "count": int(len(s) - nulls),
        "nulls": nulls,
    }
    kind = getattr(dtype, "kind", "O")
    if isinstance(dtype, pd.CategoricalDtype):
        codes = np.asarray(s.array.codes)
        counts = np.bincount(codes[codes >= 0], minlength=len(dtype.categories))
        out["unique"] = int((counts > 0).sum())
        order = np.argsort(-counts, kind="stable")[:_TOP]
        out["top"] = [
            [_jsonable(dtype.categories[i]), int(counts[i])] for i in order if counts[i] > 0
        ]
        return out
    if kind == "b" or pd.api.types.is_bool_dtype(dtype):
        values = s.dropna().to_numpy(dtype=bool)
        out["mean"] = _num(values.mean()) if len(values) else None
        out["top"] = [
            [True, int(values.sum())],
            [False, int(len(values) - values.sum())],
        ]
        out["unique"] = len(np.unique(values))
        return out
    if kind in "iuf" and not isinstance(dtype, pd.ArrowDtype | pd.StringDtype):
        values = s.to_numpy(dtype=np.float64, na_value=np.nan)
        finite = values if kind in "iu" and nulls == 0 else values[~np.isnan(values)]
        if len(finite):
            out["min"] = _num(finite.min())
            out["max"] = _num(finite.max())
            out["mean"] = _num(finite.mean())
            out["std"] = _num(finite.std(ddof=1)) if len(finite) > 1 else None
        else:
            out.update(min=None, max=None, mean=None, std=None)
        if kind in "iu" and len(finite):
            raw = s.dropna().to_numpy()
            out["min"], out["max"] = int(raw.min()), int(raw.max())
        return out
    if kind in "mM":
        present = s.dropna()
        out["min"] = present.min().isoformat() if len(present) else None
        out["max"] = present.max().isoformat() if len(present) else None
        return out
    try:
        counts = s.value_counts(dropna=True)
    except TypeError:  # unhashable values (lists, dicts)
        counts = s.astype(str).value_counts(dropna=True)
    out["unique"] = len(counts)
    out["top"] = [[_jsonable(k), int(v)] for k, v in counts.head(_TOP).items()]
    return out


def _num(x: Any) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def _jsonable(x: Any) -> Any:
    """A value as JSON: numbers and text as they are, NaN as None, anything else as text."""
    if x is None or isinstance(x, str | bool):
        return x
    if isinstance(x, np.bool_):
        return bool(x)
    if isinstance(x, int | np.integer):
        return int(x)
    if isinstance(x, float | np.floating):
        return _num(x)
    if hasattr(x, "isoformat"):
        try:
            return x.isoformat()
        except (TypeError, ValueError):
            pass
    return str(x)
