"""Encoders for numpy fixed-width columns and pandas nullable numbers and booleans.

* ``raw``: numpy bool/int/uint/float/complex/datetime64/timedelta64 (and fixed-width bytes
  and unicode in ndarrays): the raw little-endian array bytes of the rows. Naive datetimes
  and timedeltas are plain int64 ticks with their unit in the dtype, so they are ``raw``
  too; tz-aware datetimes are in :mod:`.datetimes`.
* ``masked``: pandas nullable Int*/UInt*/Float*/boolean: the data bytes (zeroed under the
  mask, so equal data gives equal bytes) followed by the null mask as little-endian packed
  bits.
* n-D ndarrays are cut along their first axis (:class:`RowsColumn`, also ``raw``): each
  chunk holds whole rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...errors import ValidationError
from .base import SUPPORTED, Column, byte_view, le, pack_mask, unpack_mask
from .cdc import bits64, mix

__all__ = [
    "RAW_KINDS",
    "MaskedColumn",
    "RawColumn",
    "RowsColumn",
    "decode_masked",
    "prepare_masked",
    "prepare_raw",
    "prepare_rows",
    "raw_concat",
]

RAW_KINDS = "biufcmMSU"  # numpy dtype kinds stored as their raw bytes


class RawColumn(Column):
    """A 1-D numpy array stored as its little-endian bytes (also the base of codes columns)."""

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
        return byte_view(self.arr[start:stop])

    def key(self, start: int, stop: int) -> np.ndarray | None:
        if self.arr.dtype.kind not in "biufcmM":
            return None
        return bits64(self.arr[start:stop])


class MaskedColumn(RawColumn):
    """A pandas nullable array: data bytes then the packed null mask, per row-chunk."""

    def __init__(self, data: np.ndarray, mask: np.ndarray, spec: dict[str, Any]):
        super().__init__(data, spec)
        self.mask = mask

    def piece(self, start: int, stop: int) -> bytes:
        return self.arr[start:stop].tobytes() + pack_mask(self.mask[start:stop])

    def view(self, start: int, stop: int) -> bytes | memoryview:
        return self.piece(start, stop)

    def key(self, start: int, stop: int) -> np.ndarray | None:
        return bits64(self.arr[start:stop]) ^ self.mask[start:stop].astype(np.uint64)


class RowsColumn(Column):
    """An n-D ndarray cut along its first axis: each chunk holds whole rows."""

    def __init__(self, arr: np.ndarray, spec: dict[str, Any]):
        super().__init__(spec)
        self.arr = arr

    def key_rank(self) -> int | None:
        return 0

    def piece(self, start: int, stop: int) -> bytes:
        return self.arr[start:stop].tobytes()

    def view(self, start: int, stop: int) -> bytes | memoryview:
        return byte_view(self.arr[start:stop])

    def key(self, start: int, stop: int) -> np.ndarray | None:
        flat = self.arr[start:stop].reshape(stop - start, -1)
        if flat.dtype.kind not in "biufcmM" or flat.shape[1] == 0:
            return None
        out = bits64(flat[:, 0])
        for k in range(1, min(flat.shape[1], 4)):
            out = mix(out ^ bits64(flat[:, k]))
        return out


def prepare_raw(arr: np.ndarray) -> RawColumn:
    """A 1-D array of a :data:`RAW_KINDS` dtype as a ``raw`` column."""
    dtype = arr.dtype
    little = le(dtype)
    arr = np.ascontiguousarray(arr, dtype=little)
    spec = {"enc": "raw", "dtype": little.str, "orig": dtype.str}
    return RawColumn(arr, spec)


def prepare_rows(arr: np.ndarray) -> RowsColumn:
    """An n-D array of a :data:`RAW_KINDS` dtype cut into whole rows (others are refused)."""
    dtype = arr.dtype
    if dtype.kind not in RAW_KINDS:
        raise ValidationError(f"Cannot version an ndarray of dtype {dtype}. " + SUPPORTED)
    little = le(dtype)
    data = np.ascontiguousarray(arr, dtype=little)
    return RowsColumn(data, {"enc": "raw", "dtype": little.str, "orig": dtype.str})


def prepare_masked(values: Any) -> MaskedColumn | None:
    """A pandas nullable (masked) array as a ``masked`` column; None for any other array."""
    parts = _masked_parts(values)
    if parts is None:
        return None
    data, mask = parts
    data = np.array(data, dtype=le(data.dtype), copy=True)
    data[mask] = 0  # what lies under the mask is undefined; zero it so equal data hash equal
    spec = {"enc": "masked", "dtype": str(values.dtype), "data": data.dtype.str}
    return MaskedColumn(data, np.ascontiguousarray(mask, dtype=bool), spec)


def _masked_parts(values: Any) -> tuple[np.ndarray, np.ndarray] | None:
    try:
        from pandas.core.arrays.masked import BaseMaskedArray
    except ImportError:  # pragma: no cover - pandas layout changed
        return None
    if isinstance(values, BaseMaskedArray):
        return values._data, values._mask
    return None


def raw_concat(blobs: list[bytes], spec: dict[str, Any]) -> np.ndarray:
    """The ``raw`` chunks of one column joined into one array of its original dtype."""
    dtype = np.dtype(spec["dtype"])
    buf = bytearray().join(blobs) if len(blobs) != 1 else bytearray(blobs[0])
    arr = np.frombuffer(buf, dtype=dtype)
    orig = spec.get("orig")
    if orig and np.dtype(orig) != dtype:
        arr = arr.astype(np.dtype(orig))
    return arr


def decode_masked(spec: dict[str, Any], blobs: list[bytes], counts: list[int]) -> Any:
    """The pandas nullable array of ``masked`` chunks (``counts`` rows each)."""
    import pandas as pd

    dtype = pd.api.types.pandas_dtype(spec["dtype"])
    data_dt = np.dtype(spec["data"])
    datas, masks = [], []
    for blob, n in zip(blobs, counts, strict=True):
        size = n * data_dt.itemsize
        datas.append(blob[:size])
        masks.append(unpack_mask(memoryview(blob)[size:], n))
    data = np.frombuffer(bytearray().join(datas), dtype=data_dt)
    mask = np.concatenate(masks) if masks else np.zeros(0, dtype=bool)
    return dtype.construct_array_type()(data, mask)
