"""What the REST API returns: service results shaped as JSON-ready dicts, paged and
aggregated so the sidebar's first paint needs one small response.

Pure functions over the services (no jupyter_server import), so they are tested and
benchmarked without a server.
"""

from __future__ import annotations

import math
import time
from typing import Any

import sqlalchemy as sa

from ..store import Store, schema

__all__ = [
    "deployments_payload",
    "job_payload",
    "jobs_payload",
    "model_payload",
    "models_payload",
    "monitoring_payload",
    "policies_payload",
    "run_payload",
    "runs_payload",
    "summary_payload",
]


def clean(value: Any) -> Any:
    """JSON-safe: NaN/NaT → None, timestamps → epoch seconds, numpy scalars → Python."""
    if value is None:
        return None
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    if hasattr(value, "timestamp") and callable(value.timestamp):
        try:
            return None if value != value else float(value.timestamp())
        except (TypeError, ValueError):
            return None
    if hasattr(value, "item") and callable(value.item):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    try:
        import pandas as pd

        if value is pd.NA or value is pd.NaT:
            return None
    except ImportError:  # pragma: no cover
        pass
    return value


def _records(frame: Any) -> list[dict[str, Any]]:
    return [clean(r) for r in frame.to_dict(orient="records")]


def _page(items: list[Any], offset: int, limit: int) -> dict[str, Any]:
    return {
        "total": len(items),
        "offset": offset,
        "limit": limit,
        "items": items[offset : offset + limit],
    }


def models_payload(store: Store, *, offset: int = 0, limit: int = 50) -> dict[str, Any]:
    """Registered models with their latest version's headline metrics, one page."""
    from ..registry.service import models

    frame = models(store)
    items = _records(frame)
    page = _page(items, offset, limit)
    names = [m["name"] for m in page["items"]]
    metrics = _latest_metrics(store, names)
    for item in page["items"]:
        item["metrics"] = metrics.get(item["name"], {})
    return page


def _latest_metrics(store: Store, names: list[str]) -> dict[str, dict[str, float]]:
    """The metrics of each model's latest version (at most 4 per model)."""
    import json

    if not names or not store.exists:
        return {}
    m, mv = schema.models, schema.model_versions
    latest = (
        sa.select(mv.c.model_id, sa.func.max(mv.c.version).label("version"))
        .where(mv.c.archived.is_(False))
        .group_by(mv.c.model_id)
        .subquery()
    )
    with store.read() as conn:
        rows = conn.execute(
            sa.select(m.c.name, mv.c.metrics)
            .join(mv, mv.c.model_id == m.c.model_id)
            .join(
                latest,
                sa.and_(latest.c.model_id == mv.c.model_id, latest.c.version == mv.c.version),
            )
            .where(m.c.name.in_(names))
        ).all()
    out = {}
    for name, text in rows:
        values = json.loads(text or "{}")
        out[name] = {k: clean(v) for k, v in list(values.items())[:4]}
    return out


def model_payload(store: Store, name: str) -> dict[str, Any]:
    """One model: its versions (aliases, metrics, run) and its latest audit events."""
    from ..registry.service import model_events, model_versions

    versions = model_versions(name, include_archived=True, store=store)
    events = model_events(name, store=store).tail(30)
    return {"name": name, "versions": _records(versions), "events": _records(events)[::-1]}


def deployments_payload(
    store: Store, traffic: dict[str, dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """Active deployments with their live status, request count, p50 latency (from the
    background loop's aggregates) and the drift badge of the version each one serves now
    (a check of another version, e.g. the one served before a restart, is not shown)."""
    from ..serving.deployments import deployments

    frame = deployments(store=store)
    items = _records(frame)
    checks = _last_checks(store, sorted({d["model"] for d in items}), by_version=True)
    auth = _auth(store, [d["deployment_id"] for d in items])
    for item in items:
        stats = (traffic or {}).get(item["deployment_id"], {})
        item["p50_ms"] = stats.get("p50_ms")
        item["drift"] = checks.get((item["model"], item["version"]))
        item["curl"] = _curl(store, item, auth.get(item["deployment_id"], False))
    return items


def _auth(store: Store, ids: list[str]) -> dict[str, bool]:
    """Whether each deployment needs a bearer token (one query for all)."""
    import json

    if not ids:
        return {}
    dep = schema.deployments
    with store.read() as conn:
        rows = conn.execute(
            sa.select(dep.c.deployment_id, dep.c.options).where(dep.c.deployment_id.in_(ids))
        ).all()
    return {r.deployment_id: bool(json.loads(r.options or "{}").get("auth")) for r in rows}


def _curl(store: Store, item: dict[str, Any], auth: bool) -> str:
    """The deployment's "Try it" curl, the same the notebook card shows."""
    from ..serving.deployments import deployment_curl

    version = item.get("version")
    return deployment_curl(
        store,
        item["model"],
        int(version) if version is not None else None,
        f"{item.get('url') or ''}/v2/models/{item['model']}/infer",
        auth=auth,
        reference=item.get("reference"),
    )


def _last_checks(store: Store, names: list[str], *, by_version: bool = False) -> dict[Any, Any]:
    """The latest monitor check of each model (``by_version``: of each model version,
    keyed ``(model, version)``): state, drift share, drifted columns."""
    import json

    if not names or not store.exists:
        return {}
    c = schema.monitor_checks
    keys = [c.c.model_name, c.c.version] if by_version else [c.c.model_name]
    latest = (
        sa.select(*keys, sa.func.max(c.c.check_id).label("id"))
        .where(c.c.model_name.in_(names))
        .group_by(*keys)
        .subquery()
    )
    with store.read() as conn:
        rows = conn.execute(sa.select(c).join(latest, latest.c.id == c.c.check_id)).all()
    out = {}
    for row in rows:
        summary = json.loads(row.summary or "{}")
        refused = summary.get("rejections") or {}
        out[(row.model_name, row.version) if by_version else row.model_name] = {
            "time": row.time,
            "state": row.state,
            "rows": row.rows,
            "drift_share": clean(row.drift_share),
            "drifted": summary.get("drifted", []),
            "version": row.version,
            # requests the deployments refused in the checked window, and why
            "received": refused.get("received"),
            "rejected": refused.get("rejected"),
            "rejection_rate": clean(refused.get("rate")),
            "reasons": refused.get("reasons") or {},
        }
    return out


def monitoring_payload(store: Store) -> list[dict[str, Any]]:
    """Per deployed or monitored model: the last check and the open alerts."""
    from ..monitoring.monitor import alerts

    if not store.exists:
        return []
    with store.read() as conn:
        monitored = set(conn.execute(sa.select(schema.monitors.c.model_name)).scalars())
        deployed = set(
            conn.execute(
                sa.select(schema.deployments.c.model_name).where(
                    schema.deployments.c.status.not_in(["stopped", "failed"])
                )
            ).scalars()
        )
    names = sorted(monitored | deployed)
    checks = _last_checks(store, names)
    frame = alerts(status="open", store=store)
    open_alerts: dict[str, list[dict[str, Any]]] = {}
    for alert in _records(frame):
        open_alerts.setdefault(alert.get("model"), []).append(alert)
    return [
        {
            "model": name,
            "monitored": name in monitored,
            "deployed": name in deployed,
            "last_check": checks.get(name),
            "alerts": open_alerts.get(name, []),
        }
        for name in names
    ]


def policies_payload(store: Store) -> list[dict[str, Any]]:
    """Every retraining policy."""
    from ..retraining.policy import retraining_policies

    return _records(retraining_policies(store))


def job_payload(job: Any) -> dict[str, Any]:
    """One job with its steps and gate lines; ``merged`` when this request joined a job
    already waiting instead of starting one."""
    row = clean(job.to_row())
    row["created"], row["started"], row["ended"] = job.created, job.started, job.ended
    row["triggers"] = clean(job.triggers)
    row["steps"] = clean(job.steps)
    row["gate"] = clean(job.gate.to_dict()) if job.gate is not None else None
    row["holdout"] = clean(job.holdout)
    row["merged"] = bool(getattr(job, "merged", False))
    return row


def jobs_payload(
    store: Store, *, model: str | None = None, offset: int = 0, limit: int = 50
) -> dict[str, Any]:
    """Retraining and CI jobs, newest first, one page (with the total count)."""
    from ..retraining.jobs import RetrainingJob, _from_row, reap_jobs

    jobs = schema.retraining_jobs
    if not store.exists:
        return _page([], offset, limit)
    reap_jobs(store)
    where = [jobs.c.model_name == model] if model else []
    with store.read() as conn:
        total = conn.execute(sa.select(sa.func.count()).select_from(jobs).where(*where)).scalar()
        rows = conn.execute(
            sa.select(jobs)
            .where(*where)
            .order_by(jobs.c.created.desc())
            .offset(offset)
            .limit(limit)
        ).all()
    items: list[RetrainingJob] = [_from_row(r, store) for r in rows]
    return {
        "total": int(total or 0),
        "offset": offset,
        "limit": limit,
        "items": [job_payload(j) for j in items],
    }


def runs_payload(store: Store, *, limit: int = 20) -> list[dict[str, Any]]:
    """The most recent runs (any experiment)."""
    from ..tracking.search import runs

    if not store.exists:
        return []
    frame = runs("*", None, "-start_time", limit, store=store)
    keep = [c for c in frame.columns if not c.startswith(("params.", "tags."))]
    return _records(frame[keep])


def run_payload(store: Store, run_id: str) -> dict[str, Any]:
    """One run: params, metrics, tags, inputs, artifacts (no code or streams)."""
    from ..tracking.record import get_run

    run = get_run(run_id, store)
    return clean(
        {
            "run_id": run.run_id,
            "name": run.name,
            "experiment": run.experiment,
            "status": run.status,
            "start_time": run.start_time,
            "end_time": run.end_time,
            "parent_run_id": run.parent_run_id,
            "params": run.params,
            "metrics": run.metrics,
            "tags": run.tags,
            "inputs": [{k: v for k, v in i.items() if k != "columns"} for i in run.inputs],
            "artifacts": [
                {k: a.get(k) for k in ("name", "kind", "size", "format")} for a in run.artifacts
            ],
            "error": run.error,
        }
    )


def summary_payload(
    store: Store,
    traffic: dict[str, dict[str, Any]] | None = None,
    *,
    models: int = 50,
    jobs: int = 30,
) -> dict[str, Any]:
    """Everything the sidebar shows, in one response: the first ``models`` models and
    ``jobs`` jobs (the sidebar asks for more when the user does)."""
    started = time.perf_counter()
    out = {
        "models": models_payload(store, limit=models),
        "deployments": deployments_payload(store, traffic),
        "monitoring": monitoring_payload(store),
        "policies": policies_payload(store),
        "jobs": jobs_payload(store, limit=jobs),
    }
    out["elapsed_ms"] = round((time.perf_counter() - started) * 1000, 1)
    return out
