"""Which encoder a column gets, and decoding a column whatever its encoding.

This is the only module that knows every dtype family: :func:`prepare` picks the encoder of
one column (numpy array or pandas ExtensionArray) and refuses what none of them round-trips
exactly; :func:`decode_values` reads any encoding back. A categorical's categories are
encoded through :func:`encode_whole` and decoded through :func:`decode_whole`, so the
encoders never import each other.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ...errors import ValidationError
from .arrow import decode_arrow, prepare_arrow
from .base import ENC_VERSION, SUPPORTED, Column
from .categorical import decode_categorical, prepare_categorical
from .datetimes import decode_datetimetz, prepare_datetimetz
from .numeric import RAW_KINDS, decode_masked, prepare_masked, prepare_raw, raw_concat
from .strings import (
    decode_objmixed,
    decode_objstr,
    decode_string,
    prepare_object,
    prepare_string,
)

__all__ = [
    "as_index",
    "decode_values",
    "decode_whole",
    "encode_whole",
    "prepare",
]


def prepare(values: Any, where: str) -> Column:
    """Choose the encoding of one column (a numpy array or a pandas ExtensionArray).

    ``where`` names the column in error messages. Unsupported dtypes and object values
    raise ``ValidationError`` (listing what is supported) before anything is written.
    """
    import pandas as pd

    if isinstance(values, pd.Index | pd.Series):
        values = values.array
    if type(values) is pd.arrays.NumpyExtensionArray:
        values = values.to_numpy()
    dtype = values.dtype
    if isinstance(dtype, np.dtype):
        arr = np.asarray(values)
        if dtype.kind in RAW_KINDS:
            return prepare_raw(arr)
        if dtype.kind == "O":
            return prepare_object(arr, where)
        raise ValidationError(
            f"Cannot version {where}: dtype {dtype} is not supported. " + SUPPORTED
        )
    if isinstance(dtype, pd.CategoricalDtype):
        return prepare_categorical(values, where, encode_whole)
    if isinstance(dtype, pd.DatetimeTZDtype):
        return prepare_datetimetz(values, where)
    if isinstance(dtype, pd.StringDtype):
        return prepare_string(values)
    if isinstance(dtype, pd.ArrowDtype):
        return prepare_arrow(values)
    masked = prepare_masked(values)
    if masked is not None:
        return masked
    raise ValidationError(f"Cannot version {where}: dtype {dtype} is not supported. " + SUPPORTED)


def encode_whole(values: Any, put: Callable[[bytes], str], where: str) -> dict[str, Any]:
    """A small array (categories, levels) stored as one object; returns its spec."""
    import pandas as pd

    arr = values.array if isinstance(values, pd.Index) else values
    col = prepare(arr, where)
    col.spec["chunks"] = [put(col.piece(0, len(arr)))]
    col.spec["nrows"] = len(arr)
    col.finish(put)
    return col.spec


def decode_whole(spec: dict[str, Any], get: Callable[[str], bytes]) -> Any:
    """The values of a spec :func:`encode_whole` wrote."""
    blobs = [get(h) for h in spec["chunks"]]
    return decode_values(spec, blobs, [int(spec["nrows"])] * len(blobs), get)


def decode_values(
    spec: dict[str, Any], blobs: list[bytes], counts: list[int], get: Callable[[str], bytes]
) -> Any:
    """One column's values (numpy array or pandas ExtensionArray) from its chunk bytes.

    ``counts`` are the rows of each blob; ``get`` reads the objects a column keeps beside
    its chunks (a categorical's categories).
    """
    if spec["enc"] != "categorical":
        return _decode_column(spec, blobs, counts)
    categories = as_index(decode_whole(spec["categories"], get))
    return decode_categorical(spec, blobs, categories)


def _decode_column(spec: dict[str, Any], blobs: list[bytes], counts: list[int]) -> Any:
    if spec.get("v", 1) > ENC_VERSION:
        raise ValidationError(
            f"A column uses encoding {spec.get('enc')!r} version {spec.get('v')}, newer than "
            "this jupyter_mlops reads. Upgrade jupyter_mlops."
        )
    enc = spec["enc"]
    if enc == "raw":
        return raw_concat(blobs, spec)
    if enc == "datetimetz":
        return decode_datetimetz(spec, blobs)
    if enc == "masked":
        return decode_masked(spec, blobs, counts)
    if enc == "string":
        return decode_string(spec, blobs)
    if enc == "objstr":
        return decode_objstr(blobs)
    if enc == "objmixed":
        return decode_objmixed(blobs)
    if enc == "arrow":
        return decode_arrow(spec, blobs)
    raise ValidationError(
        f"Unknown column encoding {enc!r}: this snapshot was written by a newer jupyter_mlops. "
        "Upgrade jupyter_mlops."
    )


def as_index(values: Any) -> Any:
    """Decoded values as a pandas Index of the same dtype (no copy)."""
    import pandas as pd

    return pd.Index(values, dtype=values.dtype, copy=False)
