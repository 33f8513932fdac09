"""Snapshot a DataFrame, Series or ndarray into chunks, and rebuild it from its manifest.

:func:`encode` prepares every column and the index (:mod:`.columns`, :mod:`.index`), asks
the chunker (:mod:`.cdc`) where to cut the rows, writes each column's piece of each
row-chunk through ``put`` and returns the manifest (:mod:`.manifest`); :func:`decode` and
:func:`decode_rows` read it back through ``get``. The module is pure: it never touches the
metadata database or IPython; the object store is only the two callables.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import numpy as np

from ...errors import ValidationError
from .base import SUPPORTED, Column, fetch
from .cdc import boundaries, cut_candidates, parameters, target_for
from .columns import decode_values, prepare
from .index import decode_index, decode_whole_index, encode_whole_index, finish_index, prepare_index
from .labels import json_labels, label_from_json, label_to_json
from .manifest import FORMAT, VERSION, check_manifest
from .numeric import prepare_rows, raw_concat

__all__ = ["decode", "decode_rows", "encode"]


def encode(
    obj: Any,
    put: Callable[[bytes], str],
    *,
    target_rows: int | None = None,
    progress: Callable[[int], None] | None = None,
    workers: int = 2,
    buffers: bool | None = None,
) -> dict:
    """Cut ``obj`` into content-defined chunks, ``put`` each one, and return the manifest.

    ``obj`` is a pandas DataFrame or Series or a numpy ndarray. ``put(bytes) -> hex digest``
    is the object store's write (it dedups by SHA-256, so calling it for bytes already stored
    costs a hash and nothing more). ``target_rows`` is the average row-chunk length; by
    default :func:`.cdc.target_for` picks it from the row count (about 32 chunks, 65,536
    rows for large frames, one chunk under 1,024 rows). It decides where chunks are cut and
    so how much two versions share: ``snapshot`` passes the one the dataset's previous
    version was cut with while it still fits (the manifest records it under ``chunking``).
    ``progress(rows_done)`` is called after each row-chunk.
    ``workers`` threads call ``put`` concurrently (hashing and writing release the GIL, so
    this nearly doubles throughput on two cores); ``put`` must then be thread-safe, as
    ``ObjectStore.put`` is. Pass ``workers=1`` to call it from this thread only.
    ``buffers=True`` says ``put`` accepts any bytes-like object and keeps no reference to it
    once it returns (it hashes and writes it, as a local ``ObjectStore`` does): chunks that
    are a contiguous slice of the data are then passed as read-only memoryviews instead of
    copies. The default turns it on when ``put`` is the ``put`` or ``write`` method of a
    local ``ObjectStore``.

    The returned manifest is a plain JSON-serializable dict; :func:`decode` rebuilds the
    exact object from it. Unsupported content raises ``ValidationError`` before anything is
    written.
    """
    import pandas as pd

    if target_rows is not None and int(target_rows) < 4:
        raise ValidationError(f"target_rows must be at least 4, got {target_rows!r}.")
    manifest: dict[str, Any] = {"format": FORMAT, "version": VERSION}
    if isinstance(obj, pd.DataFrame):
        manifest["kind"] = "dataframe"
        nrows = len(obj)
        cols = [
            prepare(obj.iloc[:, i].array, _where_col(label)) for i, label in enumerate(obj.columns)
        ]
        labels = json_labels(obj.columns)
        index_cols, index_spec = prepare_index(obj.index, "the index")
        columns_index = encode_whole_index(obj.columns, put, "the column labels")
    elif isinstance(obj, pd.Series):
        manifest["kind"] = "series"
        nrows = len(obj)
        manifest["name"] = label_to_json(obj.name, "the Series name")
        cols = [prepare(obj.array, "the Series values")]
        labels = [manifest["name"]]
        index_cols, index_spec = prepare_index(obj.index, "the index")
        columns_index = None
    elif isinstance(obj, np.ndarray) and not isinstance(obj, np.matrix):
        manifest["kind"] = "ndarray"
        arr = obj
        manifest["shape"] = list(arr.shape)
        manifest["order"] = "F" if (arr.ndim > 1 and arr.flags.f_contiguous) else "C"
        if arr.ndim == 0:
            arr = arr.reshape(1)
        if arr.dtype.hasobject and arr.ndim > 1:
            raise ValidationError(
                f"Cannot version an object ndarray with {arr.ndim} dimensions: object arrays "
                "must be 1-D (wrap it in a DataFrame instead). " + SUPPORTED
            )
        nrows = arr.shape[0]
        cols = [prepare(arr, "the array")] if arr.ndim == 1 else [prepare_rows(arr)]
        labels = [None]
        index_cols, index_spec = [], None
        columns_index = None
    else:
        raise ValidationError(
            f"Cannot version a {type(obj).__module__}.{type(obj).__qualname__}: only pandas "
            "DataFrame, pandas Series and numpy ndarray can be snapshotted. Load the data into "
            "a DataFrame first (e.g. pd.read_csv / pd.DataFrame(list(generator)))."
        )

    target = int(target_rows) if target_rows is not None else target_for(nrows)
    key_cols = cols if cols else index_cols
    cand, key_groups = cut_candidates(key_cols, nrows, target)
    bounds = boundaries(cand, nrows, target)
    row_counts = [int(e - s) for s, e in itertools.pairwise(bounds)]

    all_cols = cols + index_cols
    if buffers is None:
        buffers = _takes_buffers(put)
    chunk_lists = _put_chunks(all_cols, bounds, put, progress, workers, bool(buffers))

    for col in all_cols:
        col.finish(put)
    finish_index(index_spec, put)
    for col, chunks in zip(all_cols, chunk_lists, strict=True):
        col.spec["chunks"] = chunks

    manifest["nrows"] = int(nrows)
    manifest["row_chunks"] = row_counts
    manifest["chunking"] = parameters(target, key_groups if cols else [])
    columns = []
    for col, label in zip(cols, labels, strict=True):
        spec = dict(col.spec)
        spec["name"] = label
        columns.append(spec)
    manifest["columns"] = columns
    if index_spec is not None:
        manifest["index"] = index_spec
    if columns_index is not None:
        manifest["columns_index"] = columns_index
    return manifest


def decode(manifest: dict, get: Callable[[str], bytes]) -> Any:
    """Rebuild exactly the object :func:`encode` described: values, dtypes, nulls, index, labels.

    ``get(hex digest) -> bytes`` is the object store's read. Raises ``ValidationError`` for a
    manifest written by a newer, incompatible version of jupyter_mlops.
    """
    check_manifest(manifest)
    return _build(manifest, get, list(range(len(manifest["row_chunks"]))), full=True)


def decode_rows(manifest: dict, get: Callable[[str], bytes], chunk_indices: list[int]) -> Any:
    """Rebuild only the given row-chunks, in the given order, reading nothing else.

    Diffs use this to look at the few row-chunks that differ between two versions without
    loading whole frames. The result has the same kind, columns and dtypes as :func:`decode`;
    its index holds those rows' labels (a RangeIndex is sliced accordingly).
    """
    check_manifest(manifest)
    count = len(manifest["row_chunks"])
    picked = [int(i) for i in chunk_indices]
    for i in picked:
        if not 0 <= i < count:
            raise ValidationError(
                f"Row-chunk {i} does not exist: this version has {count} row-chunks "
                f"(0..{count - 1})."
            )
    return _build(manifest, get, picked, full=False)


def _where_col(label: Any) -> str:
    return f"column {label!r}"


def _put_chunks(
    cols: list[Column],
    bounds: list[int],
    put: Callable[[bytes], str],
    progress: Callable[[int], None] | None,
    workers: int,
    buffers: bool = False,
) -> list[list[str]]:
    """Put every column's piece of every row-chunk; returns the hashes per column.

    With ``workers > 1`` the puts run on a small thread pool (hashing and file writes release
    the GIL) while this thread cuts the next row-chunk; at most two row-chunks are in flight.
    """
    lists: list[list[str]] = [[] for _ in cols]
    spans = list(itertools.pairwise(bounds))
    if workers <= 1:
        for s, e in spans:
            for j, col in enumerate(cols):
                lists[j].append(put(col.view(s, e) if buffers else col.piece(s, e)))
            if progress is not None:
                progress(e)
        return lists
    from concurrent.futures import Future, ThreadPoolExecutor

    def collect(futures: list[Future], end: int) -> None:
        for j, fut in enumerate(futures):
            lists[j].append(fut.result())
        if progress is not None:
            progress(end)

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mlops-chunks") as pool:
        pending: tuple[list[Future], int] | None = None
        try:
            for s, e in spans:
                futures = [
                    pool.submit(put, col.view(s, e) if buffers else col.piece(s, e)) for col in cols
                ]
                if pending is not None:
                    collect(*pending)
                pending = (futures, e)
            if pending is not None:
                collect(*pending)
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return lists


def _takes_buffers(put: Callable[[bytes], str]) -> bool:
    """Whether ``put`` is a local ObjectStore's put/write (they hash and write, keeping nothing)."""
    from ...store.objects import ObjectStore

    owner = getattr(put, "__self__", None)
    func = getattr(put, "__func__", None)
    return (
        isinstance(owner, ObjectStore)
        and func in (ObjectStore.put, ObjectStore.write)
        and bool(getattr(owner, "local", False))
    )


def _build(manifest: dict, get: Callable[[str], bytes], picked: list[int], full: bool) -> Any:
    import pandas as pd

    counts = [int(manifest["row_chunks"][i]) for i in picked]
    kind = manifest["kind"]
    if kind == "ndarray":
        spec = manifest["columns"][0]
        shape = tuple(manifest["shape"])
        blobs = fetch(spec, get, picked)
        if len(shape) <= 1:
            arr = decode_values(spec, blobs, counts, get)
            if len(shape) == 0:
                return arr.reshape(())
            return arr
        arr = raw_concat(blobs, spec)
        arr = arr.reshape((-1, *shape[1:]))
        if manifest.get("order") == "F":
            arr = np.asfortranarray(arr)
        return arr

    index = decode_index(manifest["index"], get, picked, counts, manifest["row_chunks"], full)
    if kind == "series":
        spec = manifest["columns"][0]
        values = decode_values(spec, fetch(spec, get, picked), counts, get)
        name = label_from_json(manifest.get("name"))
        return pd.Series(values, index=index, name=name, dtype=values.dtype, copy=False)
    data = {}
    for j, spec in enumerate(manifest["columns"]):
        values = decode_values(spec, fetch(spec, get, picked), counts, get)
        if isinstance(values, np.ndarray) and values.dtype == object:
            values = pd.Series(values, index=index, dtype=object, copy=False)
        data[j] = values
    columns = decode_whole_index(manifest["columns_index"], get)
    df = pd.DataFrame(data, index=index, copy=False) if data else pd.DataFrame(index=index)
    df.columns = columns
    return df
