"""Column labels and index names as JSON in the manifest, tagged so they round-trip exactly.

str, bool and None are stored as they are, small ints too; other ints, floats (as hex),
numpy scalars, tuples and Timestamps are tagged dicts. Anything else is refused.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...errors import ValidationError
from .base import short_repr

__all__ = ["json_labels", "label_from_json", "label_to_json"]


def label_to_json(x: Any, where: str) -> Any:
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
        return {"tuple": [label_to_json(v, where) for v in x]}
    import pandas as pd

    if isinstance(x, pd.Timestamp):
        return {"timestamp": x.isoformat(), "unit": x.unit}
    raise ValidationError(
        f"Cannot version {where}: a label of type {type(x).__name__} ({short_repr(x)}). "
        "Labels and names can be str, int, float, bool, None, Timestamp or tuples of those."
    )


def label_from_json(x: Any) -> Any:
    """The label :func:`label_to_json` stored."""
    if not isinstance(x, dict):
        return x
    if "tuple" in x:
        return tuple(label_from_json(v) for v in x["tuple"])
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


def json_labels(columns: Any) -> list[Any]:
    """Display/diff names of the columns: JSON labels, or text for labels JSON cannot hold."""
    out = []
    for label in columns:
        try:
            out.append(label_to_json(label, "a column label"))
        except ValidationError:
            out.append(str(label))
    return out
