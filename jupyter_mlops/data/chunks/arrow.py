"""Encoder for pyarrow-backed ``ArrowDtype`` columns (``arrow``): one Arrow IPC stream per chunk.

The column's Arrow type travels in Arrow's own format, so this encoder does not look at the
value type.
"""

from __future__ import annotations

from typing import Any

from .base import Column

__all__ = ["ArrowColumn", "decode_arrow", "prepare_arrow"]


class ArrowColumn(Column):
    """A pyarrow ChunkedArray; each row-chunk is an IPC stream of one record batch."""

    def __init__(self, chunked: Any, spec: dict[str, Any]):
        super().__init__(spec)
        self.chunked = chunked

    def piece(self, start: int, stop: int) -> bytes:
        import pyarrow as pa

        part = self.chunked.slice(start, stop - start).combine_chunks()
        batch = pa.record_batch([part], names=["v"])
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, batch.schema) as writer:
            writer.write_batch(batch)
        return sink.getvalue().to_pybytes()


def prepare_arrow(values: Any) -> ArrowColumn:
    """A pandas ArrowExtensionArray as an ``arrow`` column."""
    import pyarrow as pa

    chunked = (
        values._pa_array
        if hasattr(values, "_pa_array")
        else pa.chunked_array([values.__arrow_array__()])
    )
    return ArrowColumn(chunked, {"enc": "arrow", "dtype": str(values.dtype)})


def decode_arrow(spec: dict[str, Any], blobs: list[bytes]) -> Any:
    """The ArrowExtensionArray of ``arrow`` chunks (its type from the streams, else the spec)."""
    import pandas as pd
    import pyarrow as pa

    arrays = []
    typ = None
    for blob in blobs:
        reader = pa.ipc.open_stream(pa.py_buffer(blob))
        for batch in reader:
            arrays.append(batch.column(0))
        typ = reader.schema.field(0).type
    if typ is None:
        typ = pd.api.types.pandas_dtype(spec["dtype"]).pyarrow_dtype
    return pd.arrays.ArrowExtensionArray(pa.chunked_array(arrays, type=typ))
