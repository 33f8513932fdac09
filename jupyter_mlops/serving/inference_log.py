"""The inference log: every online prediction (request id, time, model version, inputs,
outputs, latency) and every batch (its input and output data versions), plus feedback,
the ground-truth labels that arrive later.

Online writes are buffered in memory and written by a background thread, one Parquet
segment per flush (see ``segments``; every ``flush_interval`` seconds, or sooner when
``max_buffer`` entries or ``flush_rows`` rows wait), so logging never blocks a request.
Refused requests are counted per reason in memory and written with the same flush, one
row per reason and minute (``inference_rejections``), for monitoring's rejection rate.
A clean stop flushes everything; a crash loses at most the entries of the last
``flush_interval``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from ..durations import parse_duration
from ..errors import NotFoundError, ValidationError
from ..store import Store, current_store, schema
from .memory import release_memory
from .segments import NumericRows, build_tables, count_requests, read_table, write_table

__all__ = [
    "InferenceLogger",
    "NumericRows",
    "Retention",
    "feedback",
    "inference_log",
    "log_feedback",
    "logged_requests",
    "logged_rows",
    "parse_retention",
    "rejections",
    "write_rejections",
]


@dataclass(frozen=True)
class Retention:
    """How much of the log a deployment keeps: entries younger than ``max_age_s`` and at
    most ``max_rows`` of the newest (either may be None for no limit)."""

    max_age_s: float | None = None
    max_rows: int | None = None


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
    seconds = parse_duration(text, "retention", ", or a number of entries such as 1000000")
    return Retention(max_age_s=seconds)


class InferenceLogger:
    """Buffers online predictions and writes them in batches from a background thread."""

    def __init__(
        self,
        store: Store,
        *,
        deployment_id: str | None = None,
        flush_interval: float = 1.0,
        max_buffer: int = 500,
        flush_rows: int = 10_000,
        max_pending_rows: int = 200_000,
        retention: Retention | None = None,
    ):
        self.store = store
        self.deployment_id = deployment_id
        self.flush_interval = flush_interval
        self.max_buffer = max_buffer
        self.flush_rows = flush_rows  # a flush's buffers stay a few MB (a server's RSS)
        self.retention = retention or Retention()
        self._buffer: list[tuple[Any, ...]] = []
        self._pending_rows = 0
        self.max_pending_rows = max_pending_rows
        self._tail: Tail | None = None
        # refused requests: {(model, version, reason): [count, last message]}
        self._rejected: dict[tuple[str, int | None, str], list[Any]] = {}
        self.compact_rows = COMPACT_ROWS
        self._drained = threading.Event()
        self._lock = threading.Lock()
        self._flushing = threading.Lock()  # a flush waits for one in progress
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_trim = 0.0
        self._last_release = 0.0
        self._unreleased = False
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
            due = size >= self.max_buffer or self._pending_rows >= self.flush_rows
        if due or full:
            self._wake.set()
        if full:
            self._drained.clear()
            self._drained.wait(10.0)

    def reject(self, name: str, version: int | None, reason: str, message: str) -> None:
        """Count one refused request (written with the next flush; never blocks)."""
        key = (name, version, reason)
        with self._lock:
            found = self._rejected.get(key)
            if found is None:
                self._rejected[key] = [1, message]
            else:
                found[0] += 1
                found[1] = message

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            self.flush()

    @property
    def pending(self) -> int:
        """Entries buffered and not yet written (refused requests' counts included)."""
        with self._lock:
            return len(self._buffer) + len(self._rejected)

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
            rejected, self._rejected = self._rejected, {}
        if rejected:
            self._write_rejections(rejected)
        if not batch:
            self._release_if_due(idle=True)
            self._trim_if_due()
            return 0
        try:
            self._tail = write_segments(
                self.store, self.deployment_id, batch, self._tail, self.compact_rows
            )
            written = len(batch)
        except Exception as exc:  # keep serving; put the entries back for the next flush
            self.failures += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            with self._lock:
                self._buffer[:0] = batch
                self._pending_rows += sum(e[4] for e in batch)
            return 0
        self._drained.set()
        self.written += written
        del batch  # the request buffers go now, and their pages back to the OS
        self._unreleased = True
        self._release_if_due()
        self._trim_if_due()
        return written

    def _write_rejections(self, rejected: dict[tuple[str, int | None, str], list[Any]]) -> None:
        try:
            write_rejections(self.store, self.deployment_id, rejected)
        except Exception as exc:  # counted again with the next flush
            self.failures += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            with self._lock:
                for key, (count, message) in rejected.items():
                    found = self._rejected.setdefault(key, [0, message])
                    found[0] += count

    def _release_if_due(self, idle: bool = False) -> None:
        """Trim the heap after writes: at most once a second while entries keep coming
        (a trim holds malloc's lock for a few ms), at once when the buffer is empty."""
        now = time.monotonic()
        if self._unreleased and (idle or not self._buffer or now - self._last_release >= 1.0):
            self._unreleased = False
            self._last_release = now
            release_memory()

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
            rejected, self._rejected = self._rejected, {}
        folder = self.store.home / "serving"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"unwritten-{self.deployment_id or 'serve'}-{int(time.time())}.jsonl"
        with open(path, "a") as fh:
            for (name, version, reason), (count, message) in rejected.items():
                record = {
                    "rejected": count,
                    "reason": reason,
                    "deployment_id": self.deployment_id,
                    "model_name": name,
                    "version": version,
                    "time": time.time(),
                    "example": message,
                }
                fh.write(json.dumps(record) + "\n")
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


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    return str(value)


COMPACT_ROWS = 50_000  # a flush extends the previous small segment up to this many rows
MERGE_ROWS = 5_000  # ... while that segment is this small


@dataclass
class Tail:
    """The last segment a logger wrote, which its next flush may extend."""

    segment_id: int
    object_hash: str
    rows: int
    columns: list[str]


def _segment_row(table: Any, digest: str, deployment_id: str | None, model: str) -> dict:
    times = table.column("time").to_numpy()
    versions = table.column("version").to_numpy()
    return {
        "deployment_id": deployment_id,
        "model_name": model,
        "version_min": int(versions.min()),
        "version_max": int(versions.max()),
        "time_min": float(times.min()),
        "time_max": float(times.max()),
        "requests": count_requests(table.column("request_id")),
        "rows": table.num_rows,
        "object_hash": digest,
        "columns": json.dumps(table.column_names),
    }


def write_segments(
    store: Store,
    deployment_id: str | None,
    batch: list[tuple[Any, ...]],
    tail: Tail | None = None,
    compact_rows: int = COMPACT_ROWS,
) -> Tail | None:
    """Write buffered entries as Parquet segments (one per layout) and index them.

    At low traffic every flush would leave a tiny segment (up to 86,400 a day), so a
    flush whose entries have the layout of ``tail`` (this logger's previous segment, still
    under ``compact_rows``) replaces it with one segment holding both: the new object is
    written first, the index swaps in one transaction, then the old object goes (a crash
    in between leaves only an unreferenced object for ``gc``). A merge rewrites the tail,
    so it happens only while the tail is under ``MERGE_ROWS``: a flush costs its own rows
    plus at most that many, not a rewrite of up to ``compact_rows`` (which, once a
    second, was what slowed the requests served meanwhile). Returns the new tail.
    """
    import pyarrow as pa

    tables = build_tables(batch)
    seg = schema.inference_segments
    model = batch[0][1]
    if (
        tail is not None
        and len(tables) == 1
        and tables[0].column_names == tail.columns
        and tail.rows + tables[0].num_rows <= compact_rows
        and tail.rows <= MERGE_ROWS
    ):
        try:
            previous = read_table(store.objects.get(tail.object_hash))
            merged = pa.concat_tables([previous, tables[0]], promote_options="permissive")
        except Exception:
            merged = None  # trimmed or unreadable: write the new entries on their own
        if merged is not None:
            digest, _ = store.objects.write(write_table(merged))
            row = _segment_row(merged, digest, deployment_id, model)
            with store.write() as conn:
                gone = conn.execute(
                    seg.delete().where(seg.c.segment_id == tail.segment_id)
                ).rowcount
                if gone:
                    segment_id = conn.execute(seg.insert().values(**row)).inserted_primary_key[0]
            if gone:
                if digest != tail.object_hash:
                    store.objects.delete(tail.object_hash)
                return Tail(int(segment_id), digest, merged.num_rows, merged.column_names)
    written = []
    for table in tables:  # objects first, so the write transaction stays short
        digest, _ = store.objects.write(write_table(table))
        written.append((table, _segment_row(table, digest, deployment_id, model)))
    new_tail = None
    with store.write() as conn:
        for table, row in written:
            segment_id = conn.execute(seg.insert().values(**row)).inserted_primary_key[0]
            new_tail = Tail(int(segment_id), row["object_hash"], table.num_rows, table.column_names)
    if new_tail is None or new_tail.rows >= compact_rows:
        return None
    return new_tail


REJECTION_BUCKET_S = 60.0  # refused requests are counted per reason and minute


def write_rejections(
    store: Store,
    deployment_id: str | None,
    rejected: dict[tuple[str, int | None, str], list[Any]],
    *,
    now: float | None = None,
) -> None:
    """Add counts of refused requests ({(model, version, reason): [count, example]}) to
    their minute's rows, one transaction; a row per reason and minute keeps the table
    small under sustained bad traffic."""
    rej = schema.inference_rejections
    bucket = float(int((time.time() if now is None else now) // REJECTION_BUCKET_S))
    bucket *= REJECTION_BUCKET_S

    def same(name: str, version: int | None, reason: str) -> Any:
        return sa.and_(
            rej.c.deployment_id.is_(None)
            if deployment_id is None
            else rej.c.deployment_id == deployment_id,
            rej.c.model_name == name,
            rej.c.version.is_(None) if version is None else rej.c.version == version,
            rej.c.reason == reason,
            rej.c.time == bucket,
        )

    with store.write() as conn:
        for (name, version, reason), (count, message) in rejected.items():
            example = str(message)[:500]
            done = conn.execute(
                rej.update()
                .where(same(name, version, reason))
                .values(requests=rej.c.requests + count, example=example)
            ).rowcount
            if not done:
                conn.execute(
                    rej.insert().values(
                        deployment_id=deployment_id,
                        model_name=name,
                        version=version,
                        time=bucket,
                        reason=reason,
                        requests=count,
                        example=example,
                    )
                )


def rejections(
    name: str,
    *,
    since: float | None = None,
    until: float | None = None,
    store: Store | None = None,
) -> Any:
    """The requests a deployment of model ``name`` refused, per reason and minute: time
    (the minute), deployment, version, reason, requests, and the last error message."""
    import pandas as pd

    store = store or current_store()
    columns = ["time", "deployment_id", "version", "reason", "requests", "example"]
    if not store.exists:
        return pd.DataFrame(columns=columns)
    rej = schema.inference_rejections
    query = sa.select(*(rej.c[c] for c in columns)).where(rej.c.model_name == name)
    if since is not None:  # a minute's row counts when the minute overlaps the window
        query = query.where(rej.c.time > since - REJECTION_BUCKET_S)
    if until is not None:
        query = query.where(rej.c.time <= until)
    with store.read() as conn:
        rows = conn.execute(query.order_by(rej.c.time, rej.c.id)).all()
    frame = pd.DataFrame([tuple(r) for r in rows], columns=columns)
    frame["time"] = pd.to_datetime(frame["time"], unit="s")
    return frame


def trim(
    store: Store, deployment_id: str | None, retention: Retention, *, now: float | None = None
) -> int:
    """Drop a deployment's oldest log segments beyond its retention; returns the rows
    dropped. Whole segments go (one per flush), so a limit holds to within one flush."""
    if deployment_id is None:
        raise ValidationError("Retention applies to one deployment; give its id.")
    seg = schema.inference_segments
    now = time.time() if now is None else now
    with store.read() as conn:
        segments = list(
            conn.execute(
                sa.select(seg.c.segment_id, seg.c.time_max, seg.c.rows, seg.c.object_hash)
                .where(seg.c.deployment_id == deployment_id)
                .order_by(seg.c.time_max.desc(), seg.c.segment_id.desc())
            )
        )
    doomed, kept_rows = [], 0
    for s in segments:
        too_old = retention.max_age_s is not None and s.time_max < now - retention.max_age_s
        too_many = retention.max_rows is not None and kept_rows >= retention.max_rows
        if too_old or too_many:
            doomed.append(s)
        else:
            kept_rows += s.rows
    if retention.max_age_s is not None:  # refused requests' counts age out too
        rej = schema.inference_rejections
        with store.write() as conn:
            conn.execute(
                rej.delete().where(
                    rej.c.deployment_id == deployment_id,
                    rej.c.time < now - retention.max_age_s - REJECTION_BUCKET_S,
                )
            )
    if not doomed:
        return 0
    with store.write() as conn:
        conn.execute(seg.delete().where(seg.c.segment_id.in_([s.segment_id for s in doomed])))
    for s in doomed:  # each segment's bytes are its own (request ids are unique)
        store.objects.delete(s.object_hash)
    return sum(s.rows for s in doomed)


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
                input_version_id=input_version_id,
                output_version_id=output_version_id,
                latency_ms=latency_ms,
            )
        )


def _segments(store: Store, name: str | None, since: float | None, last: int | None) -> list[Any]:
    seg = schema.inference_segments
    query = sa.select(seg)
    if name is not None:
        query = query.where(seg.c.model_name == name)
    if since is not None:
        query = query.where(seg.c.time_max >= since)
    query = query.order_by(seg.c.time_max.desc(), seg.c.segment_id.desc())
    with store.read() as conn:
        found = []
        for row in conn.execute(query):
            found.append(row)
            if last is not None and sum(r.rows for r in found) >= last:
                break
    found.reverse()
    return found


def logged_rows(name: str, since: float | None, *, store: Store | None = None) -> int:
    """How many predictions of ``name`` were logged since ``since`` (all when None): the
    segment index answers, and only a segment straddling ``since`` is read (its times)."""
    import pyarrow.compute as pc

    store = store or current_store()
    if not store.exists:
        return 0
    seg = schema.inference_segments
    query = sa.select(seg.c.rows, seg.c.time_min, seg.c.object_hash).where(seg.c.model_name == name)
    if since is not None:
        query = query.where(seg.c.time_max >= since)
    total = 0
    with store.read() as conn:
        found = list(conn.execute(query))
    for rows, time_min, digest in found:
        if since is None or time_min >= since:
            total += rows
        else:
            times = read_table(store.objects.get(digest), ["time"]).column("time")
            total += int(pc.sum(pc.greater_equal(times, since)).as_py() or 0)
    return total


def logged_requests(
    name: str, since: float | None, until: float | None = None, *, store: Store | None = None
) -> int:
    """How many online requests of ``name`` were logged between ``since`` and ``until``
    (open ends when None): the segment index answers, and only segments straddling an end
    are read (their request ids and times)."""
    import pyarrow.compute as pc

    from .segments import count_requests

    store = store or current_store()
    if not store.exists:
        return 0
    seg = schema.inference_segments
    query = sa.select(seg.c.requests, seg.c.time_min, seg.c.time_max, seg.c.object_hash).where(
        seg.c.model_name == name
    )
    if since is not None:
        query = query.where(seg.c.time_max >= since)
    if until is not None:
        query = query.where(seg.c.time_min <= until)
    with store.read() as conn:
        found = list(conn.execute(query))
    total = 0
    for requests, time_min, time_max, digest in found:
        inside = (since is None or time_min >= since) and (until is None or time_max <= until)
        if inside:
            total += requests
            continue
        table = read_table(store.objects.get(digest), ["request_id", "time"])
        times = table.column("time")
        keep = pc.and_(
            pc.greater_equal(times, since if since is not None else -float("inf")),
            pc.less_equal(times, until if until is not None else float("inf")),
        )
        ids = table.column("request_id").filter(keep)
        total += count_requests(ids) if len(ids) else 0
    return total


def online_table(
    name: str,
    *,
    since: float | None = None,
    last: int | None = None,
    columns: list[str] | None = None,
    store: Store | None = None,
) -> Any:
    """The logged online predictions of ``name`` as one Arrow table (oldest first)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    store = store or current_store()
    if not store.exists:
        return pa.table({})
    tables = []
    for s in _segments(store, name, since, last):
        wanted = None
        if columns is not None:
            present = json.loads(s.columns)
            wanted = [c for c in columns if c in present]
        tables.append(read_table(store.objects.get(s.object_hash), wanted))
    if not tables:
        return pa.table({})
    table = pa.concat_tables(tables, promote_options="permissive")
    if since is not None and "time" in table.column_names:
        table = table.filter(pc.greater_equal(table.column("time"), since))
    if last is not None and table.num_rows > last:
        table = table.slice(table.num_rows - last)
    return table


def inference_log(
    name: str,
    *,
    since: float | None = None,
    last: int | None = None,
    kind: str | None = "online",
    store: Store | None = None,
) -> Any:
    """The logged predictions of model ``name`` as a DataFrame, one row per predicted row:
    request id, time, version, latency, the input features and the outputs
    (``kind="batch"``: one row per batch scoring with its data versions)."""
    import pandas as pd

    store = store or current_store()
    frames = []
    if kind in ("online", None):
        table = online_table(name, since=since, last=last, store=store)
        if table.num_rows:
            frames.append(table.to_pandas())
    if kind in ("batch", None) and store.exists:
        log = schema.inference_log
        query = sa.select(log).where(log.c.model_name == name).order_by(log.c.id)
        if since is not None:
            query = query.where(log.c.time >= since)
        with store.read() as conn:
            entries = list(conn.execute(query))
        if last:
            entries = entries[-last:]
        if entries:
            frames.append(
                pd.DataFrame(
                    {
                        "request_id": [e.request_id for e in entries],
                        "time": [e.time for e in entries],
                        "version": [e.version for e in entries],
                        "kind": [e.kind for e in entries],
                        "rows": [e.rows for e in entries],
                        "input_version_id": [e.input_version_id for e in entries],
                        "output_version_id": [e.output_version_id for e in entries],
                        "latency_ms": [e.latency_ms for e in entries],
                    }
                )
            )
    if not frames:
        return pd.DataFrame(columns=["request_id", "time", "version", "latency_ms"])
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    frame["time"] = pd.to_datetime(frame["time"], unit="s")
    return frame


def _known_ids(store: Store, ids: set[str], model: str | None) -> dict[str, str]:
    """{request id: model} for the ids present in the log (scans the request ids only)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    found: dict[str, str] = {}
    if not store.exists:
        return found
    wanted = pa.array(sorted(ids), type=pa.string())
    for s in _segments(store, model, None, None):
        column = read_table(store.objects.get(s.object_hash), ["request_id"]).column(0)
        hits = column.filter(pc.is_in(column, value_set=wanted))
        for rid in hits.to_pylist():
            found[rid] = s.model_name
        if len(found) == len(ids):
            break
    return found


def log_feedback(
    request_ids: Sequence[str] | str,
    labels: Sequence[Any] | Any,
    *,
    model: str | None = None,
    store: Store | None = None,
) -> int:
    """Record ground-truth labels for logged predictions; returns how many were stored.

    A request that predicted several rows is addressed row by row as ``"<id>:<row>"``.
    Unknown request ids are an error and nothing is stored; ``model`` narrows the lookup.
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
    found = _known_ids(store, set(ids), model)
    missing = [r for r in ids if r not in found]
    if missing:
        raise NotFoundError(
            f"No logged prediction has request id {missing[:5]}"
            f"{' and more' if len(missing) > 5 else ''}; nothing was stored. Use the ids "
            "the server returned (the 'id' field, or the X-Request-ID header; a row of a "
            "multi-row request is '<id>:<row>')."
        )
    now = time.time()
    rows = [
        {
            "request_id": rid,
            "model_name": model or found[rid],
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
