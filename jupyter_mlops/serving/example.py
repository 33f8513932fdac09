"""The "Try it" request of a deployment: a curl command whose body the model answers.

Each column gets the datatype its signature asks for (``BYTES`` for text and categories,
``INT64``, ``BOOL``, ``FP64``) and a value the model has seen: the newest row it served
(from the inference log) when there is one, else a typical value of its training data
(the mean of a number, the most frequent category), else a plain default.
"""

from __future__ import annotations

import json
import math
import threading
from collections import OrderedDict
from typing import Any

import sqlalchemy as sa

from ..store import Store, schema

__all__ = ["curl_command", "example_request", "example_row"]

_ROWS: OrderedDict[str, dict[str, Any]] = OrderedDict()  # segment hash -> its last row
_LOCK = threading.Lock()


def _kinds(signature: dict[str, Any]) -> list[tuple[str, str]]:
    """(column, kind) per input; an unrecorded dtype is a number (what estimators take)."""
    from .signature import _kind

    out = []
    for item in signature.get("inputs") or []:
        dtype = str(item.get("dtype", "unknown"))
        out.append((str(item["name"]), "float" if dtype == "unknown" else _kind(dtype)))
    return out


def _plain(value: Any) -> Any:
    """A JSON value from an Arrow/numpy scalar (NaN and NaT become None)."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _logged_row(store: Store, name: str, columns: list[str]) -> dict[str, Any]:
    """The inputs of the newest prediction of ``name`` in the inference log (the columns
    it has of ``columns``), read once per segment."""
    from .segments import read_table

    seg = schema.inference_segments
    with store.read() as conn:
        found = conn.execute(
            sa.select(seg.c.object_hash, seg.c.columns)
            .where(seg.c.model_name == name)
            .order_by(seg.c.time_max.desc(), seg.c.segment_id.desc())
            .limit(1)
        ).first()
    if found is None:
        return {}
    with _LOCK:
        if found.object_hash in _ROWS:
            return dict(_ROWS[found.object_hash])
    present = set(json.loads(found.columns))
    wanted = {c: f"input.{c}" if f"input.{c}" in present else c for c in columns}
    wanted = {c: stored for c, stored in wanted.items() if stored in present}
    if not wanted:
        return {}
    table = read_table(store.objects.get(found.object_hash), list(wanted.values()))
    last = table.slice(table.num_rows - 1) if table.num_rows else None
    row = (
        {c: _plain(last.column(stored)[0].as_py()) for c, stored in wanted.items()}
        if last is not None
        else {}
    )
    with _LOCK:
        _ROWS[found.object_hash] = row
        while len(_ROWS) > 32:
            _ROWS.popitem(last=False)
    return dict(row)


def _typical(kind: str, stats: dict[str, Any]) -> Any:
    """A typical training value from a column's statistics, or None."""
    top = stats.get("top") or []
    if kind == "text":
        return next((str(v) for v, _ in top if v is not None), None)
    mean = stats.get("mean")
    if mean is None:
        return None
    if kind == "bool":
        return bool(mean >= 0.5)
    if kind == "int":
        return round(mean)
    return float(f"{mean:.4g}")


_DEFAULTS = {"float": 0.0, "int": 0, "bool": False, "text": "", "any": ""}


def example_row(mv: Any, store: Store | None = None) -> dict[str, Any]:
    """One input row for model version ``mv``: the newest row served, else typical training
    values, else defaults; every value of the type its column takes."""
    kinds = _kinds(mv.signature)
    columns = [c for c, _ in kinds]
    store = store or mv._store
    row: dict[str, Any] = {}
    try:
        if store is not None and store.exists:
            row = _logged_row(store, mv.name, columns)
    except Exception:
        row = {}
    stats: dict[str, dict[str, Any]] | None = None
    out = {}
    for column, kind in kinds:
        value = _fit(kind, row.get(column))
        if value is None:
            if stats is None:
                from .model import training_stats

                try:
                    stats = training_stats(mv)
                except Exception:
                    stats = {}
            value = _fit(kind, _typical(kind, stats.get(column) or {}))
        out[column] = _DEFAULTS.get(kind, "") if value is None else value
    return out


def _fit(kind: str, value: Any) -> Any:
    """``value`` as the type ``kind`` takes, or None when it is missing or does not fit."""
    if value is None:
        return None
    if kind == "text" or kind == "any":
        return str(value)
    if isinstance(value, str):
        return None
    if kind == "bool":
        return bool(value)
    if kind == "int":
        return int(value) if float(value).is_integer() else None
    return float(value)


_DATATYPES = {"float": "FP64", "int": "INT64", "bool": "BOOL"}


def example_request(mv: Any, store: Store | None = None) -> dict[str, Any]:
    """An Open Inference Protocol request with one row (``example_row``), one tensor per
    column of the datatype the signature asks for."""
    row = example_row(mv, store)
    kinds = dict(_kinds(mv.signature))
    if not row:  # no recorded signature: the first column of a model fitted on an array
        return {"inputs": [{"name": "x0", "shape": [1], "datatype": "FP64", "data": [0.0]}]}
    return {
        "inputs": [
            {
                "name": column,
                "shape": [1],
                "datatype": _DATATYPES.get(kinds[column], "BYTES"),
                "data": [value],
            }
            for column, value in row.items()
        ]
    }


def curl_command(url: str, body: dict[str, Any], *, auth: bool = False) -> str:
    """A shell command that POSTs ``body`` to ``url`` (single quotes in the body escaped)."""
    text = json.dumps(body, separators=(", ", ": "), ensure_ascii=False).replace("'", "'\\''")
    token = ' -H "Authorization: Bearer $MLOPS_TOKEN"' if auth else ""
    return f"curl -s {url} -H 'Content-Type: application/json'{token} -d '{text}'"
