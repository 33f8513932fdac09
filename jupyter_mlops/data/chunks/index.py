"""The index and the column labels: how they are split into chunks or kept in the manifest.

A RangeIndex is only its parameters. An integer index made of a few arithmetic runs (a
RangeIndex after dropping or filtering rows) is stored as ``[first, step, count]`` runs in
the manifest, without objects. A MultiIndex stores its codes per row-chunk (``raw``) and
each level once as its own object. Any other index is one more column cut at the same row
boundaries as the data. The column labels of a DataFrame are an index stored whole.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .base import Column, fetch, le
from .columns import as_index, decode_values, decode_whole, encode_whole, prepare
from .labels import label_from_json, label_to_json
from .numeric import RawColumn, raw_concat

__all__ = [
    "decode_index",
    "decode_whole_index",
    "encode_whole_index",
    "finish_index",
    "prepare_index",
    "runs_values",
]

_RUNS_MAX = 4096


def prepare_index(index: Any, where: str) -> tuple[list[Column], dict[str, Any]]:
    """The index's chunked columns and its manifest spec (a RangeIndex is just parameters)."""
    import pandas as pd

    if isinstance(index, pd.RangeIndex):
        spec = {
            "type": "range",
            "start": int(index.start),
            "stop": int(index.stop),
            "step": int(index.step),
            "name": label_to_json(index.name, f"the name of {where}"),
        }
        return [], spec
    if isinstance(index, pd.MultiIndex):
        cols: list[Column] = []
        levels = []
        for i in range(index.nlevels):
            codes = np.ascontiguousarray(index.codes[i])
            col = RawColumn(
                codes.astype(le(codes.dtype)), {"enc": "raw", "dtype": le(codes.dtype).str}
            )
            cols.append(col)
            levels.append({"codes": col.spec, "values": index.levels[i]})
        spec = {
            "type": "multi",
            "names": [label_to_json(n, f"a level name of {where}") for n in index.names],
            "levels": levels,
        }
        return cols, spec
    runs = _index_runs(index)
    if runs is not None:
        spec = {
            "type": "runs",
            "name": label_to_json(index.name, f"the name of {where}"),
            "dtype": le(index.dtype).str,
            "runs": runs,
        }
        return [], spec
    col = prepare(index.array, where)
    spec = {
        "type": "index",
        "name": label_to_json(index.name, f"the name of {where}"),
        "column": col.spec,
    }
    freq = getattr(index, "freq", None)
    if freq is not None:
        spec["freq"] = freq.freqstr
    return [col], spec


def _index_runs(index: Any) -> list[list[int]] | None:
    """An integer index as arithmetic runs ``[first, step, count]``, when there are few.

    Labels kept after dropping or filtering rows of a RangeIndex are a few runs; storing
    them as such (in the manifest, no objects) keeps such a version from rewriting the index.
    """
    dtype = index.dtype
    if not isinstance(dtype, np.dtype) or not (
        dtype.kind == "i" or (dtype.kind == "u" and dtype.itemsize < 8)
    ):
        return None
    n = len(index)
    if n < 2:
        return None
    values = index.to_numpy().astype(np.int64, copy=False)
    limit = min(_RUNS_MAX, max(16, n // 1024))
    steps = np.diff(values)  # wraps like the rebuild does, so extremes still round-trip
    changes = np.flatnonzero(steps[1:] != steps[:-1]) + 1
    if len(changes) > 2 * limit:
        return None
    runs: list[list[int]] = []
    start = 0
    while start < n:
        if len(runs) >= limit:
            return None
        if start == n - 1:
            runs.append([int(values[start]), 1, 1])
            break
        j = int(np.searchsorted(changes, start, side="right"))
        last = int(changes[j]) if j < len(changes) else n - 1
        runs.append([int(values[start]), int(steps[start]), last - start + 1])
        start = last + 1
    if not np.array_equal(runs_values(runs, np.dtype(np.int64)), values):
        return None  # pragma: no cover - defensive
    return runs


def runs_values(runs: list[list[int]], dtype: np.dtype) -> np.ndarray:
    """The labels of ``[first, step, count]`` runs, as ``dtype``."""
    parts = [
        np.int64(first) + np.int64(step) * np.arange(count, dtype=np.int64)
        for first, step, count in runs
    ]
    out = np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)
    return out.astype(dtype, copy=False)


def finish_index(spec: dict[str, Any] | None, put: Callable[[bytes], str]) -> None:
    """Store a MultiIndex's levels, each as one object (after its codes were chunked)."""
    if spec and spec["type"] == "multi":
        for level in spec["levels"]:
            values = level.pop("values", None)
            if values is not None:
                level["levels"] = encode_whole(values, put, "a MultiIndex level")


def encode_whole_index(index: Any, put: Callable[[bytes], str], where: str) -> dict[str, Any]:
    """An index stored whole (the column labels): its spec with one object per column."""
    cols, spec = prepare_index(index, where)
    for col in cols:
        col.spec["chunks"] = [put(col.piece(0, len(index)))]
        col.finish(put)
    finish_index(spec, put)
    spec["nrows"] = len(index)
    return spec


def decode_index(
    spec: dict[str, Any],
    get: Callable[[str], bytes],
    picked: list[int],
    counts: list[int],
    all_counts: list[int],
    full: bool,
) -> Any:
    """The index of the picked row-chunks (``counts`` rows each, of ``all_counts``).

    ``full`` says every row-chunk is picked in order, so a RangeIndex and a ``freq`` are
    kept whole.
    """
    import pandas as pd

    name_of = label_from_json
    if spec["type"] == "range":
        rng = pd.RangeIndex(spec["start"], spec["stop"], spec["step"], name=name_of(spec["name"]))
        if full:
            return rng
        starts = np.concatenate([[0], np.cumsum(all_counts, dtype=np.int64)])
        parts = [rng[int(starts[i]) : int(starts[i + 1])] for i in picked]
        if not parts:
            return rng[:0]
        out = parts[0]
        for p in parts[1:]:
            out = out.append(p)
        return out.rename(rng.name)
    if spec["type"] == "runs":
        values = runs_values(spec["runs"], np.dtype(spec["dtype"]))
        if not full:
            starts = np.concatenate([[0], np.cumsum(all_counts, dtype=np.int64)])
            parts = [values[int(starts[i]) : int(starts[i + 1])] for i in picked]
            values = np.concatenate(parts) if parts else values[:0]
        return pd.Index(values, dtype=values.dtype, name=name_of(spec["name"]), copy=False)
    if spec["type"] == "multi":
        levels, codes = [], []
        for level in spec["levels"]:
            levels.append(as_index(decode_whole(level["levels"], get)))
            codes.append(raw_concat(fetch(level["codes"], get, picked), level["codes"]))
        names = [name_of(n) for n in spec["names"]]
        return pd.MultiIndex(levels=levels, codes=codes, names=names, verify_integrity=False)
    col = spec["column"]
    values = decode_values(col, fetch(col, get, picked), counts, get)
    index = pd.Index(values, dtype=values.dtype, name=name_of(spec["name"]), copy=False)
    if full and spec.get("freq"):
        index = pd.Index(type(index)(index, freq=spec["freq"]), name=index.name)
    return index


def decode_whole_index(spec: dict[str, Any], get: Callable[[str], bytes]) -> Any:
    """The index :func:`encode_whole_index` stored (the column labels)."""
    n = int(spec["nrows"])
    return decode_index(spec, get, [0], [n], [n], True)
