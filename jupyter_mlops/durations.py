"""Durations as users write them: ``90s``, ``15m``, ``1h``, ``30d``, ``2w``."""

from __future__ import annotations

import re

from .errors import ValidationError

__all__ = ["parse_duration"]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(value: object, what: str = "duration", hint: str = "") -> float:
    """Seconds in ``value``; a ``ValidationError`` naming ``what`` when it cannot be read."""
    match = _DURATION.match(str(value))
    if not match:
        raise ValidationError(f"Cannot read {what} {value!r}: use 90s, 15m, 1h, 7d or 2w{hint}.")
    return float(match.group(1)) * _UNITS[match.group(2)]
