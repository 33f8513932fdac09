"""What every column encoder shares: the prepared-column base class and small byte layouts.

An encoder turns one column (or the index, or a small array of categories or levels) into
a :class:`Column`: its manifest ``spec`` (the encoding's name under ``enc`` and everything
needed to decode it), the bytes of each row-chunk (``piece``), and the 64-bit row keys the
chunker reads (``key``). Bytes are little-endian, uncompressed and deterministic, so equal
data gives equal bytes and so equal object hashes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = [
    "ENC_VERSION",
    "SUPPORTED",
    "Column",
    "byte_view",
    "fetch",
    "le",
    "pack_mask",
    "short_repr",
    "unpack_mask",
]

ENC_VERSION = 1

SUPPORTED = (
    "Supported: pandas DataFrame and Series, and numpy ndarray, whose columns hold numpy "
    "bool/int/float/complex/datetime64/timedelta64, tz-aware datetimes, categoricals, nullable "
    "Int/UInt/Float/boolean, pandas string dtypes, pyarrow-backed dtypes, or object values that "
    "are str, bytes, bool, int, float, Decimal, None, NaN, pd.NA or NaT."
)


class Column:
    """A prepared column: its manifest spec, how to cut row-chunk bytes, and its row keys."""

    def __init__(self, spec: dict[str, Any]):
        self.spec = spec
        self.spec.setdefault("v", ENC_VERSION)

    def key_rank(self) -> int | None:
        """Preference as a chunking key (lower first); None: never a key."""
        return None

    def piece(self, start: int, stop: int) -> bytes:
        """The stored bytes of rows ``start:stop``."""
        raise NotImplementedError

    def view(self, start: int, stop: int) -> bytes | memoryview:
        """The piece's bytes, as a memoryview of the data when they are a contiguous slice."""
        return self.piece(start, stop)

    def key(self, start: int, stop: int) -> np.ndarray | None:
        """64-bit keys of rows ``start:stop`` for the chunker; None: never a key."""
        return None

    def finish(self, put: Callable[[bytes], str]) -> None:
        """Store the column's shared objects (categories, levels)."""


def fetch(spec: dict[str, Any], get: Callable[[str], bytes], picked: list[int]) -> list[bytes]:
    """The stored bytes of the picked row-chunks of one column spec, in that order."""
    chunks = spec["chunks"]
    return [get(chunks[i]) for i in picked]


def byte_view(part: np.ndarray) -> bytes | memoryview:
    """A read-only memoryview of a C-contiguous array's bytes (a copy if not contiguous)."""
    if not part.flags.c_contiguous:
        return part.tobytes()
    flat = part.reshape(-1).view(np.uint8)
    view = memoryview(flat)
    return view.toreadonly()


def le(dtype: np.dtype) -> np.dtype:
    """The little-endian form of a dtype (stored bytes are always little-endian)."""
    return dtype.newbyteorder("<") if dtype.byteorder == ">" else dtype


def pack_mask(mask: np.ndarray) -> bytes:
    """A boolean array as little-endian packed bits."""
    return np.packbits(mask, bitorder="little").tobytes()


def unpack_mask(buf: bytes | memoryview, n: int) -> np.ndarray:
    """The ``n`` booleans :func:`pack_mask` packed."""
    bits = np.unpackbits(np.frombuffer(buf, dtype=np.uint8), count=n, bitorder="little")
    return bits.astype(bool)


def short_repr(v: Any) -> str:
    """A value's repr cut to 60 characters, for error messages."""
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."
