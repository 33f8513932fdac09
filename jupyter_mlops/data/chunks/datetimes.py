"""Encoder for tz-aware datetimes (``datetimetz``): int64 epoch values plus unit and zone.

The time zone is stored by name (an IANA zone or UTC) or as a fixed offset; a zone that
cannot be rebuilt from either is refused, so a stored column always reads back with the
same dtype. Naive ``datetime64`` and ``timedelta64`` columns are plain ticks with their unit
in the dtype and are stored ``raw`` (see :mod:`.numeric`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...errors import ValidationError
from .numeric import RawColumn, raw_concat

__all__ = ["decode_datetimetz", "prepare_datetimetz"]


def prepare_datetimetz(values: Any, where: str) -> RawColumn:
    """A tz-aware DatetimeArray as a ``datetimetz`` column (its UTC epoch ticks as int64)."""
    dtype = values.dtype
    tz = _tz_to_json(dtype, where)
    i8 = np.ascontiguousarray(values.asi8, dtype="<i8")
    return RawColumn(i8, {"enc": "datetimetz", "dtype": str(dtype), "unit": dtype.unit, "tz": tz})


def decode_datetimetz(spec: dict[str, Any], blobs: list[bytes]) -> Any:
    """The tz-aware DatetimeArray of ``datetimetz`` chunks."""
    import pandas as pd

    i8 = raw_concat(blobs, {"dtype": "<i8"})
    naive = i8.view(f"M8[{spec['unit']}]")
    tz = _tz_from_json(spec["tz"])
    return pd.array(naive).tz_localize("UTC").tz_convert(tz)


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
