"""How Python values become params and metrics: scalars kept typed, anything else a short repr."""

from __future__ import annotations

import math
import numbers
from typing import Any

__all__ = [
    "MAX_PARAM_CHARS",
    "decode_param",
    "encode_param",
    "is_metric_value",
    "is_scalar_param",
    "short_repr",
    "to_float",
]

MAX_PARAM_CHARS = 500
_REPR_CHARS = 250


def short_repr(value: Any, limit: int = _REPR_CHARS) -> str:
    """A repr that never raises and never exceeds ``limit`` characters."""
    try:
        text = repr(value)
    except Exception as exc:  # a broken __repr__ must not cost the user their run
        text = f"<{type(value).__name__} (repr failed: {type(exc).__name__})>"
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Number) and not isinstance(value, bool | complex)


def is_scalar_param(value: Any) -> bool:
    """Values auto-captured as params: numbers, booleans, short strings, None,
    and short tuples or lists of those."""
    if value is None or isinstance(value, bool) or _is_number(value):
        return True
    if isinstance(value, str):
        return len(value) <= MAX_PARAM_CHARS
    if isinstance(value, tuple | list) and len(value) <= 16:
        return (
            all(v is None or isinstance(v, bool | str) or _is_number(v) for v in value)
            and len(short_repr(value, 10_000)) <= MAX_PARAM_CHARS
        )
    return False


def is_metric_value(value: Any) -> bool:
    """A real number (numpy scalars and 0-d arrays included), not a boolean."""
    if isinstance(value, bool):
        return False
    if _is_number(value):
        return True
    shape = getattr(value, "shape", None)
    if shape == () and hasattr(value, "item"):
        try:
            return _is_number(value.item()) and not isinstance(value.item(), bool)
        except Exception:
            return False
    return False


def to_float(value: Any) -> float:
    """A metric value as a Python float."""
    if hasattr(value, "item"):
        value = value.item()
    return float(value)


def encode_param(value: Any) -> tuple[str | None, float | None, str]:
    """(text, number, type) for the params table; numbers keep a numeric column for filters."""
    if value is None:
        return None, None, "none"
    if isinstance(value, bool):
        return str(value), float(value), "bool"
    if hasattr(value, "item") and getattr(value, "shape", None) == ():
        value = value.item()
    if isinstance(value, numbers.Integral):
        return str(int(value)), float(value), "int"
    if isinstance(value, numbers.Real):
        f = float(value)
        return repr(f), (f if math.isfinite(f) else None), "float"
    if isinstance(value, str):
        if len(value) <= MAX_PARAM_CHARS:
            return value, None, "str"
        return short_repr(value), None, "repr"
    return short_repr(value), None, "repr"


def decode_param(text: str | None, vtype: str) -> Any:
    """The Python value of a stored param."""
    if vtype == "none" or text is None:
        return None
    if vtype == "bool":
        return text == "True"
    if vtype == "int":
        return int(text)
    if vtype == "float":
        return float(text)
    return text
