"""The checks a CatBoost cbm model passes before CatBoost loads it."""

from __future__ import annotations

import struct

__all__ = ["CbmError", "check_cbm"]

MAGIC = b"CBM1"


class CbmError(ValueError):
    """The bytes are not a well-formed CatBoost cbm model."""


def check_cbm(data: bytes) -> None:
    """Raise ``CbmError`` unless ``data`` is a well-formed cbm model."""
    if len(data) < 8 or data[:4] != MAGIC:
        raise CbmError("it does not start with CatBoost's 'CBM1'")
    (size,) = struct.unpack_from("<I", data, 4)
    if size > len(data) - 8:
        raise CbmError(f"its model core claims {size} bytes, the file holds {len(data) - 8}")
