"""``RunWriter``: records one run in the store, buffering params and metrics in memory.

A run row is written as ``running`` when the run starts (so a dead process can be told
apart later); everything else goes in one transaction when the run ends, plus periodic
flushes for long runs. Model and artifact bytes go to the object store at once.
"""

from __future__ import annotations

import atexit
import getpass
import json
import math
import time
import uuid
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import chain, repeat
from typing import Any

import sqlalchemy as sa

from ..errors import MlopsError, ValidationError
from ..store import Store, schema
from ..store.process import this_process
from ..store.unsaved import forget, remember
from .values import decode_param, encode_param, to_float

__all__ = [
    "MODEL_NOT_SAVED_TAG",
    "REGISTER_ERROR_TAG",
    "ChildRun",
    "RunWriter",
    "attach_artifact",
    "default_param_names",
    "get_or_create_experiment",
    "save_unsaved",
    "tag_run",
]

_FLUSH_EVERY_S = 2.0
_MAX_KEY = 250
TERMINAL = ("finished", "failed", "interrupted", "killed")


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"


def get_or_create_experiment(conn: sa.Connection, name: str) -> int:
    """The id of experiment ``name``, creating it inside the caller's write transaction."""
    exp = schema.experiments
    found = conn.execute(sa.select(exp.c.experiment_id).where(exp.c.name == name)).scalar()
    if found is not None:
        return int(found)
    result = conn.execute(exp.insert().values(name=name, created=time.time()))
    return int(result.inserted_primary_key[0])


def _check_key(kind: str, key: str) -> str:
    if not isinstance(key, str) or not key or len(key) > _MAX_KEY:
        raise ValidationError(
            f"A {kind} name must be a non-empty string of at most {_MAX_KEY} characters, "
            f"got {key!r}."
        )
    return key


def _finite_or_none(number: float) -> float | None:
    return None if math.isnan(number) else number


# The params captured from estimators that hold their estimator's defaults, as a JSON
# array (the run card folds them without needing the estimator). Stored as a tag, so a
# store needs no new table; left out of ``Run.tags`` and of listings, which show what the
# user set.
DEFAULT_PARAMS_TAG = "mlops.default_params"
# Why ``%%track --register NAME`` did not register the run's model: kept on the run, and
# drawn by the run card as its error line (html.run_card reads this key).
REGISTER_ERROR_TAG = "mlops.register_error"
# "mlops.model_not_saved.<name>": why a model the cell fitted was not saved (unsafe to load)
MODEL_NOT_SAVED_TAG = "mlops.model_not_saved"


def default_param_names(recorded: str | None) -> list[str]:
    """The param names a ``DEFAULT_PARAMS_TAG`` value lists; a damaged one lists none."""
    try:
        names = json.loads(recorded or "[]")
    except ValueError:
        return []
    return [n for n in names if isinstance(n, str)] if isinstance(names, list) else []


def _summary_json(params: dict[str, Any], metrics: dict[str, Any], tags: dict[str, str]) -> str:
    """The listing document of a run: params, latest metrics, tags, and under ``d`` the
    params left at their estimator's defaults (``runs()`` leaves those out unless they vary)."""
    defaults = default_param_names(tags.get(DEFAULT_PARAMS_TAG))
    tags = {k: v for k, v in tags.items() if k != DEFAULT_PARAMS_TAG}
    return json.dumps({"p": params, "m": metrics, "t": tags, "d": defaults}, default=str)


@dataclass
class ChildRun:
    """A run nested under another (one candidate of a hyperparameter search)."""

    name: str
    params: dict[str, Any]
    metrics: dict[str, float]


@dataclass
class _Artifact:
    name: str
    kind: str
    digest: str
    size: int
    format: str
    meta: dict[str, Any] = field(default_factory=dict)


_UNSAVED: dict[str, tuple[RunWriter, str, dict[str, Any]]] = {}
_AT_EXIT = False


def save_unsaved() -> list[str]:
    """Save the runs that ended while the store could not be written; returns the ids saved
    (runs that still cannot be written stay pending)."""
    saved = []
    for run_id, (writer, status, finish) in list(_UNSAVED.items()):
        try:
            writer.finish(status, **finish)
        except Exception:
            continue
        del _UNSAVED[run_id]
        forget(run_id)
        saved.append(run_id)
    return saved


class RunWriter:
    """Writes one run; create it with ``RunWriter.start``."""

    def __init__(self, store: Store, run_id: str, name: str, experiment: str, start_time: float):
        self.store = store
        self.run_id = run_id
        self.name = name
        self.experiment = experiment
        self.start_time = start_time
        self.status = "running"
        self._params: dict[str, tuple[str | None, float | None, str]] = {}
        self._metric_rows: list[dict[str, Any]] = []
        # curves logged at once (``log_metric_steps``): (run_id, key, value, step, timestamp)
        self._metric_series: list[tuple[str, str, float | None, int, float]] = []
        self._latest: dict[str, dict[str, Any]] = {}
        self._sources: dict[str, str] = {}
        self._tags: dict[str, str] = {}
        self._inputs: dict[tuple[str, str], dict[str, Any]] = {}
        self._artifacts: dict[str, _Artifact] = {}
        self._children: list[ChildRun] = []
        self._lineage: list[dict[str, Any]] = []
        self._lineage_keys: set[tuple[int, int]] = set()
        self._dirty_latest: set[str] = set()
        self._dirty_params: set[str] = set()
        self._last_flush = time.monotonic()

    # -- start -------------------------------------------------------------------------
    @classmethod
    def start(
        cls,
        store: Store,
        name: str,
        experiment: str,
        *,
        parent_run_id: str | None = None,
        source_code: str | None = None,
        notebook: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> RunWriter:
        """Insert the run as ``running`` and return its writer."""
        run_id = uuid.uuid4().hex
        now = time.time()
        host, pid, proc_start = this_process()

        def work(conn: sa.Connection) -> None:
            exp_id = get_or_create_experiment(conn, experiment)
            conn.execute(
                schema.runs.insert().values(
                    run_id=run_id,
                    experiment_id=exp_id,
                    name=name,
                    status="running",
                    parent_run_id=parent_run_id,
                    start_time=now,
                    user=_user(),
                    host=host,
                    pid=pid,
                    proc_start=proc_start,
                    notebook=notebook,
                    source_code=source_code,
                )
            )

        store.write_retrying(work)
        writer = cls(store, run_id, name, experiment, now)
        for key, value in (tags or {}).items():
            writer.set_tag(key, value)
        return writer

    # -- logging ------------------------------------------------------------------------
    def log_param(self, key: str, value: Any) -> None:
        """Record a param; objects become a short repr, the last value logged wins."""
        self._params[_check_key("param", key)] = encode_param(value)
        self._dirty_params.add(key)
        self._maybe_flush()

    def log_params(self, values: dict[str, Any]) -> None:
        """Record several params."""
        for key, value in values.items():
            self.log_param(key, value)

    def log_metric(
        self, key: str, value: Any, step: int | None = None, source: str | None = None
    ) -> None:
        """Record a metric value; without ``step`` it follows the last step of that metric."""
        _check_key("metric", key)
        try:
            number = to_float(value)
        except (TypeError, ValueError):
            raise ValidationError(
                f"Metric {key!r} must be a real number, got {type(value).__name__}: {value!r}."
            ) from None
        prev = self._latest.get(key)
        if step is None:
            step = 0 if prev is None else prev["step"] + 1
        step = int(step)
        now = time.time()
        stored = number if math.isfinite(number) or math.isinf(number) else None
        self._metric_rows.append(
            {"run_id": self.run_id, "key": key, "value": stored, "step": step, "timestamp": now}
        )
        if prev is None or step >= prev["step"]:
            self._latest[key] = {"value": stored, "step": step, "timestamp": now}
            self._dirty_latest.add(key)
        if source is not None:
            self._sources[key] = source
            self._dirty_latest.add(key)
        self._maybe_flush()

    def log_metrics(self, values: dict[str, Any], step: int | None = None) -> None:
        """Record several metrics at one step."""
        for key, value in values.items():
            self.log_metric(key, value, step=step)

    def log_metric_steps(
        self,
        key: str,
        values: Sequence[float],
        timestamps: Sequence[float],
        *,
        start: int = 0,
        source: str | None = None,
    ) -> None:
        """Record a whole curve at once, steps ``start``, ``start + 1``, …: the values a
        loop produced, buffered while it ran (``steps.StepRecorder``). NaN is kept as a
        gap, like ``log_metric`` does."""
        _check_key("metric", key)
        if len(values) != len(timestamps):
            raise ValidationError(
                f"Metric {key!r}: {len(values)} values but {len(timestamps)} timestamps; "
                "give one timestamp per value."
            )
        if not values:
            return
        try:  # plain floats, as the driver binds them (a no-op copy for the recorder's arrays)
            values, timestamps = array("d", values), array("d", timestamps)
        except TypeError as exc:
            raise ValidationError(
                f"Metric {key!r}: every value must be a number ({exc})."
            ) from None
        if any(map(math.isnan, values)):
            values = [None if v != v else v for v in values]
        stop = start + len(values)
        self._metric_series.extend(
            zip(repeat(self.run_id), repeat(key), values, range(start, stop), timestamps)
        )
        prev = self._latest.get(key)
        if prev is None or stop - 1 >= prev["step"]:
            self._latest[key] = {"value": values[-1], "step": stop - 1, "timestamp": timestamps[-1]}
            self._dirty_latest.add(key)
        if source is not None:
            self._sources[key] = source
            self._dirty_latest.add(key)
        self._maybe_flush()

    def has_metric(self, key: str) -> bool:
        """Whether metric ``key`` was logged in this run already (by ``log_metric`` in the
        code: the capture then adds no point of its own to that curve)."""
        return key in self._latest

    def set_tag(self, key: str, value: Any) -> None:
        """Attach a tag (a string label) to the run."""
        self._tags[_check_key("tag", key)] = str(value)

    def log_input(
        self,
        name: str,
        kind: str,
        content_hash: str,
        shape: tuple[int, ...] | None,
        columns: list[tuple[str, str]] | None,
        role: str = "input",
        data_version_id: int | None = None,
    ) -> None:
        """Record a data input (or output) by its fingerprint and, when snapshotted, its version."""
        self._inputs[(role, name)] = {
            "data_version_id": data_version_id,
            "run_id": self.run_id,
            "role": role,
            "name": name,
            "kind": kind,
            "content_hash": content_hash,
            "shape": json.dumps(list(shape)) if shape is not None else None,
            "columns": json.dumps(columns) if columns is not None else None,
        }

    def log_object(
        self, name: str, data: bytes, kind: str, format: str, meta: dict[str, Any] | None = None
    ) -> str:
        """Store bytes in the object store and attach them to the run as artifact ``name``."""
        _check_key("artifact", name)
        digest = self.store.objects.put(data)
        self._artifacts[name] = _Artifact(name, kind, digest, len(data), format, meta or {})
        return digest

    def artifact_meta(self, name: str) -> dict[str, Any]:
        """The metadata artifact ``name`` was logged with (empty if there is none)."""
        found = self._artifacts.get(name)
        return dict(found.meta) if found is not None else {}

    def update_artifact_meta(self, name: str, meta: dict[str, Any]) -> None:
        """Replace the metadata of artifact ``name`` (written with the run's next flush)."""
        found = self._artifacts.get(name)
        if found is not None:
            self._artifacts[name] = _Artifact(
                found.name, found.kind, found.digest, found.size, found.format, dict(meta)
            )

    def add_lineage(self, output_version_id: int, input_version_ids: list[int]) -> None:
        """Record that this run derived an output data version from input versions."""
        for input_id in dict.fromkeys(input_version_ids):
            row_key = (output_version_id, input_id)
            if input_id != output_version_id and row_key not in self._lineage_keys:
                self._lineage_keys.add(row_key)
                self._lineage.append(
                    {
                        "output_version_id": output_version_id,
                        "input_version_id": input_id,
                        "run_id": self.run_id,
                    }
                )

    def add_child(self, child: ChildRun) -> None:
        """Record a nested run (written with this run's final flush)."""
        self._children.append(child)

    @property
    def artifact_names(self) -> list[str]:
        """Names of the artifacts logged so far."""
        return list(self._artifacts)

    # -- flushing ------------------------------------------------------------------------
    def _maybe_flush(self) -> None:
        """A periodic flush shows a long run's progress; when the store cannot be written,
        the values stay buffered for ``finish`` instead of stopping the capture."""
        if time.monotonic() - self._last_flush > _FLUSH_EVERY_S:
            try:
                self.flush()
            except MlopsError:
                pass
            self._last_flush = time.monotonic()

    def _write_buffers(self, conn: sa.Connection) -> None:
        rid = self.run_id
        if self._dirty_params:
            keys = list(self._dirty_params)
            conn.execute(
                schema.params.delete().where(
                    schema.params.c.run_id == rid, schema.params.c.key.in_(keys)
                )
            )
            conn.execute(
                schema.params.insert(),
                [
                    {"run_id": rid, "key": k, "value": v[0], "num": v[1], "vtype": v[2]}
                    for k in keys
                    for v in [self._params[k]]
                ],
            )
        if self._metric_rows:
            conn.execute(schema.metric_history.insert(), self._metric_rows)
        if self._metric_series:
            _insert_series(conn, self._metric_series)
        if self._dirty_latest:
            keys = [k for k in self._dirty_latest if k in self._latest]
            conn.execute(
                schema.latest_metrics.delete().where(
                    schema.latest_metrics.c.run_id == rid, schema.latest_metrics.c.key.in_(keys)
                )
            )
            conn.execute(
                schema.latest_metrics.insert(),
                [
                    {"run_id": rid, "key": k, **self._latest[k], "source": self._sources.get(k)}
                    for k in keys
                ],
            )
        if self._dirty_params or self._dirty_latest:
            conn.execute(
                schema.runs.update()
                .where(schema.runs.c.run_id == rid)
                .values(summary=self._summary())
            )

    def _summary(self) -> str:
        """The run's params, latest metrics and tags as one JSON document (for listings)."""
        return _summary_json(
            {k: decode_param(v[0], v[2]) for k, v in self._params.items()},
            {k: v["value"] for k, v in self._latest.items()},
            self._tags,
        )

    def _clear_buffers(self) -> None:
        self._metric_rows = []
        self._metric_series = []
        self._dirty_latest = set()
        self._dirty_params = set()
        self._last_flush = time.monotonic()

    def flush(self) -> None:
        """Write buffered params and metrics now (the run stays ``running``)."""
        if not (
            self._dirty_params or self._metric_rows or self._metric_series or self._dirty_latest
        ):
            return
        self.store.write_retrying(self._write_buffers)
        self._clear_buffers()

    # -- finish --------------------------------------------------------------------------
    def finish(
        self,
        status: str = "finished",
        *,
        error: str | None = None,
        stdout: str | None = None,
        stderr: str | None = None,
        code_slice: list[dict[str, Any]] | None = None,
        environment: dict[str, Any] | None = None,
        end_time: float | None = None,
    ) -> None:
        """Write everything buffered and close the run with ``status``, in one transaction
        (``end_time`` when it ended earlier than now: a run saved late keeps its duration)."""
        if status not in TERMINAL:
            raise ValidationError(f"Unknown run status {status!r}; use one of {TERMINAL}.")
        end = time.time() if end_time is None else end_time
        values: dict[str, Any] = {
            "status": status,
            "end_time": end,
            "duration_s": end - self.start_time,
            "error": error,
        }
        if stdout is not None:
            values["stdout"] = stdout
        if stderr is not None:
            values["stderr"] = stderr
        if code_slice is not None:
            values["code_slice"] = json.dumps(code_slice)
        if environment is not None:
            values["environment"] = json.dumps(environment, default=str)

        def work(conn: sa.Connection) -> None:
            self._write_buffers(conn)
            rid = self.run_id
            if self._tags:
                conn.execute(schema.tags.delete().where(schema.tags.c.run_id == rid))
                conn.execute(
                    schema.tags.insert(),
                    [{"run_id": rid, "key": k, "value": v} for k, v in self._tags.items()],
                )
            if self._inputs:
                conn.execute(schema.inputs.delete().where(schema.inputs.c.run_id == rid))
                conn.execute(schema.inputs.insert(), list(self._inputs.values()))
            if self._artifacts:
                self._write_artifacts(conn)
            if self._children:
                self._write_children(conn)
            if self._lineage:
                conn.execute(schema.lineage.insert(), self._lineage)
            values["summary"] = self._summary()
            conn.execute(schema.runs.update().where(schema.runs.c.run_id == rid).values(**values))

        self.store.write_retrying(work)
        self._clear_buffers()
        self.status = status

    def finish_later(self, why: str, status: str, **finish: Any) -> None:
        """``finish`` failed (the store cannot be written): keep the run in memory and save it
        with its true outcome when the store can be written again (``save_unsaved``: the next
        tracked run, or this process's exit). The outcome is also kept beside the store, so
        the reaper records it truthfully if this process ends first."""
        end = time.time()
        finish = {**finish, "end_time": end}
        _UNSAVED[self.run_id] = (self, status, finish)
        remember(
            self.run_id,
            {
                "status": status,
                "end_time": end,
                "duration_s": end - self.start_time,
                "error": finish.get("error"),
                "why": why,
            },
        )
        global _AT_EXIT
        if not _AT_EXIT:
            atexit.register(save_unsaved)
            _AT_EXIT = True

    def _write_artifacts(self, conn: sa.Connection) -> None:
        rid = self.run_id
        now = time.time()
        digests = {a.digest: a.size for a in self._artifacts.values()}
        known = set(
            conn.execute(
                sa.select(schema.objects.c.hash).where(schema.objects.c.hash.in_(list(digests)))
            ).scalars()
        )
        new = [{"hash": d, "size": s, "created": now} for d, s in digests.items() if d not in known]
        if new:
            conn.execute(schema.objects.insert(), new)
        conn.execute(schema.artifacts.delete().where(schema.artifacts.c.run_id == rid))
        conn.execute(
            schema.artifacts.insert(),
            [
                {
                    "run_id": rid,
                    "name": a.name,
                    "kind": a.kind,
                    "object_hash": a.digest,
                    "size": a.size,
                    "format": a.format,
                    "meta": json.dumps(a.meta, default=str),
                    "created": now,
                }
                for a in self._artifacts.values()
            ],
        )

    def _write_children(self, conn: sa.Connection) -> None:
        exp_id = get_or_create_experiment(conn, self.experiment)
        now = time.time()
        host, pid, proc_start = this_process()
        run_rows, param_rows, metric_rows, latest_rows = [], [], [], []
        for child in self._children:
            cid = uuid.uuid4().hex
            summary = _summary_json(
                {k: decode_param(*encode_param(v)[::2]) for k, v in child.params.items()},
                {k: _finite_or_none(to_float(v)) for k, v in child.metrics.items()},
                {},
            )
            run_rows.append(
                {
                    "run_id": cid,
                    "experiment_id": exp_id,
                    "name": child.name,
                    "status": "finished",
                    "parent_run_id": self.run_id,
                    "start_time": self.start_time,
                    "end_time": now,
                    "duration_s": None,
                    "user": _user(),
                    "host": host,
                    "pid": pid,
                    "proc_start": proc_start,
                    "summary": summary,
                }
            )
            for key, value in child.params.items():
                text, num, vtype = encode_param(value)
                param_rows.append(
                    {"run_id": cid, "key": key, "value": text, "num": num, "vtype": vtype}
                )
            for key, value in child.metrics.items():
                number = to_float(value)
                stored = number if not math.isnan(number) else None
                row = {"run_id": cid, "key": key, "value": stored, "step": 0, "timestamp": now}
                metric_rows.append(row)
                latest_rows.append({**row, "source": "cv_results_"})
        conn.execute(schema.runs.insert(), run_rows)
        if param_rows:
            conn.execute(schema.params.insert(), param_rows)
        if metric_rows:
            conn.execute(schema.metric_history.insert(), metric_rows)
            conn.execute(schema.latest_metrics.insert(), latest_rows)


_SERIES_COLUMNS = ("run_id", "key", "value", "step", "timestamp")
# 199 rows × 5 columns stays under 999 bound parameters, SQLite's limit before 3.32
_SQLITE_ROWS_PER_INSERT = 199


def _insert_series(conn: sa.Connection, rows: list[tuple[Any, ...]]) -> None:
    """Insert metric rows given as tuples. SQLite: through the driver, many rows per
    ``INSERT … VALUES`` (a 30,000-point curve in tens of milliseconds, without
    SQLAlchemy's per-row parameter processing); other databases: SQLAlchemy's batched
    insert."""
    if conn.dialect.name != "sqlite" or conn.dialect.paramstyle != "qmark":
        conn.execute(
            schema.metric_history.insert(),
            [dict(zip(_SERIES_COLUMNS, r, strict=True)) for r in rows],
        )
        return
    head = f"INSERT INTO {schema.metric_history.name} ({', '.join(_SERIES_COLUMNS)}) VALUES "
    group = "(" + ", ".join("?" * len(_SERIES_COLUMNS)) + ")"
    per = _SQLITE_ROWS_PER_INSERT
    full = head + ", ".join([group] * per)
    for i in range(0, len(rows), per):
        chunk = rows[i : i + per]
        sql = full if len(chunk) == per else head + ", ".join([group] * len(chunk))
        conn.exec_driver_sql(sql, tuple(chain.from_iterable(chunk)))


def attach_artifact(
    store: Store, run_id: str, name: str, data: bytes, *, kind: str = "file", format: str = "bin"
) -> str:
    """Add (or replace) artifact ``name`` on a run that has already finished, such as the
    executed notebook a CI job keeps with the run it produced; returns the object hash."""
    _check_key("artifact", name)
    digest = store.objects.put(data)
    now = time.time()

    def work(conn: sa.Connection) -> None:
        known = conn.execute(
            sa.select(schema.objects.c.hash).where(schema.objects.c.hash == digest)
        ).first()
        if known is None:
            conn.execute(schema.objects.insert().values(hash=digest, size=len(data), created=now))
        a = schema.artifacts
        conn.execute(a.delete().where(a.c.run_id == run_id, a.c.name == name))
        conn.execute(
            a.insert().values(
                run_id=run_id,
                name=name,
                kind=kind,
                object_hash=digest,
                size=len(data),
                format=format,
                meta="{}",
                created=now,
            )
        )

    store.write_retrying(work)
    return digest


def tag_run(store: Store, run_id: str, key: str, value: str) -> None:
    """Set tag ``key`` on a run that has already finished (such as why registering its
    model failed), in its tags and in the summary that listings read."""
    _check_key("tag", key)

    def work(conn: sa.Connection) -> None:
        t = schema.tags
        conn.execute(t.delete().where(t.c.run_id == run_id, t.c.key == key))
        conn.execute(t.insert().values(run_id=run_id, key=key, value=str(value)))
        r = schema.runs
        summary = conn.execute(sa.select(r.c.summary).where(r.c.run_id == run_id)).scalar()
        try:
            doc = json.loads(summary) if summary else {}
        except ValueError:
            doc = {}
        if isinstance(doc, dict):
            doc.setdefault("t", {})[key] = str(value)
            conn.execute(r.update().where(r.c.run_id == run_id).values(summary=json.dumps(doc)))

    store.write_retrying(work)
