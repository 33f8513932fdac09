"""Content-addressed, chunked storage of DataFrames, Series and ndarrays (the data-versioning engine).

A snapshot is cut into *row-chunks* whose boundaries are chosen by content (content-defined
chunking over rows), and every column of every row-chunk becomes one immutable object in the
object store, named by its SHA-256. Because a boundary depends only on the rows around it,
inserting, deleting or editing rows changes only the objects around the edit: a second version
of a big frame writes only the few chunks that differ, and an unchanged frame writes nothing.

The module is pure: it never touches the metadata database or IPython. It receives two
callables for the object store, ``put(bytes) -> hex digest`` and ``get(hex digest) -> bytes``,
and exchanges a JSON-serializable *manifest* that describes everything needed to rebuild the
object exactly (values, dtypes, nulls, index, column labels and order).

Chunking (``cdc-localmin-v2``). Every data column that is almost all distinct on a sample
of rows is a *key group* (up to 16; integers and timestamps first, then text, then floats;
columns that are not distinct on their own are combined into one group only when no column
is). A row's hash is the smallest of its groups' 64-bit hashes, and a row ends a row-chunk
when its hash is the smallest within ``target_rows // 2`` rows on either side (a local
minimum), with a minimum (``target_rows // 4``) and a maximum (``2 * target_rows``) chunk
length. The decision depends only on rows that near, chunks are about ``target_rows`` rows
with little spread, and a cut belongs to one group, so editing values of one column in
scattered rows moves very few boundaries (about 1/16 of what a single key column would);
editing any column rewrites that column's chunks. The same boundaries apply to every column
and to the index. Manifests of version 1 (``cdc-rowhash-v1`` boundaries) still decode: the
boundaries only matter when writing.

An integer index made of a few arithmetic runs (a RangeIndex after dropping or filtering
rows) is stored in the manifest as ``[first, step, count]`` runs, without objects.

Column encodings (all little-endian, uncompressed, deterministic so equal data gives equal
bytes):

* ``raw``: numpy bool/int/uint/float/complex/datetime64/timedelta64 (and fixed-width bytes
  and unicode in ndarrays): the raw array bytes of the rows.
* ``masked``: pandas nullable Int*/UInt*/Float*/boolean: the data bytes (zeroed under the
  mask) followed by the null mask as little-endian packed bits.
* ``datetimetz``: tz-aware datetimes: int64 epoch values plus the unit and time zone.
* ``categorical``: integer codes per row-chunk; the categories once, as their own object.
* ``string``: pandas string dtypes (pandas 3's default ``str`` and ``string[python]`` /
  ``string[pyarrow]``): validity bits, offsets and UTF-8 bytes (Arrow layout).
* ``objstr``: object columns holding only ``str`` plus nulls: as ``string``, plus which null
  each missing value was (None, NaN, pd.NA, NaT).
* ``objmixed``: object columns mixing scalars (str, bytes, bool, int, float, Decimal, None,
  NaN, pd.NA, NaT and numpy bool/int64/float64 scalars): a type tag and an exact text form per
  value. Lists, dicts, tuples and other objects are refused with a ValidationError.
* ``arrow``: pyarrow-backed ``ArrowDtype`` columns: one Arrow IPC stream per chunk.

Period, interval and sparse dtypes are refused with a ValidationError that lists what is
supported; nothing is ever stored that would not round-trip exactly.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import struct
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import numpy as np

from ..errors import ValidationError

__all__ = [
    "DEFAULT_TARGET_ROWS",
    "FORMAT",
    "VERSION",
    "chunk_hashes",
    "decode",
    "decode_rows",
    "encode",
    "row_chunk_signatures",
]

FORMAT = "jupyter_mlops.chunks"
VERSION = 2
DEFAULT_TARGET_ROWS = 65536
_ENC_VERSION = 1
_KEY_SAMPLE = 8192
_KEY_MAX_COLUMNS = 4
_KEY_MAX_GROUPS = 16
_HIT_DENSITY = 16
_RUNS_MAX = 4096
_KEY_DISTINCT = 0.9

_SUPPORTED = (
    "Supported: pandas DataFrame and Series, and numpy ndarray, whose columns hold numpy "
    "bool/int/float/complex/datetime64/timedelta64, tz-aware datetimes, categoricals, nullable "
    "Int/UInt/Float/boolean, pandas string dtypes, pyarrow-backed dtypes, or object values that "
    "are str, bytes, bool, int, float, Decimal, None, NaN, pd.NA or NaT."
)

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLD = np.uint64(0x9E3779B97F4A7C15)
_SEEDS = [np.uint64((k * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019) & (2**64 - 1)) for k in range(8)]


# ----------------------------------------------------------------------------- public API


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
    costs a hash and nothing more). ``target_rows`` is the average row-chunk length (default
    65,536); keep it fixed for a dataset, since it decides where chunks are cut and so how
    much two versions share. ``progress(rows_done)`` is called after each row-chunk.
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

    target = int(target_rows or DEFAULT_TARGET_ROWS)
    if target < 4:
        raise ValidationError(f"target_rows must be at least 4, got {target_rows!r}.")
    manifest: dict[str, Any] = {"format": FORMAT, "version": VERSION}
    if isinstance(obj, pd.DataFrame):
        manifest["kind"] = "dataframe"
        nrows = len(obj)
        cols = [
            _prepare(obj.iloc[:, i].array, _where_col(label)) for i, label in enumerate(obj.columns)
        ]
        labels = _json_labels(obj.columns)
        index_cols, index_spec = _prepare_index(obj.index, "the index")
        columns_index = _encode_whole_index(obj.columns, put, "the column labels")
    elif isinstance(obj, pd.Series):
        manifest["kind"] = "series"
        nrows = len(obj)
        manifest["name"] = _label_to_json(obj.name, "the Series name")
        cols = [_prepare(obj.array, "the Series values")]
        labels = [manifest["name"]]
        index_cols, index_spec = _prepare_index(obj.index, "the index")
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
                "must be 1-D (wrap it in a DataFrame instead). " + _SUPPORTED
            )
        nrows = arr.shape[0]
        cols = [_prepare(arr, "the array")] if arr.ndim == 1 else [_prepare_rows(arr)]
        labels = [None]
        index_cols, index_spec = [], None
        columns_index = None
    else:
        raise ValidationError(
            f"Cannot version a {type(obj).__module__}.{type(obj).__qualname__}: only pandas "
            "DataFrame, pandas Series and numpy ndarray can be snapshotted. Load the data into "
            "a DataFrame first (e.g. pd.read_csv / pd.DataFrame(list(generator)))."
        )

    key_cols = cols if cols else index_cols
    cand, key_groups = _cut_candidates(key_cols, nrows, target)
    bounds = _boundaries(cand, nrows, target)
    row_counts = [int(e - s) for s, e in itertools.pairwise(bounds)]

    all_cols = cols + index_cols
    if buffers is None:
        buffers = _takes_buffers(put)
    chunk_lists = _put_chunks(all_cols, bounds, put, progress, workers, bool(buffers))

    for col in all_cols:
        col.finish(put)
    _finish_index(index_spec, put)
    for col, chunks in zip(all_cols, chunk_lists, strict=True):
        col.spec["chunks"] = chunks

    manifest["nrows"] = int(nrows)
    manifest["row_chunks"] = row_counts
    manifest["chunking"] = {
        "algorithm": "cdc-localmin-v2",
        "target_rows": target,
        "window": _window(target),
        "min_rows": _min_rows(target),
        "max_rows": _max_rows(target),
        "key_columns": [i for g in key_groups for i in g] if cols else [],
        "key_groups": key_groups if cols else [],
    }
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
    _check_manifest(manifest)
    return _build(manifest, get, list(range(len(manifest["row_chunks"]))), full=True)


def decode_rows(manifest: dict, get: Callable[[str], bytes], chunk_indices: list[int]) -> Any:
    """Rebuild only the given row-chunks, in the given order, reading nothing else.

    Diffs use this to look at the few row-chunks that differ between two versions without
    loading whole frames. The result has the same kind, columns and dtypes as :func:`decode`;
    its index holds those rows' labels (a RangeIndex is sliced accordingly).
    """
    _check_manifest(manifest)
    count = len(manifest["row_chunks"])
    picked = [int(i) for i in chunk_indices]
    for i in picked:
        if not 0 <= i < count:
            raise ValidationError(
                f"Row-chunk {i} does not exist: this version has {count} row-chunks "
                f"(0..{count - 1})."
            )
    return _build(manifest, get, picked, full=False)


def chunk_hashes(manifest: dict) -> set[str]:
    """Every object hash the manifest references (row-chunks, categories, levels, labels).

    Garbage collection keeps these objects alive and ``doctor`` checks that they exist.
    """
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("chunks", "objects") and isinstance(value, list):
                    found.update(v for v in value if isinstance(v, str))
                else:
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(manifest)
    return found


def row_chunk_signatures(manifest: dict) -> list[str]:
    """One digest per row-chunk over that chunk's objects in every column and the index.

    Two versions' row-chunks with equal signatures hold the same rows (same values, dtypes and
    column labels), so a diff can skip them without reading any data. A RangeIndex is
    positional and not part of the signature.
    """
    _check_manifest(manifest)
    per_row: list[tuple[str, list[str]]] = []
    for spec in manifest.get("columns", []):
        per_row.append(_spec_identity(spec))
    index = manifest.get("index")
    if index:
        if index["type"] == "index":
            per_row.append(_spec_identity(index["column"]))
        elif index["type"] == "multi":
            for level in index["levels"]:
                per_row.append(_spec_identity(level["codes"]))
        elif index["type"] == "runs":
            values = _runs_values(index["runs"], np.dtype(index["dtype"]))
            bounds = np.concatenate([[0], np.cumsum(manifest["row_chunks"], dtype=np.int64)])
            digests = [
                hashlib.sha256(values[int(s) : int(e)].tobytes()).hexdigest()
                for s, e in itertools.pairwise(bounds)
            ]
            per_row.append((f"runs:{index['dtype']}", digests))
    signatures = []
    for i in range(len(manifest["row_chunks"])):
        h = hashlib.sha256()
        for static, chunks in per_row:
            h.update(static.encode())
            h.update(b":")
            h.update(chunks[i].encode())
            h.update(b"\n")
        signatures.append(h.hexdigest())
    return signatures


# ----------------------------------------------------------------------------- chunking


def _put_chunks(
    cols: list[_Column],
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
    from ..store.objects import ObjectStore

    owner = getattr(put, "__self__", None)
    func = getattr(put, "__func__", None)
    return (
        isinstance(owner, ObjectStore)
        and func in (ObjectStore.put, ObjectStore.write)
        and bool(getattr(owner, "local", False))
    )


def _min_rows(target: int) -> int:
    return max(1, target // 4)


def _max_rows(target: int) -> int:
    return 2 * target


def _window(target: int) -> int:
    return max(1, target // 2)


def _boundaries(cand: np.ndarray | None, n: int, target: int) -> list[int]:
    """Row offsets where chunks start/end: the candidate rows end chunks, within length limits.

    A candidate closer than ``target // 4`` rows to the previous cut is skipped (it only
    happens with equal key values) and chunks are capped at ``2 * target`` rows.
    """
    if n == 0:
        return [0, 0]
    lo, hi = _min_rows(target), _max_rows(target)
    if cand is None:
        cand = np.empty(0, dtype=np.int64)
    cuts = [0]
    pos = 0
    while pos < n:
        j = int(np.searchsorted(cand, pos + lo - 1, side="left"))
        end = int(cand[j]) + 1 if j < len(cand) else n
        end = min(end, pos + hi, n)
        cuts.append(end)
        pos = end
    return cuts


def _mix(z: np.ndarray) -> np.ndarray:
    """The splitmix64 finalizer, vectorized (uint64 arithmetic wraps)."""
    z = z ^ (z >> np.uint64(30))
    z = z * _M1
    z = z ^ (z >> np.uint64(27))
    z = z * _M2
    return z ^ (z >> np.uint64(31))


def _key_groups(cols: list[_Column], n: int) -> list[list[int]]:
    """The key groups: each is one column, or a few, whose row keys are almost all distinct.

    Columns are tried in order of preference (ids and timestamps, which users rarely edit in
    place, then text, then floats, then booleans and categoricals; column order within a
    rank). Every column distinct on its own (on a sample of rows) is a group, up to
    ``_KEY_MAX_GROUPS``; when none is, columns are combined into one group until the
    combination is distinct.
    """
    ranked = sorted((c.key_rank(), i) for i, c in enumerate(cols) if c.key_rank() is not None)
    sample = min(n, _KEY_SAMPLE)
    groups: list[list[int]] = []
    others: list[tuple[int, np.ndarray]] = []
    for _, i in ranked:
        keys = cols[i].key(0, sample)
        if keys is None:
            continue
        if len(np.unique(keys)) >= _KEY_DISTINCT * sample:
            groups.append([i])
            if len(groups) >= _KEY_MAX_GROUPS:
                break
        else:
            others.append((i, keys))
    if groups:
        return groups
    used: list[int] = []
    acc = np.zeros(sample, dtype=np.uint64)
    for i, keys in others:
        trial = _mix((acc ^ keys) * _GOLD + np.uint64(len(used) + 1))
        if len(np.unique(trial)) <= len(np.unique(acc)) and used:
            continue  # adds nothing on the sample
        used.append(i)
        acc = trial
        if len(used) >= _KEY_MAX_COLUMNS or len(np.unique(acc)) >= _KEY_DISTINCT * sample:
            break
    return [used] if used else []


def _group_hash(cols: list[_Column], group: list[int], g: int, start: int, stop: int) -> Any:
    """A 64-bit hash of the group's keys for rows ``start:stop`` (seeded by the group)."""
    keys = cols[group[0]].key(start, stop)
    h = np.bitwise_xor(keys, _SEEDS[g % len(_SEEDS)])
    h *= _M1
    for k, i in enumerate(group[1:], 1):
        h ^= h >> np.uint64(29)
        h += cols[i].key(start, stop) ^ _SEEDS[k % len(_SEEDS)]
        h *= _M2
    return h


def _cut_candidates(
    cols: list[_Column], n: int, target: int
) -> tuple[np.ndarray | None, list[list[int]]]:
    """The rows that may end a chunk, sorted, and the key groups they were computed from.

    Each key group (see :func:`_key_groups`) hashes every row; a row's hash is the smallest
    of its groups' hashes, and a row is a candidate when its hash is the smallest within
    ``target // 2`` rows on either side (a local minimum). The decision depends only on rows
    that near, so inserting, deleting or editing rows moves cuts only around the edit, and
    the cuts are about ``target`` rows apart with little spread (so the rows after the last
    cut, which an append rewrites, are few). A cut belongs to one group, so editing one key
    column moves only about ``1 / len(groups)`` of the cuts a single key would.

    Only hashes below a threshold that leaves about ``_HIT_DENSITY`` rows per ``target`` are
    kept (the minimum of a window is one of them unless the window has none, which is as
    rare as ``exp(-_HIT_DENSITY)``), so the local minima are found among a few rows.
    """
    if n == 0:
        return None, []
    groups = _key_groups(cols, n)
    if not groups:
        return None, []
    share = _HIT_DENSITY / (target * len(groups))
    limit = np.uint64(min(2**64 - 1, int(share * 2.0**64)))
    rows: list[np.ndarray] = []
    vals: list[np.ndarray] = []
    step = 1 << 16  # blocks that stay in cache
    for start in range(0, n, step):
        stop = min(n, start + step)
        for g, group in enumerate(groups):
            h = _group_hash(cols, group, g, start, stop)
            hit = np.flatnonzero(h <= limit)
            rows.append(hit + start)
            vals.append(h[hit])
    all_rows = np.concatenate(rows)
    all_vals = np.concatenate(vals)
    order = np.argsort(all_rows, kind="stable")
    return _sparse_local_minima(all_rows[order], all_vals[order], _window(target)), groups


def _sparse_local_minima(rows: np.ndarray, vals: np.ndarray, w: int) -> np.ndarray:
    """Rows (sorted, repeats allowed) whose value no other row within ``w`` rows undercuts."""
    m = len(rows)
    ok = np.ones(m, dtype=bool)
    d = 1
    while d < m:
        near = rows[d:] - rows[:-d] <= w
        if not near.any():
            break  # rows are sorted: pairs further apart in the list are further apart
        left, right = vals[:-d], vals[d:]
        ok[:-d] &= ~(near & (right < left))
        ok[d:] &= ~(near & (left < right))
        d += 1
    return np.unique(rows[ok])


def _bits64(arr: np.ndarray) -> np.ndarray:
    """The raw bits of a numeric array widened to uint64 (folding wider items)."""
    arr = np.ascontiguousarray(arr)
    size = arr.dtype.itemsize
    if size in (1, 2, 4, 8):
        return arr.view(f"u{size}").astype(np.uint64, copy=False)
    if size % 8 == 0:
        words = arr.view(np.uint64).reshape(len(arr), size // 8)
        out = words[:, 0].copy()
        for k in range(1, size // 8):
            out = _mix(out ^ words[:, k])
        return out
    return None  # type: ignore[return-value]


# ----------------------------------------------------------------------------- columns


class _Column:
    """A prepared column: its manifest spec, how to cut row-chunk bytes, and its row keys."""

    def __init__(self, spec: dict[str, Any]):
        self.spec = spec
        self.spec.setdefault("v", _ENC_VERSION)

    def key_rank(self) -> int | None:
        """Preference as a chunking key (lower first); None: never a key."""
        return None

    def piece(self, start: int, stop: int) -> bytes:
        raise NotImplementedError

    def view(self, start: int, stop: int) -> bytes | memoryview:
        """The piece's bytes, as a memoryview of the data when they are a contiguous slice."""
        return self.piece(start, stop)

    def key(self, start: int, stop: int) -> np.ndarray | None:
        return None

    def finish(self, put: Callable[[bytes], str]) -> None:
        """Store the column's shared objects (categories, levels)."""


class _RawColumn(_Column):
    def key_rank(self) -> int | None:
        kind = self.arr.dtype.kind
        if kind in "iumM":
            return 0
        if kind in "fc":
            return 2
        if kind == "b":
            return 3
        return None

    def __init__(self, arr: np.ndarray, spec: dict[str, Any]):
        super().__init__(spec)
        self.arr = arr

    def piece(self, start: int, stop: int) -> bytes:
        return self.arr[start:stop].tobytes()

    def view(self, start: int, stop: int) -> bytes | memoryview:
        return _byte_view(self.arr[start:stop])

    def key(self, start: int, stop: int) -> np.ndarray | None:
        if self.arr.dtype.kind not in "biufcmM":
            return None
        return _bits64(self.arr[start:stop])


class _MaskedColumn(_RawColumn):
    def __init__(self, data: np.ndarray, mask: np.ndarray, spec: dict[str, Any]):
        super().__init__(data, spec)
        self.mask = mask

    def piece(self, start: int, stop: int) -> bytes:
        return self.arr[start:stop].tobytes() + _pack_mask(self.mask[start:stop])

    def view(self, start: int, stop: int) -> bytes | memoryview:
        return self.piece(start, stop)

    def key(self, start: int, stop: int) -> np.ndarray | None:
        return _bits64(self.arr[start:stop]) ^ self.mask[start:stop].astype(np.uint64)


class _CategoricalColumn(_RawColumn):
    def key_rank(self) -> int | None:
        return 3

    def __init__(self, codes: np.ndarray, categories: Any, spec: dict[str, Any], where: str):
        super().__init__(codes, spec)
        self.categories = categories
        self.where = where
        self._cat_hash: np.ndarray | None = None

    def key(self, start: int, stop: int) -> np.ndarray | None:
        if self._cat_hash is None:
            import pandas as pd

            hashed = pd.util.hash_pandas_object(pd.Index(self.categories), index=False)
            self._cat_hash = np.append(hashed.to_numpy(dtype=np.uint64), np.uint64(0x5A5A))
        codes = self.arr[start:stop].astype(np.int64)
        codes[codes < 0] = len(self._cat_hash) - 1
        return self._cat_hash[codes]

    def finish(self, put: Callable[[bytes], str]) -> None:
        cats = _prepare(self.categories, f"the categories of {self.where}")
        cats.spec["chunks"] = [put(cats.piece(0, len(self.categories)))]
        cats.spec["nrows"] = len(self.categories)
        cats.finish(put)
        self.spec["categories"] = cats.spec


class _StringColumn(_Column):
    def key_rank(self) -> int | None:
        return 1

    def __init__(self, pa_array: Any, spec: dict[str, Any], values: Any = None):
        super().__init__(spec)
        self.pa = pa_array
        self.values = values

    def piece(self, start: int, stop: int) -> bytes:
        return _pack_strings(self.pa.slice(start, stop - start))

    def key(self, start: int, stop: int) -> np.ndarray | None:
        import pandas as pd

        part = self.pa.slice(start, stop - start).to_numpy(zero_copy_only=False)
        return pd.util.hash_array(part.astype(object), categorize=False).astype(np.uint64)


class _ObjStrColumn(_StringColumn):
    def __init__(self, pa_array: Any, null_kinds: np.ndarray, spec: dict[str, Any]):
        super().__init__(pa_array, spec)
        self.kinds = null_kinds  # uint8 per row (255 = not null)

    def piece(self, start: int, stop: int) -> bytes:
        kinds = self.kinds[start:stop]
        return _pack_strings(self.pa.slice(start, stop - start)) + kinds[kinds != 255].tobytes()


class _MixedColumn(_Column):
    def __init__(self, tags: np.ndarray, payload: Any, spec: dict[str, Any]):
        super().__init__(spec)
        self.tags = tags
        self.payload = payload

    def piece(self, start: int, stop: int) -> bytes:
        tags = self.tags[start:stop]
        return (
            struct.pack("<Q", len(tags))
            + tags.tobytes()
            + _pack_strings(self.payload.slice(start, stop - start))
        )


class _ArrowColumn(_Column):
    def __init__(self, chunked: Any, spec: dict[str, Any]):
        super().__init__(spec)
        self.chunked = chunked

    def piece(self, start: int, stop: int) -> bytes:
        import pyarrow as pa

        part = self.chunked.slice(start, stop - start).combine_chunks()
        batch = pa.record_batch([part], names=["v"])
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, batch.schema) as writer:
            writer.write_batch(batch)
        return sink.getvalue().to_pybytes()


class _RowsColumn(_Column):
    """An n-D ndarray cut along its first axis: each chunk holds whole rows."""

    def __init__(self, arr: np.ndarray, spec: dict[str, Any]):
        super().__init__(spec)
        self.arr = arr

    def key_rank(self) -> int | None:
        return 0

    def piece(self, start: int, stop: int) -> bytes:
        return self.arr[start:stop].tobytes()

    def view(self, start: int, stop: int) -> bytes | memoryview:
        return _byte_view(self.arr[start:stop])

    def key(self, start: int, stop: int) -> np.ndarray | None:
        flat = self.arr[start:stop].reshape(stop - start, -1)
        if flat.dtype.kind not in "biufcmM" or flat.shape[1] == 0:
            return None
        out = _bits64(flat[:, 0])
        for k in range(1, min(flat.shape[1], 4)):
            out = _mix(out ^ _bits64(flat[:, k]))
        return out


def _byte_view(part: np.ndarray) -> bytes | memoryview:
    """A read-only memoryview of a C-contiguous array's bytes (a copy if not contiguous)."""
    if not part.flags.c_contiguous:
        return part.tobytes()
    flat = part.reshape(-1).view(np.uint8)
    view = memoryview(flat)
    return view.toreadonly()


def _where_col(label: Any) -> str:
    return f"column {label!r}"


def _le(dtype: np.dtype) -> np.dtype:
    return dtype.newbyteorder("<") if dtype.byteorder == ">" else dtype


def _prepare_rows(arr: np.ndarray) -> _Column:
    dtype = arr.dtype
    if dtype.kind not in "biufcmMSU":
        raise ValidationError(f"Cannot version an ndarray of dtype {dtype}. " + _SUPPORTED)
    le = _le(dtype)
    data = np.ascontiguousarray(arr, dtype=le)
    return _RowsColumn(data, {"enc": "raw", "dtype": le.str, "orig": dtype.str})


def _prepare(values: Any, where: str) -> _Column:
    """Choose the encoding of one column (a numpy array or a pandas ExtensionArray)."""
    import pandas as pd

    if isinstance(values, pd.Index | pd.Series):
        values = values.array
    if type(values) is pd.arrays.NumpyExtensionArray:
        values = values.to_numpy()
    dtype = values.dtype
    if isinstance(dtype, np.dtype):
        arr = np.asarray(values)
        if dtype.kind in "biufcmMSU":
            le = _le(dtype)
            arr = np.ascontiguousarray(arr, dtype=le)
            spec = {"enc": "raw", "dtype": le.str, "orig": dtype.str}
            return _RawColumn(arr, spec)
        if dtype.kind == "O":
            return _prepare_object(arr, where)
        raise ValidationError(
            f"Cannot version {where}: dtype {dtype} is not supported. " + _SUPPORTED
        )
    if isinstance(dtype, pd.CategoricalDtype):
        codes = np.ascontiguousarray(values.codes)
        spec = {
            "enc": "categorical",
            "dtype": "category",
            "ordered": bool(dtype.ordered),
            "codes": _le(codes.dtype).str,
        }
        return _CategoricalColumn(codes.astype(_le(codes.dtype)), dtype.categories, spec, where)
    if isinstance(dtype, pd.DatetimeTZDtype):
        tz = _tz_to_json(dtype, where)
        i8 = np.ascontiguousarray(values.asi8, dtype="<i8")
        return _RawColumn(
            i8, {"enc": "datetimetz", "dtype": str(dtype), "unit": dtype.unit, "tz": tz}
        )
    if isinstance(dtype, pd.StringDtype):
        na = "nan" if _is_nan(dtype.na_value) else "NA"
        spec = {"enc": "string", "dtype": str(dtype), "storage": dtype.storage, "na": na}
        return _StringColumn(_arrow_strings(values), spec)
    if isinstance(dtype, pd.ArrowDtype):
        import pyarrow as pa

        chunked = (
            values._pa_array
            if hasattr(values, "_pa_array")
            else pa.chunked_array([values.__arrow_array__()])
        )
        return _ArrowColumn(chunked, {"enc": "arrow", "dtype": str(dtype)})
    masked = _masked_parts(values)
    if masked is not None:
        data, mask = masked
        data = np.array(data, dtype=_le(data.dtype), copy=True)
        data[mask] = 0  # what lies under the mask is undefined; zero it so equal data hash equal
        spec = {"enc": "masked", "dtype": str(dtype), "data": data.dtype.str}
        return _MaskedColumn(data, np.ascontiguousarray(mask, dtype=bool), spec)
    raise ValidationError(f"Cannot version {where}: dtype {dtype} is not supported. " + _SUPPORTED)


def _masked_parts(values: Any) -> tuple[np.ndarray, np.ndarray] | None:
    try:
        from pandas.core.arrays.masked import BaseMaskedArray
    except ImportError:  # pragma: no cover - pandas layout changed
        return None
    if isinstance(values, BaseMaskedArray):
        return values._data, values._mask
    return None


def _is_nan(x: Any) -> bool:
    return isinstance(x, float) and x != x


def _arrow_strings(values: Any) -> Any:
    import pyarrow as pa

    got = values.__arrow_array__()
    if isinstance(got, pa.ChunkedArray):
        got = got.combine_chunks() if got.num_chunks != 1 else got.chunk(0)
    if not pa.types.is_large_string(got.type):
        got = got.cast(pa.large_string())
    return got


# Null kinds in object columns and type tags of the mixed encoding.
_NULL_NONE, _NULL_NAN, _NULL_NA, _NULL_NAT, _NULL_NPNAN = 0, 1, 2, 3, 4


def _null_kind(v: Any) -> int | None:
    import pandas as pd

    if v is None:
        return _NULL_NONE
    if v is pd.NA:
        return _NULL_NA
    if v is pd.NaT:
        return _NULL_NAT
    t = type(v)
    if t is float and v != v:
        return _NULL_NAN
    if t is np.float64 and v != v:
        return _NULL_NPNAN
    return None


def _null_value(kind: int) -> Any:
    import pandas as pd

    return {
        _NULL_NONE: None,
        _NULL_NAN: float("nan"),
        _NULL_NA: pd.NA,
        _NULL_NAT: pd.NaT,
        _NULL_NPNAN: np.float64("nan"),
    }[kind]


def _prepare_object(arr: np.ndarray, where: str) -> _Column:
    import pandas as pd
    import pyarrow as pa

    arr = np.asarray(arr, dtype=object)
    mask = pd.isna(arr)
    nulls = np.flatnonzero(mask)
    kinds = np.full(len(arr), 255, dtype=np.uint8)
    simple_nulls = True
    for i in nulls:
        k = _null_kind(arr[i])
        if k is None:
            simple_nulls = False
            break
        kinds[i] = k
    if simple_nulls:
        present = arr[~mask] if len(nulls) else arr
        kind = pd.api.types.infer_dtype(present, skipna=False) if len(present) else "empty"
        if kind in ("string", "empty"):
            clean = arr
            if len(nulls):
                clean = arr.copy()
                clean[mask] = None
            try:
                strings = pa.array(clean, type=pa.large_string(), from_pandas=True)
            except (pa.ArrowException, TypeError, ValueError):
                strings = None
            if strings is not None:
                spec = {"enc": "objstr", "dtype": "object"}
                return _ObjStrColumn(strings, kinds, spec)
    tags, payload = _mixed_tags(arr, where)
    spec = {"enc": "objmixed", "dtype": "object"}
    return _MixedColumn(tags, pa.array(payload, type=pa.large_binary()), spec)


_T_NONE, _T_STR, _T_BYTES, _T_BOOL, _T_INT, _T_FLOAT, _T_NA, _T_NAT = range(8)
_T_NPFLOAT, _T_NPINT, _T_NPBOOL, _T_DECIMAL, _T_NPSTR = range(8, 13)


def _mixed_tags(arr: np.ndarray, where: str) -> tuple[np.ndarray, list[bytes | None]]:
    """Tag and exact text of every value of an object column; refuse anything else."""
    import pandas as pd

    tags = np.empty(len(arr), dtype=np.uint8)
    payload: list[bytes | None] = []
    append = payload.append
    for i, v in enumerate(arr):
        t = type(v)
        if t is str:
            tags[i] = _T_STR
            append(v.encode("utf-8", "surrogatepass"))
        elif v is None:
            tags[i] = _T_NONE
            append(None)
        elif t is float:
            tags[i] = _T_FLOAT
            append(v.hex().encode())
        elif t is int:
            tags[i] = _T_INT
            append(str(v).encode())
        elif t is bool:
            tags[i] = _T_BOOL
            append(b"1" if v else b"0")
        elif t is bytes:
            tags[i] = _T_BYTES
            append(v)
        elif v is pd.NA:
            tags[i] = _T_NA
            append(None)
        elif v is pd.NaT:
            tags[i] = _T_NAT
            append(None)
        elif t is np.float64:
            tags[i] = _T_NPFLOAT
            append(float(v).hex().encode())
        elif t is np.int64:
            tags[i] = _T_NPINT
            append(str(int(v)).encode())
        elif t is np.bool_:
            tags[i] = _T_NPBOOL
            append(b"1" if v else b"0")
        elif t is Decimal:
            tags[i] = _T_DECIMAL
            append(str(v).encode())
        elif t is np.str_:
            tags[i] = _T_NPSTR
            append(str(v).encode("utf-8", "surrogatepass"))
        else:
            raise ValidationError(
                f"Cannot version {where}: it is an object column holding a {t.__name__} at "
                f"row {i} ({_short_repr(v)}). Object columns can hold str, bytes, bool, int, "
                "float, Decimal and missing values (None, NaN, pd.NA, NaT); convert the "
                "column first (e.g. to JSON text with df[col].map(json.dumps)) or drop it."
            )
    return tags, payload


def _from_tag(tag: int, text: bytes | None) -> Any:
    import pandas as pd

    if tag == _T_STR:
        return text.decode("utf-8", "surrogatepass")  # type: ignore[union-attr]
    if tag == _T_NONE:
        return None
    if tag == _T_FLOAT:
        return float.fromhex(text.decode())  # type: ignore[union-attr]
    if tag == _T_INT:
        return int(text)  # type: ignore[arg-type]
    if tag == _T_BOOL:
        return text == b"1"
    if tag == _T_BYTES:
        return bytes(text)  # type: ignore[arg-type]
    if tag == _T_NA:
        return pd.NA
    if tag == _T_NAT:
        return pd.NaT
    if tag == _T_NPFLOAT:
        return np.float64(float.fromhex(text.decode()))  # type: ignore[union-attr]
    if tag == _T_NPINT:
        return np.int64(int(text))  # type: ignore[arg-type]
    if tag == _T_NPBOOL:
        return np.bool_(text == b"1")
    if tag == _T_DECIMAL:
        return Decimal(text.decode())  # type: ignore[union-attr]
    if tag == _T_NPSTR:
        return np.str_(text.decode("utf-8", "surrogatepass"))  # type: ignore[union-attr]
    raise ValidationError(f"Unknown value tag {tag} in a stored object column.")


def _short_repr(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


def _tz_to_json(dtype: Any, where: str) -> dict[str, Any]:
    import datetime as dt

    import pandas as pd

    tz = dtype.tz
    if isinstance(tz, dt.timezone):
        offset = tz.utcoffset(None)
        spec: dict[str, Any] = {"offset": int(offset.total_seconds()) if offset else 0}
        if tz is dt.UTC:
            spec = {"zone": "UTC"}
    else:
        key = getattr(tz, "key", None) or getattr(tz, "zone", None) or str(tz)
        spec = {"zone": str(key)}
    try:
        ok = pd.DatetimeTZDtype(dtype.unit, _tz_from_json(spec)) == dtype
    except Exception:
        ok = False
    if not ok:
        raise ValidationError(
            f"Cannot version {where}: its time zone {tz!r} cannot be stored by name. Convert "
            "it to an IANA zone (e.g. .dt.tz_convert('Europe/Paris')) or to UTC first."
        )
    return spec


def _tz_from_json(spec: dict[str, Any]) -> Any:
    import datetime as dt

    if "offset" in spec:
        return dt.timezone(dt.timedelta(seconds=int(spec["offset"])))
    return spec["zone"]


# ----------------------------------------------------------------------------- byte layouts


def _pack_mask(mask: np.ndarray) -> bytes:
    return np.packbits(mask, bitorder="little").tobytes()


def _unpack_mask(buf: bytes | memoryview, n: int) -> np.ndarray:
    bits = np.unpackbits(np.frombuffer(buf, dtype=np.uint8), count=n, bitorder="little")
    return bits.astype(bool)


_STR_HEADER = struct.Struct("<4sQBBQ")  # magic, rows, offset width, has validity, data bytes


def _pack_strings(arr: Any) -> bytes:
    """Validity bits, offsets rebased to 0 (int32 when they fit) and data bytes of a string slice."""
    n = len(arr)
    bufs = arr.buffers()
    wide = np.int64 if arr.type.id in (_pa_large_ids()) else np.int32
    offsets = np.frombuffer(bufs[1], dtype=wide, count=arr.offset + n + 1)[arr.offset :]
    first, last = int(offsets[0]), int(offsets[-1])
    data = memoryview(bufs[2])[first:last] if bufs[2] is not None and last > first else b""
    rel = offsets - offsets[0]
    width = 4 if last - first < 2**31 else 8
    rel = rel.astype("<i4" if width == 4 else "<i8", copy=False)
    has_validity = arr.null_count > 0
    parts = [_STR_HEADER.pack(b"STR1", n, width, int(has_validity), last - first)]
    if has_validity:
        valid = arr.is_valid().to_numpy(zero_copy_only=False)
        parts.append(_pack_mask(valid))
    parts.append(rel.tobytes())
    parts.append(bytes(data))
    return b"".join(parts)


def _pa_large_ids() -> tuple[int, ...]:
    import pyarrow as pa

    return (pa.large_string().id, pa.large_binary().id)


def _unpack_strings(buf: memoryview, binary: bool = False) -> tuple[Any, int]:
    """The pyarrow array packed by :func:`_pack_strings` and the bytes it took."""
    import pyarrow as pa

    magic, n, width, has_validity, nbytes = _STR_HEADER.unpack_from(buf, 0)
    if magic != b"STR1":
        raise ValidationError("A stored string chunk has an unknown layout (newer version?).")
    pos = _STR_HEADER.size
    validity = None
    null_count = 0
    if has_validity:
        size = (n + 7) // 8
        validity = pa.py_buffer(buf[pos : pos + size])
        null_count = -1
        pos += size
    off_size = (n + 1) * width
    offsets = pa.py_buffer(buf[pos : pos + off_size])
    pos += off_size
    data = pa.py_buffer(buf[pos : pos + nbytes])
    pos += nbytes
    if binary:
        typ = pa.binary() if width == 4 else pa.large_binary()
    else:
        typ = pa.string() if width == 4 else pa.large_string()
    arr = pa.Array.from_buffers(typ, n, [validity, offsets, data], null_count=null_count)
    return arr, pos


# ----------------------------------------------------------------------------- index & labels


def _prepare_index(index: Any, where: str) -> tuple[list[_Column], dict[str, Any]]:
    """The index's chunked columns and its manifest spec (a RangeIndex is just parameters)."""
    import pandas as pd

    if isinstance(index, pd.RangeIndex):
        spec = {
            "type": "range",
            "start": int(index.start),
            "stop": int(index.stop),
            "step": int(index.step),
            "name": _label_to_json(index.name, f"the name of {where}"),
        }
        return [], spec
    if isinstance(index, pd.MultiIndex):
        cols: list[_Column] = []
        levels = []
        for i in range(index.nlevels):
            codes = np.ascontiguousarray(index.codes[i])
            col = _RawColumn(
                codes.astype(_le(codes.dtype)), {"enc": "raw", "dtype": _le(codes.dtype).str}
            )
            cols.append(col)
            levels.append({"codes": col.spec, "values": index.levels[i]})
        spec = {
            "type": "multi",
            "names": [_label_to_json(n, f"a level name of {where}") for n in index.names],
            "levels": levels,
        }
        return cols, spec
    runs = _index_runs(index)
    if runs is not None:
        spec = {
            "type": "runs",
            "name": _label_to_json(index.name, f"the name of {where}"),
            "dtype": _le(index.dtype).str,
            "runs": runs,
        }
        return [], spec
    col = _prepare(index.array, where)
    spec = {
        "type": "index",
        "name": _label_to_json(index.name, f"the name of {where}"),
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
    if not np.array_equal(_runs_values(runs, np.dtype(np.int64)), values):
        return None  # pragma: no cover - defensive
    return runs


def _runs_values(runs: list[list[int]], dtype: np.dtype) -> np.ndarray:
    parts = [
        np.int64(first) + np.int64(step) * np.arange(count, dtype=np.int64)
        for first, step, count in runs
    ]
    out = np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)
    return out.astype(dtype, copy=False)


def _finish_index(spec: dict[str, Any] | None, put: Callable[[bytes], str]) -> None:
    if spec and spec["type"] == "multi":
        for level in spec["levels"]:
            values = level.pop("values", None)
            if values is not None:
                level["levels"] = _encode_whole_values(values, put, "a MultiIndex level")


def _encode_whole_values(values: Any, put: Callable[[bytes], str], where: str) -> dict[str, Any]:
    """A small array (categories, levels) stored as one object."""
    import pandas as pd

    arr = values.array if isinstance(values, pd.Index) else values
    col = _prepare(arr, where)
    col.spec["chunks"] = [put(col.piece(0, len(arr)))]
    col.spec["nrows"] = len(arr)
    col.finish(put)
    return col.spec


def _encode_whole_index(index: Any, put: Callable[[bytes], str], where: str) -> dict[str, Any]:
    """An index stored whole (the column labels): its spec with one object per column."""
    cols, spec = _prepare_index(index, where)
    for col in cols:
        col.spec["chunks"] = [put(col.piece(0, len(index)))]
        col.finish(put)
    _finish_index(spec, put)
    spec["nrows"] = len(index)
    return spec


def _label_to_json(x: Any, where: str) -> Any:
    """A column label / index name as JSON; non-JSON types are tagged so they round-trip."""
    if x is None or type(x) in (str, bool):
        return x
    if type(x) is int:
        return x if abs(x) < 2**53 else {"int": str(x)}
    if isinstance(x, np.integer | int) and not isinstance(x, np.bool_ | bool):
        return {"int": str(int(x)), "np": type(x).__name__ if isinstance(x, np.integer) else None}
    if type(x) is float or isinstance(x, np.floating):
        return {
            "float": float(x).hex(),
            "np": type(x).__name__ if isinstance(x, np.floating) else None,
        }
    if isinstance(x, np.bool_):
        return {"bool": bool(x), "np": "bool"}
    if type(x) is tuple:
        return {"tuple": [_label_to_json(v, where) for v in x]}
    import pandas as pd

    if isinstance(x, pd.Timestamp):
        return {"timestamp": x.isoformat(), "unit": x.unit}
    raise ValidationError(
        f"Cannot version {where}: a label of type {type(x).__name__} ({_short_repr(x)}). "
        "Labels and names can be str, int, float, bool, None, Timestamp or tuples of those."
    )


def _label_from_json(x: Any) -> Any:
    if not isinstance(x, dict):
        return x
    if "tuple" in x:
        return tuple(_label_from_json(v) for v in x["tuple"])
    if "int" in x:
        value = int(x["int"])
        return getattr(np, x["np"])(value) if x.get("np") else value
    if "float" in x:
        value = float.fromhex(x["float"])
        return getattr(np, x["np"])(value) if x.get("np") else value
    if "bool" in x:
        return np.bool_(x["bool"])
    if "timestamp" in x:
        import pandas as pd

        return pd.Timestamp(x["timestamp"]).as_unit(x["unit"])
    raise ValidationError(f"Unknown label encoding {x!r} in a manifest.")


def _json_labels(columns: Any) -> list[Any]:
    """Display/diff names of the columns: JSON labels, or text for labels JSON cannot hold."""
    out = []
    for label in columns:
        try:
            out.append(_label_to_json(label, "a column label"))
        except ValidationError:
            out.append(str(label))
    return out


# ----------------------------------------------------------------------------- decoding


def _check_manifest(manifest: Any) -> None:
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ValidationError(
            "Not a data snapshot manifest (expected a dict with format "
            f"{FORMAT!r}); pass the manifest that encode() returned."
        )
    if int(manifest.get("version", 0)) > VERSION:
        raise ValidationError(
            f"This data snapshot was written by a newer jupyter_mlops (manifest version "
            f"{manifest.get('version')}, this one reads up to {VERSION}). Upgrade jupyter_mlops."
        )


def _spec_identity(spec: dict[str, Any]) -> tuple[str, list[str]]:
    static = {k: v for k, v in spec.items() if k != "chunks"}
    return json.dumps(static, sort_keys=True, default=str), spec["chunks"]


def _fetch(spec: dict[str, Any], get: Callable[[str], bytes], picked: list[int]) -> list[bytes]:
    chunks = spec["chunks"]
    return [get(chunks[i]) for i in picked]


def _build(manifest: dict, get: Callable[[str], bytes], picked: list[int], full: bool) -> Any:
    import pandas as pd

    counts = [int(manifest["row_chunks"][i]) for i in picked]
    kind = manifest["kind"]
    if kind == "ndarray":
        spec = manifest["columns"][0]
        shape = tuple(manifest["shape"])
        blobs = _fetch(spec, get, picked)
        if len(shape) <= 1:
            arr = _decode_any(spec, blobs, counts, get)
            if len(shape) == 0:
                return arr.reshape(())
            return arr
        arr = _raw_concat(blobs, spec)
        arr = arr.reshape((-1, *shape[1:]))
        if manifest.get("order") == "F":
            arr = np.asfortranarray(arr)
        return arr

    index = _decode_index(manifest["index"], get, picked, counts, manifest["row_chunks"], full)
    if kind == "series":
        spec = manifest["columns"][0]
        values = _decode_any(spec, _fetch(spec, get, picked), counts, get)
        name = _label_from_json(manifest.get("name"))
        return pd.Series(values, index=index, name=name, dtype=values.dtype, copy=False)
    data = {}
    for j, spec in enumerate(manifest["columns"]):
        values = _decode_any(spec, _fetch(spec, get, picked), counts, get)
        if isinstance(values, np.ndarray) and values.dtype == object:
            values = pd.Series(values, index=index, dtype=object, copy=False)
        data[j] = values
    columns = _decode_whole_index(manifest["columns_index"], get)
    df = pd.DataFrame(data, index=index, copy=False) if data else pd.DataFrame(index=index)
    df.columns = columns
    return df


def _raw_concat(blobs: list[bytes], spec: dict[str, Any]) -> np.ndarray:
    dtype = np.dtype(spec["dtype"])
    buf = bytearray().join(blobs) if len(blobs) != 1 else bytearray(blobs[0])
    arr = np.frombuffer(buf, dtype=dtype)
    orig = spec.get("orig")
    if orig and np.dtype(orig) != dtype:
        arr = arr.astype(np.dtype(orig))
    return arr


def _decode_column(spec: dict[str, Any], blobs: list[bytes], counts: list[int]) -> Any:
    """One column's values (numpy array or pandas ExtensionArray) from its chunk bytes."""
    import pandas as pd

    if spec.get("v", 1) > _ENC_VERSION:
        raise ValidationError(
            f"A column uses encoding {spec.get('enc')!r} version {spec.get('v')}, newer than "
            "this jupyter_mlops reads. Upgrade jupyter_mlops."
        )
    enc = spec["enc"]
    if enc == "raw":
        return _raw_concat(blobs, spec)
    if enc == "datetimetz":
        i8 = _raw_concat(blobs, {"dtype": "<i8"})
        naive = i8.view(f"M8[{spec['unit']}]")
        tz = _tz_from_json(spec["tz"])
        return pd.array(naive).tz_localize("UTC").tz_convert(tz)
    if enc == "masked":
        dtype = pd.api.types.pandas_dtype(spec["dtype"])
        data_dt = np.dtype(spec["data"])
        datas, masks = [], []
        for blob, n in zip(blobs, counts, strict=True):
            size = n * data_dt.itemsize
            datas.append(blob[:size])
            masks.append(_unpack_mask(memoryview(blob)[size:], n))
        data = np.frombuffer(bytearray().join(datas), dtype=data_dt)
        mask = np.concatenate(masks) if masks else np.zeros(0, dtype=bool)
        return dtype.construct_array_type()(data, mask)
    if enc == "string":
        import pyarrow as pa

        arrays = [_unpack_strings(memoryview(b))[0].cast(pa.large_string()) for b in blobs]
        dtype = pd.StringDtype(spec["storage"], na_value=np.nan if spec["na"] == "nan" else pd.NA)
        chunked = pa.chunked_array(arrays, type=pa.large_string())
        return dtype.__from_arrow__(chunked)
    if enc == "objstr":
        parts = []
        for blob in blobs:
            view = memoryview(blob)
            arr, used = _unpack_strings(view)
            values = arr.to_numpy(zero_copy_only=False)
            if arr.null_count:
                kinds = np.frombuffer(view[used:], dtype=np.uint8)
                nulls = np.flatnonzero(arr.is_null().to_numpy(zero_copy_only=False))
                values = values.copy() if not values.flags.writeable else values
                for pos, k in zip(nulls, kinds, strict=True):
                    values[pos] = _null_value(int(k))
            parts.append(values)
        return _concat_object(parts)
    if enc == "objmixed":
        parts = []
        for blob in blobs:
            view = memoryview(blob)
            (n,) = struct.unpack_from("<Q", view, 0)
            tags = np.frombuffer(view[8 : 8 + n], dtype=np.uint8)
            payload, _ = _unpack_strings(view[8 + n :], binary=True)
            texts = payload.to_pylist()
            out = np.empty(n, dtype=object)
            for i in range(n):
                out[i] = _from_tag(int(tags[i]), texts[i])
            parts.append(out)
        return _concat_object(parts)
    if enc == "arrow":
        import pyarrow as pa

        arrays = []
        typ = None
        for blob in blobs:
            reader = pa.ipc.open_stream(pa.py_buffer(blob))
            for batch in reader:
                arrays.append(batch.column(0))
            typ = reader.schema.field(0).type
        if typ is None:
            typ = pd.api.types.pandas_dtype(spec["dtype"]).pyarrow_dtype
        return pd.arrays.ArrowExtensionArray(pa.chunked_array(arrays, type=typ))
    raise ValidationError(
        f"Unknown column encoding {enc!r}: this snapshot was written by a newer jupyter_mlops. "
        "Upgrade jupyter_mlops."
    )


def _concat_object(parts: list[np.ndarray]) -> np.ndarray:
    if not parts:
        return np.empty(0, dtype=object)
    if len(parts) == 1:
        out = parts[0]
        return out if out.flags.writeable else out.copy()
    return np.concatenate(parts)


def _decode_whole(spec: dict[str, Any], get: Callable[[str], bytes]) -> Any:
    blobs = [get(h) for h in spec["chunks"]]
    return _decode_any(spec, blobs, [int(spec["nrows"])] * len(blobs), get)


def _decode_any(
    spec: dict[str, Any], blobs: list[bytes], counts: list[int], get: Callable[[str], bytes]
) -> Any:
    """Like _decode_column, resolving categoricals (whose categories are a separate object)."""
    import pandas as pd

    if spec["enc"] != "categorical":
        return _decode_column(spec, blobs, counts)
    categories = _as_index(_decode_whole(spec["categories"], get))
    dtype = pd.CategoricalDtype(categories=categories, ordered=spec["ordered"])
    codes = _raw_concat(blobs, {"dtype": spec["codes"]})
    return pd.Categorical.from_codes(codes, dtype=dtype, validate=False)


def _as_index(values: Any) -> Any:
    import pandas as pd

    return pd.Index(values, dtype=values.dtype, copy=False)


def _decode_index(
    spec: dict[str, Any],
    get: Callable[[str], bytes],
    picked: list[int],
    counts: list[int],
    all_counts: list[int],
    full: bool,
) -> Any:
    import pandas as pd

    name_of = _label_from_json
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
        values = _runs_values(spec["runs"], np.dtype(spec["dtype"]))
        if not full:
            starts = np.concatenate([[0], np.cumsum(all_counts, dtype=np.int64)])
            parts = [values[int(starts[i]) : int(starts[i + 1])] for i in picked]
            values = np.concatenate(parts) if parts else values[:0]
        return pd.Index(values, dtype=values.dtype, name=name_of(spec["name"]), copy=False)
    if spec["type"] == "multi":
        levels, codes = [], []
        for level in spec["levels"]:
            levels.append(_as_index(_decode_whole(level["levels"], get)))
            codes.append(_raw_concat(_fetch(level["codes"], get, picked), level["codes"]))
        names = [name_of(n) for n in spec["names"]]
        return pd.MultiIndex(levels=levels, codes=codes, names=names, verify_integrity=False)
    col = spec["column"]
    values = _decode_any(col, _fetch(col, get, picked), counts, get)
    index = pd.Index(values, dtype=values.dtype, name=name_of(spec["name"]), copy=False)
    if full and spec.get("freq"):
        index = pd.Index(type(index)(index, freq=spec["freq"]), name=index.name)
    return index


def _decode_whole_index(spec: dict[str, Any], get: Callable[[str], bytes]) -> Any:
    n = int(spec["nrows"])
    return _decode_index(spec, get, [0], [n], [n], True)
