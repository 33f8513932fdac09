"""Encoders for text and object columns: pandas string dtypes and numpy object arrays.

* ``string``: pandas string dtypes (pandas 3's default ``str`` and ``string[python]`` /
  ``string[pyarrow]``): validity bits, offsets and UTF-8 bytes (Arrow layout).
* ``objstr``: object columns holding only ``str`` plus nulls: as ``string``, plus which null
  each missing value was (None, NaN, pd.NA, NaT).
* ``objmixed``: object columns mixing scalars (str, bytes, bool, int, float, Decimal, None,
  NaN, pd.NA, NaT and numpy bool/int64/float64/str scalars): a type tag and an exact text
  form per value. Lists, dicts, tuples and other objects are refused with a
  ValidationError, since they would not round-trip exactly.
"""

from __future__ import annotations

import struct
from decimal import Decimal
from typing import Any

import numpy as np

from ...errors import ValidationError
from .base import Column, pack_mask, short_repr

__all__ = [
    "MixedColumn",
    "ObjStrColumn",
    "StringColumn",
    "decode_objmixed",
    "decode_objstr",
    "decode_string",
    "prepare_object",
    "prepare_string",
]


class StringColumn(Column):
    """A pyarrow large_string array stored in the Arrow layout, per row-chunk."""

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


class ObjStrColumn(StringColumn):
    """An object column of str and nulls: the strings, then one byte per null saying which."""

    def __init__(self, pa_array: Any, null_kinds: np.ndarray, spec: dict[str, Any]):
        super().__init__(pa_array, spec)
        self.kinds = null_kinds  # uint8 per row (255 = not null)

    def piece(self, start: int, stop: int) -> bytes:
        kinds = self.kinds[start:stop]
        return _pack_strings(self.pa.slice(start, stop - start)) + kinds[kinds != 255].tobytes()


class MixedColumn(Column):
    """An object column of mixed scalars: row count, a type tag per row, then their texts."""

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


def prepare_string(values: Any) -> StringColumn:
    """A pandas string array (any storage, NaN or NA missing value) as a ``string`` column."""
    dtype = values.dtype
    na = "nan" if _is_nan(dtype.na_value) else "NA"
    spec = {"enc": "string", "dtype": str(dtype), "storage": dtype.storage, "na": na}
    return StringColumn(_arrow_strings(values), spec)


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


def prepare_object(arr: np.ndarray, where: str) -> Column:
    """An object array as ``objstr`` (only str and nulls) or ``objmixed``; refuses others."""
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
                return ObjStrColumn(strings, kinds, spec)
    tags, payload = _mixed_tags(arr, where)
    spec = {"enc": "objmixed", "dtype": "object"}
    return MixedColumn(tags, pa.array(payload, type=pa.large_binary()), spec)


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
                f"row {i} ({short_repr(v)}). Object columns can hold str, bytes, bool, int, "
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


def decode_string(spec: dict[str, Any], blobs: list[bytes]) -> Any:
    """The pandas string array of ``string`` chunks, with its storage and missing value."""
    import pandas as pd
    import pyarrow as pa

    arrays = [_unpack_strings(memoryview(b))[0].cast(pa.large_string()) for b in blobs]
    dtype = pd.StringDtype(spec["storage"], na_value=np.nan if spec["na"] == "nan" else pd.NA)
    chunked = pa.chunked_array(arrays, type=pa.large_string())
    return dtype.__from_arrow__(chunked)


def decode_objstr(blobs: list[bytes]) -> np.ndarray:
    """The object array of ``objstr`` chunks, each null the kind it was."""
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


def decode_objmixed(blobs: list[bytes]) -> np.ndarray:
    """The object array of ``objmixed`` chunks, each value of its original type."""
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


def _concat_object(parts: list[np.ndarray]) -> np.ndarray:
    if not parts:
        return np.empty(0, dtype=object)
    if len(parts) == 1:
        out = parts[0]
        return out if out.flags.writeable else out.copy()
    return np.concatenate(parts)


# ----------------------------------------------------------------------------- byte layout

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
        parts.append(pack_mask(valid))
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
