"""The inference log: every online prediction (request id, time, model version, inputs,
outputs, latency) and every batch (its input and output data versions), plus feedback,
the ground-truth labels that arrive later.

Online writes are buffered in memory and written by a background thread in one
transaction per flush (every ``flush_interval`` seconds, or sooner when ``max_buffer``
entries wait), so logging never blocks a request. A clean stop flushes everything; a
crash loses at most the entries of the last ``flush_interval``.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from ..errors import NotFoundError, ValidationError
from ..store import Store, current_store, schema

__all__ = [
    "InferenceLogger",
    "NumericRows",
    "Retention",
    "feedback",
    "inference_log",
    "log_feedback",
    "parse_retention",
]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


@dataclass(frozen=True)
class Retention:
    """How much of the log a deployment keeps: entries younger than ``max_age_s`` and at
    most ``max_rows`` of the newest (either may be None for no limit)."""

    max_age_s: float | None = None
    max_rows: int | None = None

    def to_text(self) -> str | None:
        """The setting as it is written (``30d``, ``1000000 rows``), None for unlimited."""
        parts = []
        if self.max_age_s is not None:
            parts.append(f"{self.max_age_s:g}s")
        if self.max_rows is not None:
            parts.append(f"{self.max_rows} rows")
        return ", ".join(parts) or None


def parse_retention(value: str | int | Retention | None) -> Retention:
    """``"30d"`` / ``"12h"`` keep by age, an int keeps that many newest entries, None keeps all."""
    if value is None or isinstance(value, Retention):
        return value or Retention()
    if isinstance(value, int) and not isinstance(value, bool):
        if value <= 0:
            raise ValidationError("Retention by rows must be a positive number of entries.")
        return Retention(max_rows=value)
    text = str(value).strip()
    if text.isdigit():
        return parse_retention(int(text))
    match = _DURATION.match(text)
    if not match:
        raise ValidationError(
            f"Cannot read retention {value!r}: use an age such as '30d', '12h' or '90m', "
            "or a number of entries such as 1000000."
        )
    return Retention(max_age_s=float(match.group(1)) * _UNITS[match.group(2)])


class InferenceLogger:
    """Buffers online predictions and writes them in batches from a background thread."""

    def __init__(
        self,
        store: Store,
        *,
        deployment_id: str | None = None,
        flush_interval: float = 1.0,
        max_buffer: int = 500,
        max_pending_rows: int = 200_000,
        retention: Retention | None = None,
    ):
        self.store = store
        self.deployment_id = deployment_id
        self.flush_interval = flush_interval
        self.max_buffer = max_buffer
        self.retention = retention or Retention()
        self._buffer: list[tuple[Any, ...]] = []
        self._pending_rows = 0
        self.max_pending_rows = max_pending_rows
        self._drained = threading.Event()
        self._lock = threading.Lock()
        self._flushing = threading.Lock()  # a flush waits for one in progress
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_trim = 0.0
        self.written = 0
        self.failures = 0
        self.last_error: str | None = None

    def start(self) -> None:
        """Start the background writer (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._loop, name="mlops-inference-log", daemon=True
            )
            self._thread.start()

    def add(
        self,
        request_id: str,
        name: str,
        version: int,
        rows: int,
        inputs: dict[str, list[Any]] | NumericRows,
        outputs: dict[str, Any],
        latency_ms: float,
    ) -> None:
        """Queue one online prediction. Never touches the database; waits (up to 10 s) only
        when ``max_pending_rows`` are already queued, so a writer that falls behind slows
        clients down instead of growing memory without bound."""
        entry = (request_id, name, version, time.time(), rows, inputs, outputs, latency_ms)
        with self._lock:
            self._buffer.append(entry)
            size = len(self._buffer)
            self._pending_rows += rows
            full = self._pending_rows > self.max_pending_rows
        if size >= self.max_buffer or full:
            self._wake.set()
        if full:
            self._drained.clear()
            self._drained.wait(10.0)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            self.flush()

    @property
    def pending(self) -> int:
        """Entries buffered and not yet written."""
        with self._lock:
            return len(self._buffer)

    def flush(self) -> int:
        """Write everything buffered now; returns the number of entries written. Waits for
        a flush already in progress, so an entry added before the call is stored after it
        (unless the store refused the write)."""
        with self._flushing:
            return self._flush()

    def _flush(self) -> int:
        with self._lock:
            batch, self._buffer = self._buffer, []
            self._pending_rows = 0
        if not batch:
            self._trim_if_due()
            return 0
        rows = [
            {
                "request_id": rid,
                "deployment_id": self.deployment_id,
                "model_name": name,
                "version": version,
                "time": t,
                "kind": "online",
                "rows": n,
                **encode_entry(inputs, outputs),
                "latency_ms": latency,
            }
            for rid, name, version, t, n, inputs, outputs, latency in batch
        ]
        try:
            with self.store.write() as conn:
                conn.execute(schema.inference_log.insert(), rows)
        except Exception as exc:  # keep serving; put the entries back for the next flush
            self.failures += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            with self._lock:
                self._buffer[:0] = batch
                self._pending_rows += sum(e[4] for e in batch)
            return 0
        self._drained.set()
        self.written += len(rows)
        self._trim_if_due()
        return len(rows)

    def _trim_if_due(self) -> None:
        now = time.time()
        if (
            now - self._last_trim < 60
            or self.deployment_id is None  # retention is per deployment
            or (self.retention.max_age_s is None and self.retention.max_rows is None)
        ):
            return
        self._last_trim = now
        try:
            trim(self.store, self.deployment_id, self.retention, now=now)
        except Exception as exc:
            self.last_error = f"retention: {type(exc).__name__}: {exc}"

    def close(self, timeout: float = 30.0) -> str:
        """Stop the writer and flush what is left (a clean stop loses nothing): retries while
        the store is busy, and if it still refuses, saves the entries to a JSON-lines file in
        the store's ``serving/`` folder. Returns one line saying what happened."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        deadline = time.monotonic() + timeout
        while True:
            self.flush()
            if not self.pending or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        left = self.pending
        if not left:
            return f"inference log flushed ({self.written} entries written)"
        path = self._save_unwritten()
        return (
            f"inference log: {self.written} entries written; {left} could not be written "
            f"({self.last_error}) and were saved to {path}"
        )

    def _save_unwritten(self) -> str:
        with self._lock:
            batch, self._buffer = self._buffer, []
        folder = self.store.home / "serving"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"unwritten-{self.deployment_id or 'serve'}-{int(time.time())}.jsonl"
        with open(path, "a") as fh:
            for rid, name, version, t, n, inputs, outputs, latency in batch:
                record = {
                    "request_id": rid,
                    "deployment_id": self.deployment_id,
                    "model_name": name,
                    "version": version,
                    "time": t,
                    "rows": n,
                    "inputs": inputs.columns() if isinstance(inputs, NumericRows) else inputs,
                    "outputs": outputs,
                    "latency_ms": latency,
                }
                fh.write(json.dumps(record, default=_jsonable) + "\n")
        return str(path)


class NumericRows:
    """Validated numeric inputs as one 2-D array (column order = ``names``): logged as raw
    bytes, which costs microseconds where JSON would cost a millisecond per 100 rows."""

    __slots__ = ("array", "names")

    def __init__(self, names: list[str], array: Any):
        self.names = names
        self.array = array

    def columns(self) -> dict[str, list[Any]]:
        """The rows as JSON-ready columns."""
        return {n: self.array[:, j].tolist() for j, n in enumerate(self.names)}


def encode_entry(inputs: dict[str, list[Any]] | NumericRows, outputs: dict[str, Any]) -> dict:
    """The stored form of one logged prediction: numeric arrays as raw bytes in ``payload``
    described by ``layout``; anything else (text columns) as JSON in ``inputs``/``outputs``."""
    import numpy as np

    layout: list[dict[str, Any]] = []
    blobs: list[bytes] = []

    def binary(role: str, name: Any, arr: Any) -> None:
        arr = np.ascontiguousarray(arr)
        layout.append({"role": role, "name": name, "dtype": arr.dtype.str, "shape": arr.shape})
        blobs.append(arr.tobytes())

    inputs_text = None
    if isinstance(inputs, NumericRows) and inputs.array.dtype.kind in "biuf":
        binary("inputs", inputs.names, inputs.array)
    else:
        columns = inputs.columns() if isinstance(inputs, NumericRows) else inputs
        inputs_text = json.dumps(columns, default=_jsonable)
    as_json = {}
    for key, value in outputs.items():
        if getattr(value, "dtype", None) is not None and value.dtype.kind in "biuf":
            binary("outputs", key, value)
        else:
            as_json[key] = value
    return {
        "inputs": inputs_text,
        "outputs": json.dumps(as_json, default=_jsonable) if as_json else None,
        "layout": json.dumps(layout) if layout else None,
        "payload": b"".join(blobs) if blobs else None,
    }


def decode_entry(
    inputs: str | None, outputs: str | None, layout: str | None, payload: bytes | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Columns of inputs and outputs back from ``encode_entry``'s stored form."""
    import numpy as np

    ins: dict[str, Any] = json.loads(inputs) if inputs else {}
    outs: dict[str, Any] = json.loads(outputs) if outputs else {}
    offset = 0
    for part in json.loads(layout) if layout else []:
        dtype = np.dtype(part["dtype"])
        count = int(np.prod(part["shape"]))
        arr = np.frombuffer(payload or b"", dtype, count, offset).reshape(part["shape"])
        offset += count * dtype.itemsize
        if part["role"] == "inputs":
            for j, name in enumerate(part["name"]):
                ins[name] = arr[:, j]
        else:
            outs[part["name"]] = list(arr) if arr.ndim > 1 else arr
    return ins, outs


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def trim(
    store: Store, deployment_id: str | None, retention: Retention, *, now: float | None = None
) -> int:
    """Delete a deployment's log entries beyond its retention; returns how many went."""
    if deployment_id is None:
        raise ValidationError("Retention applies to one deployment; give its id.")
    log = schema.inference_log
    now = time.time() if now is None else now
    deleted = 0
    with store.write() as conn:
        where = log.c.deployment_id == deployment_id
        if retention.max_age_s is not None:
            deleted += conn.execute(
                log.delete().where(where, log.c.time < now - retention.max_age_s)
            ).rowcount
        if retention.max_rows is not None:
            cutoff = conn.execute(
                sa.select(log.c.id)
                .where(where)
                .order_by(log.c.id.desc())
                .offset(retention.max_rows)
                .limit(1)
            ).scalar()
            if cutoff is not None:
                deleted += conn.execute(log.delete().where(where, log.c.id <= cutoff)).rowcount
    return deleted


def log_batch(
    store: Store,
    *,
    request_id: str,
    name: str,
    version: int,
    rows: int,
    input_version_id: int | None,
    output_version_id: int | None,
    latency_ms: float,
) -> None:
    """Record one batch scoring: its input and output data versions, not row by row."""
    with store.write() as conn:
        conn.execute(
            schema.inference_log.insert().values(
                request_id=request_id,
                deployment_id=None,
                model_name=name,
                version=version,
                time=time.time(),
                kind="batch",
                rows=rows,
                inputs=None,
                outputs=None,
                input_version_id=input_version_id,
                output_version_id=output_version_id,
                latency_ms=latency_ms,
            )
        )


def inference_log(
    name: str,
    *,
    since: float | None = None,
    last: int | None = None,
    kind: str | None = "online",
    store: Store | None = None,
) -> Any:
    """The logged predictions of model ``name`` as a DataFrame, one row per predicted row:
    request id, time, version, latency, the input features and the outputs."""
    import pandas as pd

    store = store or current_store()
    log = schema.inference_log
    query = sa.select(log).where(log.c.model_name == name)
    if kind is not None:
        query = query.where(log.c.kind == kind)
    if since is not None:
        query = query.where(log.c.time >= since)
    query = query.order_by(log.c.id.desc() if last else log.c.id)
    if last:
        query = query.limit(last)
    if not store.exists:
        return pd.DataFrame()
    with store.read() as conn:
        entries = list(conn.execute(query))
    if last:
        entries.reverse()
    frames = []
    for e in entries:
        if e.kind != "online":
            frames.append(
                pd.DataFrame(
                    {
                        "request_id": [e.request_id],
                        "time": [e.time],
                        "version": [e.version],
                        "kind": [e.kind],
                        "rows": [e.rows],
                        "input_version_id": [e.input_version_id],
                        "output_version_id": [e.output_version_id],
                        "latency_ms": [e.latency_ms],
                    }
                )
            )
            continue
        inputs, outputs = decode_entry(e.inputs, e.outputs, e.layout, e.payload)
        ids = [e.request_id] if e.rows == 1 else [f"{e.request_id}:{i}" for i in range(e.rows)]
        part = {
            "request_id": ids,
            "time": [e.time] * e.rows,
            "version": [e.version] * e.rows,
            "latency_ms": [e.latency_ms] * e.rows,
        }
        reserved = set(part) | set(outputs) | {"kind", "rows"}
        for key, values in inputs.items():  # a feature never hides the log's own columns
            part[f"input.{key}" if key in reserved else key] = values
        for key, values in outputs.items():
            part[key] = values
        frames.append(pd.DataFrame(part))
    if not frames:
        return pd.DataFrame(columns=["request_id", "time", "version", "latency_ms"])
    frame = pd.concat(frames, ignore_index=True)
    frame["time"] = pd.to_datetime(frame["time"], unit="s")
    return frame


def log_feedback(
    request_ids: Sequence[str] | str,
    labels: Sequence[Any] | Any,
    *,
    model: str | None = None,
    store: Store | None = None,
) -> int:
    """Record ground-truth labels for logged predictions; returns how many were stored.

    A request that predicted several rows is addressed row by row as ``"<id>:<row>"``.
    Unknown request ids are an error and nothing is stored.
    """
    store = store or current_store()
    if isinstance(request_ids, str):
        request_ids, labels = [request_ids], [labels]
    ids = [str(r) for r in request_ids]
    values = list(labels)
    if len(ids) != len(values):
        raise ValidationError(
            f"Got {len(ids)} request ids and {len(values)} labels; give one label per id."
        )
    if not ids:
        raise ValidationError("No request ids given; pass the ids the predictions returned.")
    bases = sorted({r.split(":", 1)[0] for r in ids})
    log = schema.inference_log
    found: dict[str, str] = {}
    if store.exists:
        with store.read() as conn:
            for chunk in range(0, len(bases), 500):
                for rid, mname in conn.execute(
                    sa.select(log.c.request_id, log.c.model_name).where(
                        log.c.request_id.in_(bases[chunk : chunk + 500])
                    )
                ):
                    found[rid] = mname
    missing = [b for b in bases if b not in found]
    if missing:
        raise NotFoundError(
            f"No logged prediction has request id {missing[:5]}"
            f"{' and more' if len(missing) > 5 else ''}; nothing was stored. Use the ids "
            "the server returned (the 'id' field, or the X-Request-ID header)."
        )
    now = time.time()
    rows = [
        {
            "request_id": rid,
            "model_name": model or found[rid.split(":", 1)[0]],
            "label": json.dumps(label, default=_jsonable),
            "time": now,
        }
        for rid, label in zip(ids, values, strict=True)
    ]
    with store.write() as conn:
        conn.execute(schema.feedback.insert(), rows)
    return len(rows)


def feedback(name: str, *, store: Store | None = None) -> Any:
    """The labels received for model ``name``: request id, label, time (latest per id)."""
    import pandas as pd

    store = store or current_store()
    fb = schema.feedback
    if not store.exists:
        return pd.DataFrame(columns=["request_id", "label", "time"])
    with store.read() as conn:
        rows = list(
            conn.execute(
                sa.select(fb.c.request_id, fb.c.label, fb.c.time)
                .where(fb.c.model_name == name)
                .order_by(fb.c.id)
            )
        )
    frame = pd.DataFrame(
        [(r.request_id, json.loads(r.label), r.time) for r in rows],
        columns=["request_id", "label", "time"],
    )
    frame = frame.drop_duplicates("request_id", keep="last").reset_index(drop=True)
    frame["time"] = pd.to_datetime(frame["time"], unit="s")
    return frame
