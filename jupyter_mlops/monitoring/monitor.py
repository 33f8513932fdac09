"""Monitors: what "healthy" means for a deployed model, evaluated on demand
(``mlops.check``) or on a schedule (``run_due_monitors``, driven by the server extension).

A check compares the current window of the inference log with the reference (by default
the training data version recorded on the model version), scores performance where
feedback labels exist, counts the requests the deployments refused (the rejection rate
and its reasons, see ``rejections``), evaluates the metric checks (the run query
language, e.g. ``"accuracy >= 0.85"``), and turns every breach into an alert: stored,
deduplicated while the condition holds, resolved when it clears, sent to a callback
and/or a webhook.
"""

from __future__ import annotations

import json
import re
import time
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import sqlalchemy as sa

from ..durations import parse_duration
from ..errors import NotFoundError, ValidationError
from ..registry.references import parse_model_ref
from ..store import Store, current_store, schema
from ..tracking.expressions import Check, CheckResult
from .drift import DriftReport, Thresholds, as_datetime, drift_report
from .performance import performance
from .rejections import MIN_REQUESTS, Rejections, rejection_stats

__all__ = [
    "CheckOutcome",
    "Evaluation",
    "MonitorConfig",
    "alerts",
    "check",
    "evaluate",
    "get_monitor",
    "run_due_monitors",
    "set_monitor",
]

_CALLBACKS: dict[str, Callable[[dict[str, Any]], Any]] = {}
_CLASSIFICATION = ("accuracy", "precision", "recall", "f1", "roc_auc")
_REGRESSION = ("mae", "rmse", "r2")


@dataclass
class MonitorConfig:
    """A model's monitor: the window, the rules and where alerts go."""

    reference: str  # the model reference monitored, e.g. churn@production
    window: str | int = "1h"  # a duration, or the last N predicted rows
    min_rows: int = 500
    thresholds: dict[str, float] = field(default_factory=dict)
    checks: list[str] = field(default_factory=list)
    data: str | None = None  # a data reference for the reference data
    webhook: str | None = None
    every: str = "15m"

    def validate(self) -> MonitorConfig:
        """Check every field now, so a bad monitor fails when set, not at 3 a.m."""
        if isinstance(self.window, bool) or (isinstance(self.window, int) and self.window < 1):
            raise ValidationError("window is a duration such as '1h' or a row count >= 1.")
        if not isinstance(self.window, int):
            parse_duration(self.window, "window")
        if not isinstance(self.min_rows, int) or self.min_rows < 1:
            raise ValidationError("min_rows must be a whole number >= 1.")
        Thresholds.of(self.thresholds)
        for text in self.checks:
            Check(text)
        parse_duration(self.every, "every")
        if self.webhook is not None and not re.match(r"^https?://", self.webhook):
            raise ValidationError("webhook must be an http:// or https:// URL.")
        return self

    def effective_thresholds(self) -> dict[str, float]:
        """Every drift threshold a check applies: the ones set, the defaults for the rest."""
        return asdict(Thresholds.of(self.thresholds))

    def _repr_html_(self) -> str:
        """What was set, as a card: window, checks, thresholds, reference, where alerts go."""
        from ..html import monitor_config_card

        callback = _CALLBACKS.get(parse_model_ref(self.reference).name)
        name = getattr(callback, "__qualname__", None) or (repr(callback) if callback else None)
        return monitor_config_card(self, name)

    def __repr__(self) -> str:
        checks = ", ".join(self.checks) or "no metric checks"
        set_ = ", ".join(f"{k}={v:g}" for k, v in self.thresholds.items()) or "default thresholds"
        window = f"last {self.window} rows" if isinstance(self.window, int) else self.window
        alerts = f", webhook {self.webhook}" if self.webhook else ""
        return (
            f"<Monitor {self.reference}: window {window} (>= {self.min_rows} rows); {checks}; "
            f"{set_}; reference {self.data or 'training data'}; every {self.every}{alerts}>"
        )


@dataclass
class CheckOutcome:
    """What one check found: its state, the drift report, performance, the metric checks
    and the alerts it opened or resolved."""

    model: str
    version: int
    state: str  # ok | alert | not enough data
    rows: int
    window_start: float | None
    window_end: float
    report: DriftReport | None
    performance: dict[str, float]
    training_metrics: dict[str, float]
    checks: list[CheckResult]
    opened: list[dict[str, Any]]
    resolved: list[dict[str, Any]]
    open_alerts: list[dict[str, Any]]
    # requests the deployments received and refused in the window (None for a given frame)
    rejections: Rejections | None = None

    @property
    def rejection_rate(self) -> float | None:
        """The share of requests received in the window that were refused."""
        return self.rejections.rate if self.rejections is not None else None

    # why a metric has no value ({"roc_auc": "... has no predict_proba"}), for skipped checks
    unavailable: dict[str, str] = field(default_factory=dict)

    def _repr_html_(self) -> str:
        from ..html import check_outcome_card

        return check_outcome_card(self)

    def __repr__(self) -> str:
        refused = ""
        if self.rejections is not None and self.rejections.rejected:
            refused = f", {self.rejections.line()}"
        return (
            f"<Check {self.model}@{self.version}: {self.state}, {self.rows} rows{refused}, "
            f"{len(self.open_alerts)} open alerts>"
        )


def set_monitor(
    model: str,
    *,
    window: str | int = "1h",
    min_rows: int = 500,
    thresholds: dict[str, float] | None = None,
    checks: list[str] | None = None,
    reference: str | None = None,
    webhook: str | None = None,
    callback: Callable[[dict[str, Any]], Any] | None = None,
    every: str = "15m",
    store: Store | None = None,
) -> MonitorConfig:
    """Define (or replace) the monitor of ``model`` (``churn@production``; a bare name
    monitors its production alias, else its latest version)."""
    store = store or current_store()
    ref = _monitored_ref(model, store)
    config = MonitorConfig(
        reference=ref,
        window=window,
        min_rows=min_rows,
        thresholds=dict(thresholds or {}),
        checks=list(checks or []),
        data=reference,
        webhook=webhook,
        every=every,
    ).validate()
    name = parse_model_ref(ref).name
    now = time.time()
    values = {"reference": ref, "config": json.dumps(asdict(config)), "updated": now}
    mon = schema.monitors

    def work(conn: sa.Connection) -> None:
        exists = conn.execute(sa.select(mon.c.model_name).where(mon.c.model_name == name)).first()
        if exists:
            conn.execute(mon.update().where(mon.c.model_name == name).values(**values))
        else:
            conn.execute(mon.insert().values(model_name=name, enabled=True, created=now, **values))

    store.write_retrying(work)
    if callback is not None:
        _CALLBACKS[name] = callback
    else:
        _CALLBACKS.pop(name, None)
    return config


def _monitored_ref(model: str, store: Store) -> str:
    from ..registry.service import get_model_version

    parsed = parse_model_ref(model)
    if "@" in model:
        get_model_version(model, store)  # it must exist
        return model
    try:
        get_model_version(f"{parsed.name}@production", store)
        return f"{parsed.name}@production"
    except NotFoundError:
        get_model_version(parsed.name, store)
        return f"{parsed.name}@latest"


def get_monitor(model: str, store: Store | None = None) -> MonitorConfig:
    """The monitor of ``model``, or the defaults when none was set."""
    store = store or current_store()
    name = parse_model_ref(model).name
    row = None
    if store.exists:
        mon = schema.monitors
        with store.read() as conn:
            row = conn.execute(sa.select(mon).where(mon.c.model_name == name)).first()
    if row is None:
        return MonitorConfig(reference=_monitored_ref(model, store))
    return MonitorConfig(**json.loads(row.config))


def _given_current(value: Any, mv: Any, store: Store) -> Any:
    """A frame (or data reference) to judge instead of the log; without a ``predict``
    column the model scores it, so prediction drift is still reported."""
    import pandas as pd

    from ..data.versions import load_data

    frame = load_data(value, store) if isinstance(value, str) else value
    if not isinstance(frame, pd.DataFrame):
        raise ValidationError(
            f"current must be a DataFrame or a data reference, got {type(frame).__name__}."
        )
    frame = frame.reset_index(drop=True)
    if "predict" not in frame.columns:
        features = [i["name"] for i in mv.signature.get("inputs", [])]
        if all(c in frame.columns for c in features):
            try:
                frame = frame.assign(predict=_served_model(mv).predict(frame[features]))
            except Exception:
                pass
    if "request_id" not in frame.columns:
        frame = frame.assign(request_id=[f"given:{i}" for i in range(len(frame))])
    return frame


def _fitted_on(mv: Any) -> str | None:
    """The name of the frame the model's ``fit`` call was given (``X_train``), when the
    run recorded it."""
    try:
        artifact = next((a for a in mv.run.models if a["name"] == mv.artifact), {})
    except Exception:  # a version without its run (a hand-made one, or a pruned store)
        return None
    return (artifact.get("fit") or {}).get("x")


def _reference_frame(config: MonitorConfig, mv: Any, store: Store) -> tuple[Any, str]:
    """The reference data and its reference: the monitor's, or the training data version
    recorded on the model version that holds the model's input columns: the frame given
    to ``fit`` first (a cell that splits records the test split too, with the same
    columns), then frames with exactly the input columns (a run records its features and
    its target apart; the features are the reference)."""
    import pandas as pd

    from ..data.versions import load_data

    if config.data is not None:
        return load_data(config.data, store), config.data
    features = [i["name"] for i in mv.signature.get("inputs", [])]
    recorded = [d for d in mv.data if d.get("ref")]
    fitted = _fitted_on(mv) if len(recorded) > 1 else None
    recorded.sort(
        key=lambda d: (
            d.get("name") != fitted,
            list(d.get("shape") or [])[1:] != [len(features)],
        )
    )
    for item in recorded:
        frame = load_data(item["ref"], store)
        if isinstance(frame, pd.DataFrame) and all(c in frame.columns for c in features):
            return frame, item["ref"]
    raise NotFoundError(
        f"{mv.ref} has no recorded training data with its input columns {features[:10]}; "
        "give the reference data with mlops.set_monitor(..., reference='name@vN')."
    )


def _served_model(mv: Any) -> Any:
    from ..serving.model import cached_model

    return cached_model(mv).model


def _current(
    name: str, config: MonitorConfig, now: float, store: Store, max_rows: int | None = None
) -> tuple[Any, float | None, int]:
    """The window's predictions (only the newest ``max_rows`` read when given), its start,
    and how many predictions the whole window holds."""
    from ..serving.inference_log import logged_rows, online_table

    if isinstance(config.window, int):
        last = min(config.window, max_rows or config.window)
        table = online_table(name, last=last, store=store)
        frame = table.to_pandas() if table.num_rows else None
        start = float(frame["time"].min()) if frame is not None else None
        total = min(config.window, logged_rows(name, None, store=store))
        return frame, start, total
    start = now - parse_duration(config.window, "window")
    table = online_table(name, since=start, last=max_rows, store=store)
    frame = table.to_pandas() if table.num_rows else None
    if frame is not None:
        frame = frame[frame["time"] <= now].reset_index(drop=True)
    if max_rows is None:
        total = 0 if frame is None else len(frame)
    else:
        total = logged_rows(name, start, store=store)
    return frame, start, total


@dataclass
class Evaluation:
    """A monitor evaluated without side effects: the outcome (no alerts synced yet), the
    breached conditions, and the frames compared (features plus ``prediction``)."""

    outcome: CheckOutcome
    conditions: dict[tuple[str, str], tuple[str, dict[str, Any]]]
    reference: Any
    current: Any
    config: MonitorConfig
    reference_label: str | None
    total_rows: int


def evaluate(
    model: str,
    *,
    now: float | None = None,
    window: str | int | None = None,
    max_rows: int | None = None,
    current: Any = None,
    store: Store | None = None,
) -> Evaluation:
    """Compute what a check would find (drift, performance, checks, breached conditions)
    without recording anything; ``window`` overrides the monitor's, ``max_rows`` keeps
    only the newest rows of the window (the panel's bound on work)."""
    from ..registry.service import get_model_version
    from ..serving.inference_log import feedback

    store = store or current_store()
    now = time.time() if now is None else now
    config = get_monitor(model, store)
    if window is not None:
        config = MonitorConfig(**{**asdict(config), "window": window}).validate()
    mv = get_model_version(config.reference, store)
    name = mv.name
    features = [i["name"] for i in mv.signature.get("inputs", [])]
    if current is None:
        current, start, total = _current(name, config, now, store, max_rows)
        # a row-count window with no rows yet: the requests refused in the last hour
        refused = rejection_stats(name, since=start, until=now, store=store)
    else:  # a given frame or data version instead of the inference log
        current, start = _given_current(current, mv, store), None
        total = len(current)
        refused = None
    if current is not None and max_rows is not None and len(current) > max_rows:
        current = current.iloc[len(current) - max_rows :].reset_index(drop=True)
    rows = 0 if current is None else len(current)
    outcome = CheckOutcome(
        model=name,
        version=mv.version,
        state="not enough data",
        rows=rows,
        window_start=start,
        window_end=now,
        report=None,
        performance={},
        training_metrics=dict(mv.metrics),
        checks=[],
        opened=[],
        resolved=[],
        open_alerts=[],
    )
    outcome.rejections = refused
    label = config.data
    evaluation = Evaluation(outcome, {}, None, current, config, label, total)
    # refused traffic alerts even when too little was served to judge drift
    rejected = _rejection_conditions(refused, Thresholds.of(config.thresholds).rejection_rate)
    evaluation.conditions = dict(rejected)
    if rejected:
        outcome.state = "alert"
    if current is None or rows < config.min_rows:
        return evaluation
    reference, evaluation.reference_label = _reference_frame(config, mv, store)
    ref_features = reference[[c for c in features if c in reference.columns]]
    renamed = {f"input.{c}": c for c in features if f"input.{c}" in current.columns}
    cur_features = current.rename(columns=renamed)[
        [c for c in features if c in current.columns or c in renamed.values()]
    ]
    ref_frame = _typed(ref_features, mv.signature)
    cur_frame = _typed(cur_features, mv.signature)
    if "predict" in current.columns:
        try:
            ref_frame["prediction"] = _served_model(mv).predict(ref_features)
            cur_frame["prediction"] = current["predict"].to_numpy()
        except Exception:  # prediction drift is left out when the model cannot score
            ref_frame = ref_frame.drop(columns=["prediction"], errors="ignore")
            cur_frame = cur_frame.drop(columns=["prediction"], errors="ignore")
    report = drift_report(
        ref_frame,
        cur_frame,
        prediction="prediction" if "prediction" in cur_frame else None,
        thresholds=config.thresholds,
        min_rows=min(config.min_rows, 30),
    )
    outcome.report = report
    labels = feedback(name, store=store)
    classes = (mv.signature.get("outputs") or [{}])[0].get("classes")
    joined = None
    if len(labels) and "predict" in current.columns:
        joined = current.merge(labels[["request_id", "label"]], on="request_id", how="inner")
    other = _REGRESSION if classes else _CLASSIFICATION
    kind = "a classifier" if classes else "not a classifier"
    outcome.unavailable.update({m: f"the model is {kind}" for m in other})
    if joined is None or not len(joined):
        why = (
            "no prediction in the window has a feedback label yet (mlops.log_feedback)"
            if len(labels)
            else "no feedback labels yet (mlops.log_feedback)"
        )
        for metric in _CLASSIFICATION if classes else _REGRESSION:
            outcome.unavailable[metric] = why
    else:
        proba = None
        if classes:
            proba, why = _probabilities(joined, mv, features, store)
            if why:
                outcome.unavailable["roc_auc"] = why
        outcome.performance = performance(
            joined["predict"].to_numpy(),
            joined["label"].to_numpy(),
            classifier=bool(classes),
            proba=proba,
            classes=classes,
        )
        if classes and proba is not None and "roc_auc" not in outcome.performance:
            outcome.unavailable["roc_auc"] = (
                "ROC AUC needs the labelled rows to hold every class of the model "
                f"({', '.join(map(str, classes))})"
            )
        outcome.performance["labelled_rows"] = float(len(joined))
    values: dict[str, Any] = {
        **{k: None for k in (*_CLASSIFICATION, *_REGRESSION)},
        **outcome.performance,
        "drift_share": report.share,
        "drifted_features": len(report.drifted),
        "rows": rows,
        "rejection_rate": outcome.rejection_rate,
        "rejected": refused.rejected if refused is not None else None,
    }
    outcome.checks = [
        _explained(Check(text)(values, skip_missing=True), outcome.unavailable)
        for text in config.checks
    ]
    evaluation.conditions = {
        **rejected,
        **_conditions(report, outcome.checks, outcome.performance),
    }
    outcome.state = "alert" if evaluation.conditions else "ok"
    evaluation.reference, evaluation.current = ref_frame, cur_frame
    return evaluation


def _typed(frame: Any, signature: dict[str, Any]) -> Any:
    """The frame's columns read as the signature's dtypes where the log keeps them as
    JSON values: a datetime column arrives as ISO text and is compared as datetimes."""
    out = frame.copy()
    for item in signature.get("inputs") or []:
        name, dtype = item.get("name"), str(item.get("dtype", ""))
        if name in out.columns and dtype.startswith("datetime64"):
            out[name] = as_datetime(out[name])
    return out


def _explained(result: CheckResult, unavailable: dict[str, str]) -> CheckResult:
    """A skipped check with the reason its missing value could not be computed."""
    if not result.skipped:
        return result
    reasons = [
        f"{k}: {unavailable[k]}" for k, v in result.values.items() if v is None and k in unavailable
    ]
    return replace(result, reason="; ".join(reasons)) if reasons else result


def _probabilities(joined: Any, mv: Any, features: list[str], store: Store) -> tuple[Any, str]:
    """The class probabilities of the labelled rows: as logged, else scored again from
    the logged inputs by the version that served each row (logs written before the
    probabilities were logged). Returns (rows x classes array or None, why not)."""
    import numpy as np
    import pandas as pd

    from ..registry.service import get_model_version
    from ..serving.model import cached_model

    n = len(joined)
    logged = joined["predict_proba"] if "predict_proba" in joined.columns else pd.Series([None] * n)
    have = logged.map(lambda p: p is not None and not (isinstance(p, float) and p != p))
    if bool(have.all()):
        return np.vstack([np.asarray(p, dtype=float) for p in logged]), ""
    renamed = {f"input.{c}": c for c in features if f"input.{c}" in joined.columns}
    inputs = joined.rename(columns=renamed)
    absent = [c for c in features if c not in inputs.columns]
    if absent:
        return None, (
            "the logged predictions have no probabilities and their inputs "
            f"{absent[:5]} were not logged, so they cannot be scored again"
        )
    rows: list[Any] = [
        np.asarray(p, dtype=float) if ok else None for p, ok in zip(logged, have, strict=True)
    ]
    versions = joined["version"] if "version" in joined.columns else pd.Series([mv.version] * n)
    need = np.flatnonzero(~have.to_numpy())
    for version in sorted(set(versions.iloc[need].tolist())):
        idx = need[versions.iloc[need].to_numpy() == version]
        try:
            served = cached_model(get_model_version(f"{mv.name}@{int(version)}", store))
        except Exception as exc:
            return None, f"{mv.name}@{version}, which served some rows, does not load: {exc}"
        if not served.has_proba:
            return None, f"{mv.name}@{version} has no predict_proba"
        try:
            frame = served.schema.check_frame(inputs.iloc[idx][features].reset_index(drop=True))
            proba = served.predict(frame, ("predict_proba",))["predict_proba"]
        except Exception as exc:
            return None, f"the logged inputs could not be scored again: {exc}"
        for i, p in zip(idx, np.asarray(proba, dtype=float), strict=True):
            rows[i] = p
    return np.vstack(rows), ""


def check(
    model: str, *, current: Any = None, now: float | None = None, store: Store | None = None
) -> CheckOutcome:
    """Evaluate the monitor of ``model`` now: drift, performance, data quality and metric
    checks over the current window (or over ``current``, a frame or data version); open,
    update or resolve alerts; record the check."""
    store = store or current_store()
    now = time.time() if now is None else now
    ev = evaluate(model, now=now, current=current, store=store)
    outcome = ev.outcome
    if outcome.report is not None or outcome.rejections is not None:
        # enough data: alerts follow the conditions found; too little to judge drift: only
        # the rejection alert does (the others stay as they were)
        outcome.opened, outcome.resolved = _sync_alerts(
            store,
            outcome.model,
            ev.conditions,
            outcome.window_start,
            now,
            ev.reference_label,
            ev.config,
            kinds=None if outcome.report is not None else {"rejections"},
        )
    _record(store, outcome, outcome.report)
    outcome.open_alerts = _open_alerts(store, outcome.model)
    return outcome


def _rejection_conditions(
    refused: Rejections | None, threshold: float
) -> dict[tuple[str, str], tuple[str, dict[str, Any]]]:
    """The rejection alert: at least ``threshold`` of the requests received refused, over
    at least ``MIN_REQUESTS`` requests."""
    if refused is None or not refused.rejected or refused.received < MIN_REQUESTS:
        return {}
    rate = refused.rate or 0.0
    if rate < threshold:
        return {}
    return {
        ("rejections", "*"): (
            f"{refused.line()}; the threshold is {threshold:.1%}",
            {**refused.to_dict(), "threshold": threshold},
        )
    }


def _conditions(
    report: DriftReport, checks: list[CheckResult], perf: dict[str, float]
) -> dict[tuple[str, str], tuple[str, dict[str, Any]]]:
    """{(kind, subject): (message, values)} for every breached condition."""
    found: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}
    for c in report.columns:
        if c.drifted:
            found[("feature_drift", c.column)] = (
                f"{c.column} drifted ({c.test}: PSI {c.score:.3f}, p {c.pvalue:.2g})",
                {"psi": c.score, "pvalue": c.pvalue, **c.stats},
            )
        quality = [n for n in c.notes if n.startswith(("missing values", "every value"))]
        if c.out_of_range >= 0.05:
            quality.append(f"{c.out_of_range:.1%} of values outside the reference range")
        if c.new_share >= 0.05:
            quality.append(f"{c.new_share:.1%} of rows have categories unseen in training")
        if quality:
            found[("data_quality", c.column)] = (
                f"{c.column}: " + "; ".join(quality),
                {"out_of_range": c.out_of_range, "new_share": c.new_share},
            )
    if report.missing_in_current:
        found[("data_quality", "schema")] = (
            f"columns missing from the served data: {', '.join(report.missing_in_current)}",
            {"missing": report.missing_in_current},
        )
    if report.dataset_drift:
        found[("dataset_drift", "*")] = (
            f"{len(report.drifted)} of {len(report.evaluated)} features drifted "
            f"({report.share:.0%})",
            {"share": report.share, "drifted": report.drifted},
        )
    if report.prediction is not None and report.prediction.drifted:
        p = report.prediction
        found[("prediction_drift", "prediction")] = (
            f"the predictions drifted (PSI {p.score:.3f})",
            {"psi": p.score, "pvalue": p.pvalue},
        )
    for result in checks:
        if not result.passed and not result.skipped:
            found[("metric", result.check)] = (result.line, dict(result.values))
    return found


def _notify(alert: dict[str, Any], config: MonitorConfig) -> str:
    notes = []
    callback = _CALLBACKS.get(alert["model"])
    if callback is not None:
        try:
            callback(alert)
            notes.append("callback ok")
        except Exception as exc:
            notes.append(f"callback failed: {type(exc).__name__}: {exc}")
    if config.webhook:
        body = json.dumps(alert, default=str).encode()
        request = urllib.request.Request(
            config.webhook, body, {"Content-Type": "application/json"}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=3) as response:
                notes.append(f"webhook {response.status}")
        except Exception as exc:
            notes.append(f"webhook failed: {exc}")
    return "; ".join(notes)


def _sync_alerts(
    store: Store,
    name: str,
    conditions: dict[tuple[str, str], tuple[str, dict[str, Any]]],
    start: float | None,
    now: float,
    reference: str | None,
    config: MonitorConfig,
    kinds: set[str] | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Open, update and resolve alerts to match ``conditions``; only alerts of ``kinds``
    (all when None) are resolved, the conditions the check could judge."""
    al = schema.alerts
    with store.read() as conn:
        open_rows = {
            (r.kind, r.subject): r
            for r in conn.execute(
                sa.select(al).where(al.c.model_name == name, al.c.status == "open")
            )
        }
    opened: list[dict[str, Any]] = []
    resolved: list[dict[str, Any]] = []
    with store.write() as conn:
        for key, (message, values) in conditions.items():
            row = open_rows.get(key)
            if row is not None:  # the condition still holds: one alert, counted again
                conn.execute(
                    al.update()
                    .where(al.c.alert_id == row.alert_id)
                    .values(
                        last_seen=now,
                        occurrences=row.occurrences + 1,
                        message=message,
                        details=json.dumps(values, default=str),
                        window_start=start,
                        window_end=now,
                    )
                )
                continue
            alert = {
                "model": name,
                "kind": key[0],
                "subject": key[1],
                "message": message,
                "details": values,
                "reference": reference,
                "window_start": start,
                "window_end": now,
                "time": now,
            }
            alert_id = conn.execute(
                al.insert().values(
                    model_name=name,
                    kind=key[0],
                    subject=key[1],
                    status="open",
                    message=message,
                    details=json.dumps(values, default=str),
                    reference=reference,
                    window_start=start,
                    window_end=now,
                    first_seen=now,
                    last_seen=now,
                    occurrences=1,
                )
            ).inserted_primary_key[0]
            alert["alert_id"] = int(alert_id)
            opened.append(alert)
        for key, row in open_rows.items():
            if key not in conditions and (kinds is None or key[0] in kinds):
                conn.execute(
                    al.update()
                    .where(al.c.alert_id == row.alert_id)
                    .values(status="resolved", resolved=now)
                )
                resolved.append({"alert_id": row.alert_id, "kind": key[0], "subject": key[1]})
    for alert in opened:  # outside the transaction: a slow webhook never holds the store
        notified = _notify(alert, config)
        if notified:
            with store.write() as conn:
                conn.execute(
                    al.update().where(al.c.alert_id == alert["alert_id"]).values(notified=notified)
                )
        alert["notified"] = notified
    return opened, resolved


def _record(store: Store, outcome: CheckOutcome, report: DriftReport | None) -> None:
    summary = {
        "drifted": report.drifted if report else [],
        "scores": {c.column: c.score for c in report.columns} if report else {},
        "performance": outcome.performance,
        "checks": [r.line for r in outcome.checks],
        "rejections": outcome.rejections.to_dict() if outcome.rejections is not None else None,
    }
    now = outcome.window_end
    with store.write() as conn:
        conn.execute(
            schema.monitor_checks.insert().values(
                model_name=outcome.model,
                version=outcome.version,
                time=now,
                window_start=outcome.window_start,
                window_end=outcome.window_end,
                rows=outcome.rows,
                state=outcome.state,
                drift_share=report.share if report else None,
                summary=json.dumps(summary, default=str),
            )
        )
        conn.execute(
            schema.monitors.update()
            .where(schema.monitors.c.model_name == outcome.model)
            .values(last_check=now)
        )


def _open_alerts(store: Store, name: str) -> list[dict[str, Any]]:
    al = schema.alerts
    with store.read() as conn:
        return [
            {"alert_id": r.alert_id, "kind": r.kind, "subject": r.subject, "message": r.message}
            for r in conn.execute(
                sa.select(al)
                .where(al.c.model_name == name, al.c.status == "open")
                .order_by(al.c.alert_id)
            )
        ]


def alerts(
    model: str | None = None, *, status: str | None = None, store: Store | None = None
) -> Any:
    """Alerts as a DataFrame (newest first): kind, subject, status, message, window,
    first and last seen, occurrences, how they were sent."""
    import pandas as pd

    store = store or current_store()
    columns = [
        "alert_id",
        "model",
        "kind",
        "subject",
        "status",
        "message",
        "occurrences",
        "first_seen",
        "last_seen",
        "resolved",
        "window_start",
        "window_end",
        "reference",
        "notified",
        "details",
    ]
    from .tables import AlertsFrame

    if not store.exists:
        return AlertsFrame(columns=columns)
    al = schema.alerts
    query = sa.select(al).order_by(al.c.alert_id.desc())
    if model is not None:
        query = query.where(al.c.model_name == parse_model_ref(model).name)
    if status is not None:
        query = query.where(al.c.status == status)
    with store.read() as conn:
        rows = list(conn.execute(query))
    frame = pd.DataFrame(
        [
            (
                r.alert_id,
                r.model_name,
                r.kind,
                r.subject,
                r.status,
                r.message,
                r.occurrences,
                r.first_seen,
                r.last_seen,
                r.resolved,
                r.window_start,
                r.window_end,
                r.reference,
                r.notified,
                json.loads(r.details) if r.details else None,
            )
            for r in rows
        ],
        columns=columns,
    )
    for col in ("first_seen", "last_seen", "resolved", "window_start", "window_end"):
        frame[col] = pd.to_datetime(frame[col], unit="s")
    return AlertsFrame(frame)


def run_due_monitors(*, now: float | None = None, store: Store | None = None) -> list[CheckOutcome]:
    """Check every enabled monitor whose ``every`` has passed since its last check (what
    the server extension's background loop calls)."""
    store = store or current_store()
    now = time.time() if now is None else now
    if not store.exists:
        return []
    mon = schema.monitors
    with store.read() as conn:
        rows = list(conn.execute(sa.select(mon).where(mon.c.enabled.is_(True))))
    outcomes = []
    for row in rows:
        config = MonitorConfig(**json.loads(row.config))
        if row.last_check is not None and now - row.last_check < parse_duration(
            config.every, "every"
        ):
            continue
        outcomes.append(check(row.model_name, now=now, store=store))
    return outcomes
