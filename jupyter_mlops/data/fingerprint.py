"""The content identity of a DataFrame, Series or ndarray.

A fingerprint hashes values, dtypes, column names and the index, never a file encoding,
so two equal frames always get the same hash. The data-versioning layer uses this hash as
a snapshot's identity, and ``%%track`` records it for every data input.
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass
from typing import Any

__all__ = ["Fingerprint", "content_hash", "data_kind", "fingerprint"]


@dataclass(frozen=True)
class Fingerprint:
    """What a run records about a piece of data."""

    kind: str
    content_hash: str
    shape: tuple[int, ...]
    columns: list[tuple[str, str]] | None


def data_kind(obj: Any) -> str | None:
    """ "dataframe", "series" or "ndarray" for data we fingerprint; None for anything else.

    Checks loaded modules first so that looking at a value never imports pandas.
    """
    if "pandas" in sys.modules:
        import pandas as pd

        if isinstance(obj, pd.DataFrame):
            return "dataframe"
        if isinstance(obj, pd.Series):
            return "series"
    if "numpy" in sys.modules:
        import numpy as np

        if isinstance(obj, np.ndarray) and not isinstance(obj, np.matrix):
            return "ndarray"
    return None


def _update_array(h: Any, values: Any) -> None:
    import numpy as np
    import pandas as pd

    dtype = values.dtype
    h.update(str(dtype).encode() + b"\0")
    if isinstance(dtype, pd.CategoricalDtype):
        h.update(b"ordered" if dtype.ordered else b"unordered")
        _update_array(h, pd.Index(dtype.categories).array)
        codes = np.ascontiguousarray(values.codes)
        h.update(codes.view(np.uint8).data)
        return
    if isinstance(dtype, np.dtype):
        values = np.asarray(values)
        if dtype.kind in "biufcmM":
            h.update(np.ascontiguousarray(values).view(np.uint8).data)
            return
    if isinstance(dtype, pd.DatetimeTZDtype):
        h.update(np.ascontiguousarray(values.asi8).view(np.uint8).data)
        return
    objects = np.asarray(values, dtype=object)
    if pd.api.types.infer_dtype(objects, skipna=False) != "string":
        # Mixed types, nulls of several kinds, lists, dicts: hash each value with its type,
        # so that 1 and "1" (or None and NaN) never share a hash.
        for value in objects:
            h.update(f"{type(value).__module__}.{type(value).__qualname__}:{value!r}\x1f".encode())
        return
    hashed = pd.util.hash_array(objects, categorize=False)
    h.update(np.ascontiguousarray(hashed).view(np.uint8).data)


def _update_index(h: Any, index: Any) -> None:
    import pandas as pd

    h.update(f"index:{type(index).__name__}:{index.nlevels}\0".encode())
    if isinstance(index, pd.RangeIndex):
        h.update(f"{index.start}:{index.stop}:{index.step}:{index.name!r}".encode())
        return
    for level in range(index.nlevels):
        values = index.get_level_values(level)
        h.update(f"{values.name!r}\0".encode())
        _update_array(h, values.array)


def _column_label(label: Any) -> str:
    return label if isinstance(label, str) else repr(label)


_PARALLEL_BYTES = 8 << 20
_pool: Any = None


def _hash_pool() -> Any:
    """Two threads: SHA-256 releases the GIL, so wide frames hash on both cores."""
    global _pool
    if _pool is None:
        from concurrent.futures import ThreadPoolExecutor

        _pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="mlops-hash")
    return _pool


def _numeric_digest(dtype: Any, values: Any) -> bytes:
    import numpy as np

    digest = hashlib.sha256(str(dtype).encode() + b"\0")
    digest.update(np.ascontiguousarray(values).view(np.uint8).data)
    return digest.digest()


def _array_digest(values: Any) -> bytes:
    digest = hashlib.sha256()
    _update_array(digest, values)
    return digest.digest()


def _frame_columns(obj: Any) -> tuple[list[bytes], list[tuple[str, str]]]:
    """One digest per column (in column order), hashed in parallel for large frames."""
    import numpy as np

    jobs = []
    size = 0
    columns = []
    for label, col in obj.items():
        dtype = col.dtype
        if isinstance(dtype, np.dtype) and dtype.kind in "biufcmM":
            values = col.to_numpy()
            size += values.nbytes
            jobs.append((_numeric_digest, (dtype, values)))
        else:
            jobs.append((_array_digest, (col.array,)))
        columns.append((_column_label(label), str(dtype)))
    if size >= _PARALLEL_BYTES and len(jobs) > 1:
        futures = [_hash_pool().submit(fn, *args) for fn, args in jobs]
        return [f.result() for f in futures], columns
    return [fn(*args) for fn, args in jobs], columns


def fingerprint(obj: Any) -> Fingerprint:
    """Hash ``obj`` (a DataFrame, Series or ndarray) by content; raises TypeError otherwise."""
    kind = data_kind(obj)
    h = hashlib.sha256()
    h.update(f"jupyter_mlops-data-v3:{kind}\0".encode())
    if kind == "dataframe":
        h.update(f"{obj.shape}\0".encode())
        cols = obj.columns
        h.update(f"columns:{type(cols).__name__}:{cols.nlevels}:{list(cols.names)!r}\0".encode())
        h.update(f"{[str(d) for d in getattr(cols, 'dtypes', [cols.dtype])]!r}\0".encode())
        digests, columns = _frame_columns(obj)
        for label, digest in zip(obj.columns, digests, strict=True):
            h.update(f"{label!r}\0".encode())
            h.update(digest)
        _update_index(h, obj.index)
        return Fingerprint(kind, h.hexdigest(), tuple(obj.shape), columns)
    if kind == "series":
        h.update(f"{obj.name!r}:{len(obj)}\0".encode())
        _update_array(h, obj.array)
        _update_index(h, obj.index)
        name = _column_label(obj.name) if obj.name is not None else ""
        return Fingerprint(kind, h.hexdigest(), (len(obj),), [(name, str(obj.dtype))])
    if kind == "ndarray":
        import numpy as np

        h.update(f"{obj.shape}\0".encode())
        if obj.dtype.kind in "biufcmM":
            h.update(str(obj.dtype).encode() + b"\0")
            h.update(np.ascontiguousarray(obj).view(np.uint8).data)
        else:
            _update_array(h, obj.reshape(-1))
        return Fingerprint(kind, h.hexdigest(), tuple(obj.shape), None)
    raise TypeError(
        f"Cannot fingerprint a {type(obj).__name__}: pass a DataFrame, Series or ndarray."
    )


def content_hash(obj: Any) -> str:
    """The content hash alone (see ``fingerprint``)."""
    return fingerprint(obj).content_hash
