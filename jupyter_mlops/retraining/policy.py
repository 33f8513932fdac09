"""Retraining policies: when to retrain a model without a person, and ``run_due_policies``,
the engine the server extension's loop and ``jupyter-mlops scheduler`` call.

A policy fires on monitor alerts (``drift``, ``metric``, any ``alert``), on a new version
of a watched dataset (``new_data``), or on a cron ``schedule``. Each alert, data version
and scheduled time fires once (the policy remembers what it has seen). Triggers that fire
within ``cooldown`` of the last job wait, and then start one job together, so a flapping
alert cannot retrain in a loop.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import sqlalchemy as sa

from ..durations import parse_duration
from ..errors import NotFoundError, ValidationError
from ..registry.references import parse_model_ref
from ..store import Store, current_store, schema
from .jobs import (
    RetrainingJob,
    get_job,
    kick_runners,
    queue_job,
    reap_jobs,
    start_runner,
    trigger,
)
from .service import GateSpec, build_spec

__all__ = [
    "RetrainingPolicy",
    "get_policy",
    "retrain_policy",
    "retraining_policies",
    "run_due_policies",
    "set_policy_enabled",
]

log = logging.getLogger("jupyter_mlops.retraining")

TRIGGERS = {
    "drift": ("feature_drift", "dataset_drift", "prediction_drift"),
    "metric": ("metric",),
    "alert": None,  # any alert the monitor raises but refused traffic (see _NOT_RETRAINED)
    "new_data": (),
    "schedule": (),
}

# requests the deployment refused (bad JSON, wrong columns): the clients' problem, which
# a retrained model would refuse the same way
_NOT_RETRAINED = frozenset({"rejections"})


@dataclass
class RetrainingPolicy:
    """When and how a model is retrained; ``spec`` is the job every trigger starts."""

    model: str
    on: list[str]
    spec: dict[str, Any]
    schedule: str | None = None
    cooldown: float = 6 * 3600.0
    watch: list[str] = field(default_factory=list)
    enabled: bool = True
    created: float = 0.0
    updated: float = 0.0
    state: dict[str, Any] = field(default_factory=dict)
    pending: list[dict[str, Any]] = field(default_factory=list)
    last_job: str | None = None
    last_job_time: float | None = None

    def next_run(self, after: float | None = None) -> float | None:
        """The next scheduled time after ``after`` (default: the last one seen)."""
        if not self.schedule:
            return None
        from croniter import croniter

        start = after if after is not None else self.state.get("schedule", time.time())
        return float(croniter(self.schedule, start).get_next(float))

    def to_row(self) -> dict[str, Any]:
        """The policy as one row of ``retraining_policies()``."""
        nxt = self.next_run()
        return {
            "model": self.model,
            "enabled": self.enabled,
            "on": ", ".join(self.on),
            "schedule": self.schedule,
            "next_run": dt.datetime.fromtimestamp(nxt, dt.UTC) if nxt else None,
            "watch": ", ".join(self.watch),
            "gate": "; ".join(self.spec.get("gate") or []),
            "promote": self.spec.get("promote"),
            "cooldown_s": self.cooldown,
            "pending": len(self.pending),
            "last_job": self.last_job,
        }

    def _repr_html_(self) -> str:
        from ..html import _STYLE, _duration, _table

        shown = self.to_row() | {"cooldown_s": _duration(self.cooldown)}
        rows = [(k.removesuffix("_s"), "" if v is None else str(v)) for k, v in shown.items()]
        return _STYLE + f"<div class=mlops-card>{_table('retraining policy', rows, limit=20)}</div>"

    def __repr__(self) -> str:
        state = "" if self.enabled else " disabled"
        return f"<RetrainingPolicy {self.model} on={self.on}{state}>"


def _config(policy: RetrainingPolicy) -> str:
    keep = {
        k: v
        for k, v in asdict(policy).items()
        if k in ("on", "spec", "schedule", "cooldown", "watch")
    }
    return json.dumps(keep, default=str)


def _from_row(row: Any) -> RetrainingPolicy:
    return RetrainingPolicy(
        model=row.model_name,
        enabled=bool(row.enabled),
        created=row.created,
        updated=row.updated,
        state=json.loads(row.state or "{}"),
        pending=json.loads(row.pending or "[]"),
        last_job=row.last_job,
        last_job_time=row.last_job_time,
        **json.loads(row.config),
    )


def _latest_versions(conn: sa.Connection, names: list[str]) -> dict[str, int]:
    dv, ds = schema.data_versions, schema.datasets
    rows = conn.execute(
        sa.select(ds.c.name, sa.func.max(dv.c.version))
        .join(dv, dv.c.dataset_id == ds.c.dataset_id)
        .where(ds.c.name.in_(names))
        .group_by(ds.c.name)
    ).all()
    return {name: int(version) for name, version in rows}


def _last_alert(conn: sa.Connection, model: str) -> int:
    a = schema.alerts
    return int(
        conn.execute(sa.select(sa.func.max(a.c.alert_id)).where(a.c.model_name == model)).scalar()
        or 0
    )


def _watch(spec: dict[str, Any], model: str, store: Store) -> list[str]:
    """Datasets whose new versions should retrain: those the job's data names, else the
    inputs of the run that trained the model."""
    from ..data.references import parse_data_ref
    from ..data.versions import refs_for
    from ..registry.service import get_model_version

    names = [parse_data_ref(v).name for v in (spec.get("data") or {}).values()]
    if any(names):
        return sorted({n for n in names if n})
    try:
        run = get_model_version(f"{model}@latest", store).run
    except NotFoundError:
        return []
    ids = [
        i["data_version_id"]
        for i in run.inputs
        if i["role"] == "input" and i.get("data_version_id")
    ]
    return sorted({ref.rsplit("@", 1)[0] for ref in refs_for(ids, store).values()})


def retrain_policy(
    model: str,
    *,
    on: list[str] | str | None = None,
    schedule: str | None = None,
    data: Mapping[str, Any] | None = None,
    notebook: str | None = None,
    parameters: Mapping[str, Any] | None = None,
    gate: GateSpec = None,
    holdout: Any = None,
    target: str | None = None,
    promote: str = "production",
    cooldown: str | float = "6h",
    watch: list[str] | None = None,
    enabled: bool = True,
    store: Store | None = None,
) -> RetrainingPolicy:
    """Retrain ``model`` automatically ``on`` drift alerts, metric alerts, any ``alert``,
    ``new_data`` (a new version of a watched dataset) or a cron ``schedule``; each job runs
    as ``mlops.retrain`` would with the same arguments. Replaces the model's policy."""
    store = store or current_store()
    name = parse_model_ref(model).name
    if on is None:  # a schedule alone, or drift alerts
        on = ["schedule"] if schedule else ["drift"]
    kinds = [on] if isinstance(on, str) else list(on)
    if schedule and "schedule" not in kinds:
        kinds.append("schedule")
    unknown = [k for k in kinds if k not in TRIGGERS]
    if unknown or not kinds:
        raise ValidationError(
            f"Unknown trigger(s) {unknown}; on= takes {', '.join(TRIGGERS)}."
            if unknown
            else "on= names no trigger."
        )
    if "schedule" in kinds:
        from croniter import croniter

        if not schedule or not croniter.is_valid(schedule):
            raise ValidationError(
                f"schedule={schedule!r} is not a cron expression; write e.g. '0 3 * * *' "
                "(minute hour day month weekday: every day at 03:00)."
            )
    seconds = (
        float(cooldown)
        if isinstance(cooldown, int | float) and cooldown >= 0
        else parse_duration(cooldown, "cooldown")
    )
    spec = build_spec(
        name,
        data=data,
        notebook=notebook,
        parameters=parameters,
        gate=gate,
        holdout=holdout,
        target=target,
        promote=promote,
        store=store,
    )
    watched = list(watch) if watch is not None else _watch(spec, name, store)
    if "new_data" in kinds and not watched:
        raise ValidationError("on='new_data' needs datasets to watch: pass watch=['name'].")
    now = time.time()
    policy = RetrainingPolicy(name, kinds, spec, schedule, seconds, watched, enabled, now, now)
    p = schema.retraining_policies

    def work(conn: sa.Connection) -> None:
        old = conn.execute(sa.select(p).where(p.c.model_name == name)).first()
        state = {
            "alert_id": _last_alert(conn, name),
            "data": _latest_versions(conn, watched),
            "schedule": now,
        }
        values = {
            "config": _config(policy),
            "enabled": enabled,
            "updated": now,
            "state": json.dumps(state),
            "pending": "[]",
        }
        if old is None:
            conn.execute(p.insert().values(model_name=name, created=now, **values))
        else:
            conn.execute(p.update().where(p.c.model_name == name).values(**values))

    store.write_retrying(work)
    return get_policy(name, store)


def get_policy(model: str, store: Store | None = None) -> RetrainingPolicy:
    """The retraining policy of ``model``."""
    store = store or current_store()
    name = parse_model_ref(model).name
    p = schema.retraining_policies
    row = None
    if store.exists:
        with store.read() as conn:
            row = conn.execute(sa.select(p).where(p.c.model_name == name)).first()
    if row is None:
        raise NotFoundError(
            f"{name} has no retraining policy; mlops.retrain_policy({name!r}, ...) sets one."
        )
    return _from_row(row)


def set_policy_enabled(model: str, enabled: bool, store: Store | None = None) -> RetrainingPolicy:
    """Pause or resume a policy (what it has seen is kept)."""
    store = store or current_store()
    policy = get_policy(model, store)
    p = schema.retraining_policies
    store.write_retrying(
        lambda conn: conn.execute(
            p.update()
            .where(p.c.model_name == policy.model)
            .values(enabled=enabled, updated=time.time())
        )
    )
    return get_policy(policy.model, store)


def retraining_policies(store: Store | None = None) -> Any:
    """Every policy as a DataFrame."""
    import pandas as pd

    store = store or current_store()
    rows = []
    if store.exists:
        with store.read() as conn:
            rows = [
                _from_row(r).to_row() for r in conn.execute(sa.select(schema.retraining_policies))
            ]
    return pd.DataFrame(rows, columns=list(RetrainingPolicy("", [], {}).to_row()))


def _fired(
    conn: sa.Connection, policy: RetrainingPolicy, now: float
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The triggers that fired since the policy last looked, and its new state."""
    state = dict(policy.state)
    fired: list[dict[str, Any]] = []
    alert_kinds = [TRIGGERS[k] for k in policy.on if k in ("drift", "metric", "alert")]
    if alert_kinds:
        a = schema.alerts
        rows = conn.execute(
            sa.select(a.c.alert_id, a.c.kind, a.c.subject, a.c.message)
            .where(a.c.model_name == policy.model, a.c.alert_id > int(state.get("alert_id", 0)))
            .order_by(a.c.alert_id)
        ).all()
        for r in rows:
            if any(
                (kinds is None and r.kind not in _NOT_RETRAINED) or (kinds and r.kind in kinds)
                for kinds in alert_kinds
            ):
                fired.append(
                    trigger("alert", f"#{r.alert_id} {r.kind}: {r.message}", alert_id=r.alert_id)
                )
        if rows:
            state["alert_id"] = rows[-1].alert_id
    if "new_data" in policy.on and policy.watch:
        seen = dict(state.get("data") or {})
        for name, version in sorted(_latest_versions(conn, policy.watch).items()):
            if version > int(seen.get(name, 0)):
                fired.append(
                    trigger("new_data", f"{name}@v{version}", dataset=name, version=version)
                )
                seen[name] = version
        state["data"] = seen
    if "schedule" in policy.on and policy.schedule:
        due = policy.next_run(float(state.get("schedule", policy.created)))
        if due is not None and due <= now:
            when = dt.datetime.fromtimestamp(due, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
            fired.append(trigger("schedule", when, due=due))
            state["schedule"] = now  # missed runs while nothing was looking fire once
    return fired, state


def _cooling(policy: RetrainingPolicy, now: float) -> bool:
    return policy.last_job_time is not None and now - policy.last_job_time < policy.cooldown


def _worth_writing(store: Store, name: str, now: float) -> bool:
    """Whether a policy has a new trigger, or waiting triggers whose cooldown is over
    (read only; the write transaction decides again, so concurrent callers agree)."""
    p = schema.retraining_policies
    with store.read() as conn:
        row = conn.execute(sa.select(p).where(p.c.model_name == name)).first()
        if row is None or not row.enabled:
            return False
        policy = _from_row(row)
        fired, _ = _fired(conn, policy, now)
    return bool(fired) or (bool(policy.pending) and not _cooling(policy, now))


def run_due_policies(
    *, now: float | None = None, store: Store | None = None, start: bool = True
) -> list[RetrainingJob]:
    """Fire every enabled policy whose triggers are due at ``now`` (default: the clock)
    and return the jobs started or merged into; also marks jobs whose process died and
    restarts runners for waiting jobs. Safe to call from several processes at once."""
    store = store or current_store()
    if not store.exists:
        return []
    now = time.time() if now is None else now
    reap_jobs(store)
    p = schema.retraining_policies
    with store.read() as conn:
        names = list(conn.execute(sa.select(p.c.model_name).where(p.c.enabled.is_(True))).scalars())
    started: list[RetrainingJob] = []
    just_started: set[str] = set()
    for name in names:
        if not _worth_writing(store, name, now):
            continue  # most rounds: nothing fired, nothing waiting; no write lock taken

        def work(conn: sa.Connection, name: str = name) -> tuple[str, bool, bool] | None:
            # One transaction: what the policy saw moves forward only with the job queued
            # (the row locked on a database server; SQLite's write lock covers it).
            row = conn.execute(sa.select(p).where(p.c.model_name == name).with_for_update()).first()
            if row is None or not row.enabled:
                return None
            policy = _from_row(row)
            fired, state = _fired(conn, policy, now)
            pending = policy.pending + fired
            cooling = _cooling(policy, now)
            values: dict[str, Any] = {
                "state": json.dumps(state),
                "pending": json.dumps(pending if cooling else []),
            }
            queued = None
            if pending and not cooling:
                queued = queue_job(conn, policy.model, policy.spec, pending)
                values["last_job_time"] = now
                values["last_job"] = queued[0]
            conn.execute(p.update().where(p.c.model_name == name).values(**values))
            return queued

        try:
            queued = store.write_retrying(work)
        except Exception as exc:  # one policy's trouble must not stop the others
            log.warning("jupyter_mlops: retraining policy of %s: %s", name, exc)
            continue
        if queued is None:
            continue
        job_id, merged, running = queued
        if start and not running:
            start_runner(name, store)
            just_started.add(name)
        job = get_job(job_id, store)
        job.merged = merged
        started.append(job)
    if start:
        kick_runners(store, skip=just_started)
    return started
