"""Inference log segments: the online predictions of one flush as a Parquet table in the
object store, one row per predicted row.

Columns: ``request_id`` (the request's id, or ``<id>:<row>`` for a row of a multi-row
request), ``time``, ``version``, ``latency_ms``, the input features (a feature named like
one of these is stored as ``input.<name>``), then the outputs (``predict`` and, when asked
for, ``predict_proba`` as a list per row). Numeric inputs arrive as one 2-D array per
request and are stacked, not converted value by value, so a flush of thousands of
requests costs milliseconds; reading a million logged rows is a Parquet read.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

__all__ = [
    "NumericRows",
    "build_tables",
    "count_requests",
    "read_table",
    "request_ids",
    "write_table",
]

META = ("request_id", "time", "version", "latency_ms")


class NumericRows:
    """Validated numeric inputs as one 2-D array (column order = ``names``)."""

    __slots__ = ("array", "names")

    def __init__(self, names: list[str], array: Any):
        self.names = names
        self.array = array

    def columns(self) -> dict[str, list[Any]]:
        """The rows as JSON-ready columns."""
        return {n: self.array[:, j].tolist() for j, n in enumerate(self.names)}


def _signature(entry: tuple[Any, ...]) -> tuple[Any, ...]:
    inputs, outputs = entry[5], entry[6]
    if isinstance(inputs, NumericRows):
        names: tuple[Any, ...] = ("rows", *inputs.names)
    else:
        names = ("json", *inputs)
    return (*names, "|", *sorted(outputs))


def _column_array(values: list[Any]) -> Any:
    import pyarrow as pa

    try:
        return pa.array(values, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed types: keep them as text
        return pa.array([None if v is None else str(v) for v in values], type=pa.string())


def _output_array(parts: list[Any]) -> Any:
    import pyarrow as pa

    arrays = [np.asarray(p) for p in parts]
    if arrays[0].ndim == 2:
        stacked = np.vstack(arrays).astype(np.float64)
        flat = pa.array(stacked.ravel())
        return pa.FixedSizeListArray.from_arrays(flat, stacked.shape[1])
    joined = np.concatenate(arrays)
    if joined.dtype.kind in "biuf":
        return pa.array(joined)
    return _column_array(joined.tolist())


_row_labels: Any = None  # "0", "1", ... as an Arrow array, grown on demand


def _labels(n: int) -> Any:
    global _row_labels
    import pyarrow as pa

    if _row_labels is None or len(_row_labels) < n:
        size = max(n, 2 * len(_row_labels) if _row_labels is not None else 1024)
        _row_labels = pa.array([str(i) for i in range(size)], type=pa.string())
    return _row_labels


def request_ids(ids: list[str], counts: list[int]) -> Any:
    """The ``request_id`` column: a one-row request's id as it is, ``<id>:<row>`` for each
    row of a multi-row one, built in Arrow rather than one Python string per row."""
    import pyarrow as pa
    import pyarrow.compute as pc

    base = pa.array(ids, type=pa.string())
    n = np.asarray(counts, dtype=np.int64)
    if not len(n) or bool((n == 1).all()):
        return base
    owner = np.repeat(np.arange(len(n)), n)
    row = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)
    repeated = base.take(pa.array(owner))
    joined = pc.binary_join_element_wise(repeated, _labels(int(n.max())).take(pa.array(row)), ":")
    return pc.if_else(pa.array(np.repeat(n == 1, n)), repeated, joined)


def count_requests(ids: Any) -> int:
    """How many requests the ``request_id`` column holds (a row id ``<id>:<row>`` counts
    for its request; ids never contain ``:`` otherwise)."""
    import pyarrow.compute as pc

    parts = pc.split_pattern(ids, ":", max_splits=1)
    return int(pc.count_distinct(pc.list_element(parts, 0)).as_py())


def build_tables(batch: list[tuple[Any, ...]]) -> list[Any]:
    """Arrow tables for buffered entries ``(request_id, model, version, time, rows, inputs,
    outputs, latency_ms)``, one per input/output layout, in arrival order within each."""
    import pyarrow as pa

    groups: dict[tuple[Any, ...], list[tuple[Any, ...]]] = {}
    for entry in batch:
        groups.setdefault(_signature(entry), []).append(entry)
    tables = []
    for entries in groups.values():
        counts = [e[4] for e in entries]
        columns: dict[str, Any] = {
            "request_id": request_ids([e[0] for e in entries], counts),
            "time": pa.array(np.repeat([e[3] for e in entries], counts), type=pa.float64()),
            "version": pa.array(np.repeat([e[2] for e in entries], counts), type=pa.int64()),
            "latency_ms": pa.array(np.repeat([e[7] for e in entries], counts), pa.float64()),
        }
        outputs = entries[0][6]
        reserved = set(META) | set(outputs)
        first = entries[0][5]
        if isinstance(first, NumericRows):
            stacked = np.vstack([e[5].array for e in entries])
            for j, name in enumerate(first.names):
                key = f"input.{name}" if name in reserved else name
                columns[key] = pa.array(np.ascontiguousarray(stacked[:, j]))
        else:
            for name in first:
                key = f"input.{name}" if name in reserved else name
                values: list[Any] = []
                for e in entries:
                    values.extend(e[5][name])
                columns[key] = _column_array(values)
        for key in outputs:
            columns[key] = _output_array([e[6][key] for e in entries])
        tables.append(pa.table(columns))
    return tables


def write_table(table: Any) -> bytes:
    """Parquet bytes (zstd) of a segment table. Dictionary encoding only where values
    repeat (versions, labels, text and integer inputs): on request ids, times, latencies
    and float features it triples the write time and makes the file larger."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    repeating = [
        f.name
        for f in table.schema
        if f.name not in ("request_id", "time", "latency_ms")
        and not pa.types.is_floating(f.type)
        and not pa.types.is_fixed_size_list(f.type)
    ]
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd", use_dictionary=repeating)
    return buffer.getvalue()


def read_table(data: bytes, columns: list[str] | None = None) -> Any:
    """A segment table back from its Parquet bytes (only ``columns`` when given)."""
    import pyarrow.parquet as pq

    return pq.read_table(io.BytesIO(data), columns=columns)
