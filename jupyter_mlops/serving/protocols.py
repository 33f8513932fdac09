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
import re
from typing import Any

import numpy as np

from ..errors import ValidationError
from .signature import InputSchema, oip_datatype

__all__ = [
    "OIP_DATATYPES",
    "check_request_id",
    "csv_columns",
    "invocations_columns",
    "oip_columns",
    "oip_response",
    "parse_json",
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


def parse_json(body: bytes) -> Any:
    """The JSON document in a request body, or a clear error."""
    if not body.strip():
        raise ValidationError("The request body is empty; send a JSON document.")
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationError(f"The request body is not valid JSON: {exc}.") from exc


def _flatten(data: Any) -> list[Any]:
    if isinstance(data, list) and data and isinstance(data[0], list):
        out: list[Any] = []
        for item in data:
            out.extend(_flatten(item) if isinstance(item, list) else [item])
        return out
    if not isinstance(data, list):
        return [data]
    return data


def _shape_size(shape: list[int]) -> int:
    size = 1
    for d in shape:
        size *= d
    return size


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
            raise ValidationError(f"inputs[{i}].name must be a string, got {name!r}.")
        if (
            not isinstance(shape, list)
            or not shape
            or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
        ):
            raise ValidationError(
                f"inputs[{i}] ({name}) has shape {shape!r}; a shape is a list of sizes such as [3]."
            )
        if datatype not in OIP_DATATYPES:
            raise ValidationError(
                f"inputs[{i}] ({name}) has datatype {datatype!r}; use one of "
                f"{', '.join(sorted(OIP_DATATYPES))}."
            )
        data = _flatten(t["data"])
        if len(data) != _shape_size(shape):
            raise ValidationError(
                f"inputs[{i}] ({name}) has shape {shape} ({_shape_size(shape)} values) but "
                f"{len(data)} values in data."
            )
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
        if len(shape) > 2:
            raise ValidationError(f"inputs[{i}] ({name}) has {len(shape)} dimensions; at most 2.")
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
    return {n: [r[j] for r in rows] for j, n in enumerate(names)}


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
        names = value.get("columns") or schema.names
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ValidationError('"dataframe_split.columns" must be a list of column names.')
        if not value["data"]:
            raise ValidationError('"dataframe_split.data" is empty; send at least one row.')
        return _rows(value["data"], names, key)
    if key == "dataframe_records":
        if not isinstance(value, list):
            raise ValidationError('"dataframe_records" must be a list of row objects.')
        return _records(value, key)
    # instances / inputs: rows as objects, rows as lists, or a dict of columns
    if isinstance(value, dict):
        cols = {k: (v if isinstance(v, list) else [v]) for k, v in value.items()}
        if not cols:
            raise ValidationError(f'"{key}" is empty; send at least one column.')
        return cols
    if not isinstance(value, list) or not value:
        raise ValidationError(f'"{key}" must be a non-empty list of rows or a dict of columns.')
    if isinstance(value[0], dict):
        return _records(value, key)
    if not schema.names:
        raise ValidationError(f'"{key}" as lists needs a model with a known signature.')
    return _rows(value, schema.names, key)


def csv_columns(body: bytes, schema: InputSchema) -> Any:
    """A frame from a CSV body with a header row."""
    import pandas as pd

    if not body.strip():
        raise ValidationError("The CSV body is empty; send a header row and at least one row.")
    text = [c.name for c in schema.columns if c.kind == "text"]
    try:  # text stays text: '02134' is a zip code, 'NA' a value, only empty cells are null
        frame = pd.read_csv(
            io.BytesIO(body),
            dtype=dict.fromkeys(text, str) or None,
            keep_default_na=not text,
            na_values=[""] if text else None,
        )
    except Exception as exc:
        raise ValidationError(f"Cannot read the CSV body: {exc}.") from exc
    if frame.empty:
        raise ValidationError("The CSV body has a header but no rows.")
    return frame
