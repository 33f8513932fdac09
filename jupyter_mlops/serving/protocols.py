"""Request bodies of the two protocols clients already speak, parsed into JSON columns,
and the responses they expect.

- Open Inference Protocol v2 (KServe, Triton, Seldon): named tensors, one per column, or
  a single 2-D tensor whose columns follow the model's signature.
- MLflow's scoring protocol (``/invocations``): ``dataframe_split``,
  ``dataframe_records``, ``instances``, ``inputs`` or a CSV body.
"""

from __future__ import annotations

import io
import json
import math
import re
from typing import Any

import numpy as np

from ..errors import ValidationError
from .signature import InputSchema, oip_datatype

__all__ = [
    "MAX_JSON_DEPTH",
    "OIP_DATATYPES",
    "check_request_id",
    "csv_columns",
    "exceeds_json_depth",
    "invocations_columns",
    "oip_columns",
    "oip_response",
    "parse_json",
    "usable_request_id",
]

OIP_DATATYPES = {
    "BOOL",
    "UINT8",
    "UINT16",
    "UINT32",
    "UINT64",
    "INT8",
    "INT16",
    "INT32",
    "INT64",
    "FP16",
    "FP32",
    "FP64",
    "BYTES",
}


MAX_JSON_DEPTH = 100
"""The deepest nesting of arrays and objects a request body may have (Triton's limit too:
it accepts 50 levels and refuses 120). An OIP body needs about 4 levels plus one per
tensor dimension; Python's parser would otherwise recurse until it fails."""

_DEPTH_CHUNK = 1 << 20
# every byte but the brackets and quotes, deleted before the depth scan
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'[]{}"')
_STEP_MAP = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")  # +1 / -1 as int8


def exceeds_json_depth(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether arrays and objects in a JSON ``body`` nest more than ``limit`` levels deep
    (brackets inside strings are text), found without parsing or recursion: the body is
    cut down to its brackets outside strings (C-speed byte operations) and their running
    depth is summed in chunks. Invalid JSON gets an answer too; the parser refuses it
    afterwards."""
    if b"\\" in body:
        # escapes are pairs read left to right: drop escaped backslashes, then escaped
        # quotes, and every quote left opens or closes a string
        body = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    structure = body.translate(None, _NOT_STRUCTURE)  # brackets and quotes only
    if len(structure) <= limit:
        return False
    if b'"' in structure:  # the parts between strings: every other piece
        structure = b"".join(structure.split(b'"')[::2])
        if len(structure) <= limit:
            return False
    steps = np.frombuffer(structure.translate(_STEP_MAP), dtype=np.int8)
    depth = 0
    for start in range(0, len(steps), _DEPTH_CHUNK):  # bounded memory for any body size
        running = np.cumsum(steps[start : start + _DEPTH_CHUNK], dtype=np.int64) + depth
        if int(running.max()) > limit:
            return True
        depth = int(running[-1])
    return False


try:  # a parser in C, several times faster on numeric bodies; optional
    from orjson import loads as _fast_loads
except ImportError:  # pragma: no cover - orjson is a dependency, but degrade gracefully
    _fast_loads = None

# digits → "1", "." stays, anything else → "0": an integer literal of 19 or more digits
# (beyond what orjson keeps exact) is "0" then nineteen "1"s; a fraction's digits follow "."
_DIGIT_MAP = bytes(49 if 48 <= b <= 57 else (46 if b == 46 else 48) for b in range(256))
_LONG_INTEGER = b"0" + b"1" * 19


def _loads(body: bytes) -> Any:
    """``json.loads``, through orjson when its answer is the same: orjson turns integers
    beyond 64 bits into floats and refuses what the standard parser accepts (NaN,
    Infinity, 1e400, a BOM, lone surrogates, other encodings), so bodies with a run of
    19 or more digits, and any body orjson refuses, are parsed by ``json.loads``."""
    if _fast_loads is not None and _LONG_INTEGER not in b"0" + body.translate(_DIGIT_MAP):
        try:
            return _fast_loads(body)
        except ValueError:
            pass
    return json.loads(body)


class BadJSONError(ValidationError):
    """A request body that is not a JSON document this server reads (HTTP 400)."""

    reason = "bad_json"


class BadCSVError(ValidationError):
    """A CSV request body that cannot be read (HTTP 400)."""

    reason = "bad_csv"


def parse_json(body: bytes) -> Any:
    """The JSON document in a request body, or a clear error (400) when it is empty, not
    JSON, or nested more than ``MAX_JSON_DEPTH`` levels deep."""
    if not body or body.isspace():
        raise BadJSONError("The request body is empty; send a JSON document.")
    if exceeds_json_depth(body):
        raise BadJSONError(
            f"The JSON nesting depth exceeds maximum allowed limit ({MAX_JSON_DEPTH}): arrays "
            f"and objects may nest at most {MAX_JSON_DEPTH} levels deep. Send a tensor's data "
            "as a flat list in row-major order, or nested once per dimension of its shape."
        )
    try:
        return _loads(body)
    except RecursionError:  # cannot happen within the limit; never a 500 if it does
        raise BadJSONError(
            f"The JSON nesting depth exceeds what this server can parse; keep it under "
            f"{MAX_JSON_DEPTH} levels."
        ) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadJSONError(f"The request body is not valid JSON: {exc}.") from exc


# -- Open Inference Protocol tensors ---------------------------------------------------------
_INT_RANGES = {
    "INT8": (-(2**7), 2**7 - 1),
    "INT16": (-(2**15), 2**15 - 1),
    "INT32": (-(2**31), 2**31 - 1),
    "INT64": (-(2**63), 2**63 - 1),
    "UINT8": (0, 2**8 - 1),
    "UINT16": (0, 2**16 - 1),
    "UINT32": (0, 2**32 - 1),
    "UINT64": (0, 2**64 - 1),
}
_FLOAT_MAX = {
    "FP16": float(np.finfo(np.float16).max),
    "FP32": float(np.finfo(np.float32).max),
    "FP64": float(np.finfo(np.float64).max),
}
_NONE = type(None)
_NUMBERS = frozenset({int, float, _NONE})
_ALLOWED = {
    **dict.fromkeys(_INT_RANGES, _NUMBERS),
    **dict.fromkeys(_FLOAT_MAX, _NUMBERS),
    "BOOL": frozenset({bool, _NONE}),
    "BYTES": frozenset({str, _NONE}),
}
_HOLDS = {
    **{k: f"integers from {lo} to {hi}" for k, (lo, hi) in _INT_RANGES.items()},
    **{k: f"numbers (at most {m:.5g} in size)" for k, m in _FLOAT_MAX.items()},
    "BOOL": "true or false",
    "BYTES": "strings",
}
_MAX_DIMS = 2


def _json_kind(value: Any) -> str:
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        dict: "an object",
        list: "a list",
    }.get(type(value), type(value).__name__)


def _shown(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, bool) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _check_shape(shape: Any, where: str) -> int:
    """The element count of a valid OIP shape (a list of 1 or 2 sizes, each >= 0)."""
    if type(shape) is list and len(shape) == 1 and type(shape[0]) is int and shape[0] >= 0:
        return shape[0]  # the common case, checked first
    if (
        not isinstance(shape, list)
        or not shape
        or not all(type(d) is int and d >= 0 for d in shape)
    ):
        shown = json.dumps(shape)[:80] if isinstance(shape, list | int | str) else repr(shape)
        raise ValidationError(
            f"{where} has shape {shown}; a shape is a list of sizes (integers >= 0) such "
            "as [3] or [3, 5]."
        )
    if len(shape) > _MAX_DIMS:
        raise ValidationError(
            f"{where} has {len(shape)} dimensions; at most {_MAX_DIMS} (one column [rows] or "
            "[rows, 1], or a table [rows, columns])."
        )
    size = 1
    for d in shape:
        size *= d
    return size


def _flat_data(data: Any, shape: list[int], size: int, where: str) -> tuple[list[Any], set[type]]:
    """The tensor's values in row-major order and their Python types, checking that the
    data has as many values as the shape and, when nested, is not ragged."""
    if not isinstance(data, list):
        data = [data]
    kinds = set(map(type, data))
    dims = [len(data)]
    values = data
    while list in kinds:  # nested: one level at a time, never recursing
        if kinds != {list}:
            raise ValidationError(
                f"{where} has ragged data: nesting level {len(dims)} mixes lists and values. "
                f"Send {shape} values as a flat list, or as lists nested once per dimension."
            )
        lengths = set(map(len, values))
        if len(lengths) > 1:
            raise ValidationError(
                f"{where} has ragged data: the lists at nesting level {len(dims)} have "
                f"different lengths {sorted(lengths)[:5]}; every row of a tensor of shape "
                f"{shape} has the same length."
            )
        dims.append(lengths.pop())
        values = [v for row in values for v in row]
        kinds = set(map(type, values))
    if len(dims) == len(shape) and len(dims) > 1 and dims != shape:
        raise ValidationError(f"{where} has data nested as {dims} but its shape is {shape}.")
    if len(values) != size:
        nested = f" (nested as {dims})" if len(dims) > 1 else ""
        raise ValidationError(
            f"{where} has shape {shape}, which needs {size} value{'s' * (size != 1)}, but its "
            f"data holds {len(values)} value{'s' * (len(values) != 1)}{nested}."
        )
    return values, kinds


def _check_values(values: list[Any], kinds: set[type], datatype: str, where: str) -> None:
    """Refuse values the datatype cannot hold: wrong JSON types, integers out of range or
    not whole, numbers beyond the float type's largest. ``null`` is a missing value
    (the model's signature decides whether it takes them)."""

    def refuse(j: int, extra: str = "") -> ValidationError:
        v = values[j]
        return ValidationError(
            f"{where} is {datatype}, which holds {_HOLDS[datatype]}; data[{j}] is "
            f"{_shown(v)} ({_json_kind(v)}){extra}."
        )

    allowed = _ALLOWED[datatype]
    if not kinds <= allowed:
        raise refuse(next(j for j, v in enumerate(values) if type(v) not in allowed))
    present = [v for v in values if v is not None] if _NONE in kinds else values
    if not present:
        return
    bounds = _INT_RANGES.get(datatype)
    if bounds is not None:
        if float in kinds:
            for j, v in enumerate(values):
                if type(v) is float and not v.is_integer():
                    raise refuse(j)
        lo, hi = bounds
        if min(present) < lo or max(present) > hi:
            raise refuse(
                next(j for j, v in enumerate(values) if v is not None and not lo <= v <= hi)
            )
        return
    limit = _FLOAT_MAX.get(datatype)
    if limit is not None and (datatype != "FP64" or int in kinds):
        # beyond the largest finite value but not infinite (JSON has no infinity; the
        # signature refuses one parsed from 1e400 as not finite)
        for j, v in enumerate(values):
            if v is not None and limit < abs(v) < math.inf:
                raise refuse(j)


def oip_columns(
    doc: Any, schema: InputSchema
) -> tuple[dict[str, list[Any]], list[str], str | None]:
    """Columns, requested output names and the request id from an OIP v2 infer request."""
    if not isinstance(doc, dict) or not isinstance(doc.get("inputs"), list):
        raise ValidationError(
            'An inference request is a JSON object with an "inputs" list of tensors: '
            '{"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [0.5]}]}.'
        )
    tensors = doc["inputs"]
    if not tensors:
        raise ValidationError('"inputs" is empty; send one tensor per column or one 2-D tensor.')
    columns: dict[str, list[Any]] = {}
    for i, t in enumerate(tensors):
        if not isinstance(t, dict):
            raise ValidationError(f"inputs[{i}] is not an object with name, shape, datatype, data.")
        for key in ("name", "shape", "datatype", "data"):
            if key not in t:
                raise ValidationError(f'inputs[{i}] has no "{key}".')
        name, shape, datatype = t["name"], t["shape"], t["datatype"]
        if not isinstance(name, str):
            raise ValidationError(f"inputs[{i}].name must be a string, got {_shown(name)}.")
        where = f"inputs[{i}] ({name})"
        size = _check_shape(shape, where)
        if datatype not in OIP_DATATYPES:
            raise ValidationError(
                f"{where} has datatype {_shown(datatype)}; use one of "
                f"{', '.join(sorted(OIP_DATATYPES))}."
            )
        data, kinds = _flat_data(t["data"], shape, size, where)
        _check_values(data, kinds, datatype, where)
        if len(tensors) == 1 and len(shape) == 2 and name not in schema.names:
            rows, width = shape
            if schema.names and width != len(schema.names):
                raise ValidationError(
                    f"inputs[0] ({name}) is {rows}×{width}, but the model takes "
                    f"{len(schema.names)} columns {schema.names}."
                )
            names = schema.names or [f"x{j}" for j in range(width)]
            for j, col in enumerate(names):
                columns[col] = data[j::width]
            break
        if len(shape) == 2 and shape[1] != 1:
            raise ValidationError(
                f"inputs[{i}] ({name}) has shape {shape}; a per-column tensor has shape [n] or "
                "[n, 1] (send a single 2-D tensor for a whole table)."
            )
        if name in columns:
            raise ValidationError(f"Column {name!r} is sent twice.")
        columns[name] = data
    wanted = ["predict"]
    if "outputs" in doc:
        outs = doc["outputs"]
        if not isinstance(outs, list) or not all(
            isinstance(o, dict) and isinstance(o.get("name"), str) for o in outs
        ):
            raise ValidationError('"outputs" is a list of {"name": ...} objects.')
        wanted = [o["name"] for o in outs] or wanted
        twice = next((w for j, w in enumerate(wanted) if w in wanted[:j]), None)
        if twice is not None:
            raise ValidationError(
                f"Duplicate output name {twice!r} is not allowed in a request; ask for each "
                "output once."
            )
        unknown = [w for w in wanted if w not in ("predict", "predict_proba")]
        if unknown:
            raise ValidationError(
                f"Unknown outputs {unknown}; this server returns 'predict' and, for "
                "classifiers, 'predict_proba'."
            )
    rid = doc.get("id")
    if rid is not None:
        check_request_id(rid, '"id"')
    return columns, wanted, rid


_REQUEST_ID = re.compile(r"[A-Za-z0-9._\-]{1,64}")


def usable_request_id(value: Any) -> str | None:
    """``value`` when it is a request id ``check_request_id`` accepts, else None."""
    return value if isinstance(value, str) and _REQUEST_ID.fullmatch(value) else None


def check_request_id(value: Any, where: str) -> str:
    """A client's request id: 1–64 letters, digits, ``.``, ``_`` or ``-`` (``:`` addresses
    a row of a multi-row request, and ids travel back in a header)."""
    if not isinstance(value, str) or not _REQUEST_ID.fullmatch(value):
        raise ValidationError(
            f"{where} must be 1 to 64 letters, digits, '.', '_' or '-'; got {value!r:.80}."
        )
    return value


def oip_response(
    name: str, version: int, request_id: str, outputs: dict[str, np.ndarray]
) -> dict[str, Any]:
    """An OIP v2 inference response with one tensor per requested output."""
    tensors = []
    for key, arr in outputs.items():
        tensors.append(
            {
                "name": key,
                "shape": list(arr.shape),
                "datatype": oip_datatype(arr.dtype),
                "data": arr.ravel().tolist(),
            }
        )
    return {
        "model_name": name,
        "model_version": str(version),
        "id": request_id,
        "outputs": tensors,
    }


def _records(records: list[Any], where: str) -> dict[str, list[Any]]:
    if not records:
        raise ValidationError(f'"{where}" is empty; send at least one row.')
    if not all(isinstance(r, dict) for r in records):
        raise ValidationError(f'Every row of "{where}" must be an object of column: value.')
    names: dict[str, None] = {}
    for r in records:
        for k in r:
            names.setdefault(k, None)
    if not names:
        raise ValidationError(f'The rows of "{where}" have no columns.')
    return {k: [r.get(k) for r in records] for k in names}


def _rows(rows: list[Any], names: list[str], where: str) -> dict[str, list[Any]]:
    width = len(names)
    for i, r in enumerate(rows):
        if not isinstance(r, list) or len(r) != width:
            raise ValidationError(
                f'Row {i} of "{where}" has {len(r) if isinstance(r, list) else "no"} values; '
                f"expected {width} ({names})."
            )
    return dict(zip(names, map(list, zip(*rows, strict=True)), strict=True)) if width else {}


def _positional(names: Any, schema: InputSchema) -> Any:
    """For a model fitted on an array (its columns are ``x0, x1, ...``), the names
    ``0, 1, ...`` (or ``"0", "1", ...``) that pandas gives a frame made from an array, as
    MLflow clients send them, mean its columns in order; other names are returned as is."""
    if (
        isinstance(names, list)
        and (schema.ndarray or schema.names == [f"x{j}" for j in range(len(schema.names))])
        and len(names) == len(schema.names)
        and all(type(n) in (int, str) for n in names)
        and [str(n) for n in names] == [str(j) for j in range(len(names))]
    ):
        return list(schema.names)
    return names


def _positional_columns(columns: dict[str, list[Any]], schema: InputSchema) -> dict[str, Any]:
    names = _positional(list(columns), schema)
    return dict(zip(names, columns.values(), strict=True))


def invocations_columns(doc: Any, schema: InputSchema) -> dict[str, list[Any]]:
    """Columns from an MLflow scoring request (JSON)."""
    formats = ("dataframe_split", "dataframe_records", "instances", "inputs")
    if not isinstance(doc, dict):
        raise ValidationError(f"The body must be a JSON object with one of {list(formats)}.")
    given = [k for k in formats if k in doc]
    if len(given) != 1:
        raise ValidationError(
            f"The body must have exactly one of {list(formats)}; it has {given or list(doc)[:5]}."
        )
    key = given[0]
    value = doc[key]
    if key == "dataframe_split":
        if not isinstance(value, dict) or not isinstance(value.get("data"), list):
            raise ValidationError('"dataframe_split" needs "columns" and "data" lists.')
        names = _positional(value.get("columns"), schema) or schema.names
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ValidationError('"dataframe_split.columns" must be a list of column names.')
        if not value["data"]:
            raise ValidationError('"dataframe_split.data" is empty; send at least one row.')
        return _rows(value["data"], names, key)
    if key == "dataframe_records":
        if not isinstance(value, list):
            raise ValidationError('"dataframe_records" must be a list of row objects.')
        return _positional_columns(_records(value, key), schema)
    # instances / inputs: rows as objects, rows as lists, or a dict of columns
    if isinstance(value, dict):
        cols = {k: (v if isinstance(v, list) else [v]) for k, v in value.items()}
        if not cols:
            raise ValidationError(f'"{key}" is empty; send at least one column.')
        return _positional_columns(cols, schema)
    if not isinstance(value, list) or not value:
        raise ValidationError(f'"{key}" must be a non-empty list of rows or a dict of columns.')
    if isinstance(value[0], dict):
        return _positional_columns(_records(value, key), schema)
    if not schema.names:
        raise ValidationError(f'"{key}" as lists needs a model with a known signature.')
    return _rows(value, schema.names, key)


def csv_columns(body: bytes, schema: InputSchema) -> Any:
    """A frame from a CSV body with a header row."""
    import pandas as pd

    if not body.strip():
        raise BadCSVError("The CSV body is empty; send a header row and at least one row.")
    text = [c.name for c in schema.columns if c.kind == "text"]
    try:  # text stays text: '02134' is a zip code, 'NA' a value, only empty cells are null
        frame = pd.read_csv(
            io.BytesIO(body),
            dtype=dict.fromkeys(text, str) or None,
            keep_default_na=not text,
            na_values=[""] if text else None,
        )
    except Exception as exc:
        raise BadCSVError(f"Cannot read the CSV body: {exc}.") from exc
    if frame.empty:
        raise ValidationError("The CSV body has a header but no rows.")
    return frame
