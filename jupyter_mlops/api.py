"""The Python API, ``import jupyter_mlops as mlops``: the same functions the magics call."""

from __future__ import annotations

import os
import sys
from typing import Any

from .store import Store
from .store import open_store as _open_store
from .tracking.active import caller_scope, require_active_run
from .tracking.context import Track, default_experiment, set_default_experiment
from .tracking.record import Run
from .tracking.record import get_run as _get_run
from .tracking.search import runs as _runs

__all__ = [
    "alerts",
    "archive",
    "check",
    "compare",
    "data_diff",
    "data_history",
    "deploy",
    "deployments",
    "drift",
    "export_model",
    "get_experiment",
    "get_model_version",
    "get_run",
    "inference_log",
    "load_data",
    "load_model",
    "log_artifact",
    "log_feedback",
    "log_metric",
    "log_metrics",
    "log_model",
    "log_param",
    "log_params",
    "model_events",
    "model_versions",
    "models",
    "monitor",
    "open_store",
    "predict_batch",
    "register",
    "registry_view",
    "remove_alias",
    "replay",
    "runs",
    "runs_view",
    "set_alias",
    "set_description",
    "set_experiment",
    "set_monitor",
    "set_tag",
    "snapshot",
    "track",
    "undeploy",
]


def track(name: str | None = None, experiment: str | None = None, **options: Any) -> Track:
    """Record a run around a block: ``with mlops.track("baseline") as run: ...``.

    The block's params, metrics, data inputs and fitted models are captured as ``%%track``
    does for a cell; ``run.log_param``/``run.log_metric``/``run.log_artifact`` add more.
    Options: ``params=[...]``, ``metrics=[...]`` (names to capture in any case),
    ``data=False``, ``models=False``, ``tags={...}``, ``capture=False`` (explicit logging only).
    """
    return Track(name, experiment, **options)


def log_param(key: str, value: Any) -> None:
    """Record a param on the active run (objects are stored as a short repr)."""
    require_active_run().log_param(key, value)


def log_params(values: dict[str, Any]) -> None:
    """Record several params on the active run."""
    require_active_run().log_params(values)


def log_metric(key: str, value: Any, step: int | None = None) -> None:
    """Record a metric on the active run; steps (or repeated calls) make a curve."""
    require_active_run().log_metric(key, value, step=step)


def log_metrics(values: dict[str, Any], step: int | None = None) -> None:
    """Record several metrics on the active run at one step."""
    require_active_run().log_metrics(values, step=step)


def set_tag(key: str, value: Any) -> None:
    """Tag the active run."""
    require_active_run().set_tag(key, value)


def log_model(
    model: Any,
    name: str = "model",
    *,
    input_example: Any = None,
    signature: Any = None,
    x: Any = None,
    y: Any = None,
    trusted: bool = False,
) -> None:
    """Save a fitted model on the active run in its flavor's safe format (skops, UBJSON,
    model text, ``.keras``: no code runs when it is loaded).

    Its signature (the columns and dtypes a deployment advertises and checks) comes from
    ``signature=`` (``{"inputs": [{"name": "age", "dtype": "float64"}]}``, ``{column:
    dtype}`` or an MLflow ``ModelSignature``), else ``input_example=`` (a few rows the
    model takes, checked by predicting on them), else ``x=``/``y=``, else the model itself
    and a DataFrame in scope holding its features. A model the tracked block also fitted
    is saved once, under ``name``. A model no safe format holds (a custom Keras layer)
    is refused unless ``trusted=True``: then its code is pickled, and loading it needs
    ``trusted=True`` too.
    """
    scope = caller_scope(sys._getframe(1))
    require_active_run().log_model(
        model,
        name,
        x=x,
        y=y,
        input_example=input_example,
        signature=signature,
        scope=scope,
        trusted=trusted,
    )


def log_artifact(path_or_object: Any, name: str | None = None) -> None:
    """Attach a file or an object (bytes, dict, figure, chart, DataFrame) to the active run."""
    scope = caller_scope(sys._getframe(1))
    require_active_run().log_artifact(path_or_object, name, scope=scope)


def runs(
    experiment: str | None = None,
    filter: str | None = None,
    order_by: str | list[str] | None = None,
    limit: int | None = None,
    *,
    params: str | None = None,
) -> Any:
    """Runs as a pandas DataFrame; ``filter`` like ``"metrics.accuracy > 0.8 and status = 'finished'"``.

    Columns: ``run_id name experiment status start_time end_time duration_s parent_run_id
    user``, then ``params.*``, ``metrics.*``, ``tags.*``. By default the params that vary
    across the returned runs or differ from their estimator's defaults (and those the
    filter names); ``params="all"`` for every one. Every param stays stored and filterable.

    By default the runs of this notebook's experiment (the one ``%load_ext`` announces and
    ``set_experiment`` sets), as MLflow's ``search_runs``; ``experiment="*"`` for every
    experiment, ``experiment="name"`` for another one. A filter that names ``experiment``
    (``"experiment = 'churn'"``) sets the scope itself.
    """
    return _runs(experiment, filter, order_by, limit, params=params)


def get_run(run_id: str) -> Run:
    """One run (by id or a unique prefix of 6+ characters) with params, metrics, models, code."""
    return _get_run(run_id)


def open_store(path_or_url: str | os.PathLike[str] | None = None, **options: Any) -> Store:
    """Use the store at a folder or SQLAlchemy URL from now on (default: the resolution rule)."""
    return _open_store(path_or_url, **options)


def set_experiment(name: str) -> None:
    """Runs without an explicit experiment go to ``name`` from now on."""
    set_default_experiment(name)


def get_experiment() -> str:
    """The experiment runs go to by default."""
    return default_experiment()


def snapshot(obj: Any, name: str, *, description: str | None = None) -> Any:
    """Save a DataFrame, Series or ndarray as the next version of dataset ``name``.

    Returns a ``DataVersion`` (``.ref`` like ``"churn_train@v3"``, ``.content_hash``,
    ``.shape``); unchanged data returns the existing version and writes nothing.
    """
    from .data.versions import snapshot as _snapshot

    return _snapshot(obj, name, description=description)


def load_data(ref: str) -> Any:
    """The data a reference names: ``name@v2``, ``name@2``, ``name@latest``, ``#3fa9c1``."""
    from .data.versions import load_data as _load_data

    return _load_data(ref)


def data_history(name: str) -> Any:
    """A dataset's versions as a DataFrame, newest first, with the runs that used each."""
    from .data.versions import data_history as _data_history

    return _data_history(name)


def data_diff(a: str, b: str, *, key: str | list[str] | None = None) -> Any:
    """What changed between two data versions: schema, rows added/removed/changed, statistics."""
    from .data.diff import data_diff as _data_diff

    return _data_diff(a, b, key=key)


def replay(run_id: str, data: Any = None, *, name: str | None = None) -> Run:
    """Re-execute a run on its data snapshots (or ``data={"df": "name@latest"}``) as a new run."""
    from .tracking.replay import replay as _replay

    return _replay(run_id, data, name=name)


def register(
    run: Any, name: str, *, model: str | None = None, description: str | None = None
) -> Any:
    """Register a run's model (a Run or a run id) as the next version of ``name``."""
    from .registry.service import register as _register

    return _register(run, name, model=model, description=description)


def set_alias(name: str, alias: str, version: int | str, *, reason: str | None = None) -> Any:
    """Point ``name@alias`` (production, staging, …) at a version; audited with ``reason``."""
    from .registry.service import set_alias as _set_alias

    return _set_alias(name, alias, version, reason=reason)


def remove_alias(name: str, alias: str, *, reason: str | None = None) -> None:
    """Delete an alias (audited)."""
    from .registry.service import remove_alias as _remove_alias

    _remove_alias(name, alias, reason=reason)


def load_model(ref: str, *, trusted: bool | list[str] = False) -> Any:
    """Load a registered model: ``churn@production``, ``churn@3``, ``churn@latest``."""
    from .registry.service import load_model as _load_model

    return _load_model(ref, trusted=trusted)


def get_model_version(ref: str) -> Any:
    """One model version with ``.card()``, ``.run_id``, ``.data``, ``.signature``."""
    from .registry.service import get_model_version as _get

    return _get(ref)


def models() -> Any:
    """Registered models as a DataFrame: latest version, number of versions, aliases."""
    from .registry.service import models as _models

    return _models()


def model_versions(name: str, *, include_archived: bool = False) -> Any:
    """A model's versions as a DataFrame with aliases, data and ``metrics.*``."""
    from .registry.service import model_versions as _model_versions

    return _model_versions(name, include_archived=include_archived)


def model_events(name: str) -> Any:
    """A model's audit trail: registrations, alias moves, descriptions, archives."""
    from .registry.service import model_events as _model_events

    return _model_events(name)


def archive(ref: str, *, reason: str | None = None) -> Any:
    """Archive a version (hidden by default, still loadable by number)."""
    from .registry.service import archive as _archive

    return _archive(ref, reason=reason)


def set_description(ref: str, description: str, *, reason: str | None = None) -> Any:
    """Describe a model (``churn``) or a version (``churn@3``); audited."""
    from .registry.service import set_description as _set_description

    return _set_description(ref, description, reason=reason)


def runs_view(experiment: str | None = None, filter: str | None = None, page_size: int = 25) -> Any:
    """A sortable, filterable table of runs (a widget); tick runs and press Compare.

    Scoped as ``runs()``: this notebook's experiment by default, ``"*"`` for all; the
    header says which."""
    from .views.runs import runs_view as _runs_view

    return _runs_view(experiment, filter, page_size)


def compare(*runs: Any) -> Any:
    """Runs side by side: params and metrics (differences highlighted), metric curves, a
    metric-against-param scatter, and the diffs of their code and data."""
    from .views.compare import compare as _compare

    return _compare(*runs)


def registry_view(model: str | None = None) -> Any:
    """The registry panel (a widget): versions, aliases, card, lineage; set an alias or
    archive a version, with a confirmation and a reason for the audit trail."""
    from .views.registry import registry_view as _registry_view

    return _registry_view(model)


def deploy(
    reference: str,
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    workers: int = 1,
    token: str | None = None,
    retention: str | int | None = None,
    log: bool = True,
    trusted: bool = False,
) -> Any:
    """Serve a registered model as a REST endpoint in its own process: ``deploy("churn@production")``.

    Returns a ``Deployment`` (``.url``, ``.status``, ``.logs()``, ``.stop()``) once it answers.
    It speaks Open Inference Protocol v2 and MLflow's ``/invocations``, logs every prediction,
    follows the alias when it moves, and survives a kernel restart. ``port=None`` picks a free
    port; a non-loopback ``host`` gets a bearer token shown once; ``retention`` keeps the
    inference log by age (``"30d"``) or rows (``1_000_000``).
    """
    from .serving.deployments import deploy as _deploy

    return _deploy(
        reference,
        host=host,
        port=port,
        workers=workers,
        token=token,
        retention=retention,
        log=log,
        trusted=trusted,
    )


def deployments(model: str | None = None, *, all: bool = False) -> Any:
    """Deployments as a DataFrame with their live (health-checked) status."""
    from .serving.deployments import deployments as _deployments

    return _deployments(model, all=all)


def undeploy(reference: str) -> Any:
    """Stop serving: ``"churn@production"`` stops that deployment, ``"churn"`` all of that
    model's, a deployment id that one. Returns the stopped deployments: a list that shows
    their cards in a notebook."""
    from .html import CardList
    from .serving.deployments import undeploy as _undeploy

    stopped = _undeploy(reference)
    n = len(stopped)
    return CardList(stopped, f"Stopped {n} deployment{'' if n == 1 else 's'} ({reference})")


def predict_batch(
    reference: str,
    data: Any,
    *,
    proba: bool = False,
    chunk_size: int = 250_000,
    log: bool = True,
    snapshot: bool = False,
    skip_missing: bool = False,
    progress: bool = True,
) -> Any:
    """Score a DataFrame with a registered model: a DataFrame of predictions with the same
    index (``proba=True`` adds class probabilities). The batch is logged with its input
    and predictions as data versions recorded by content hash, schema and statistics;
    ``snapshot=True`` also stores their rows (loadable with ``load_data``), which costs
    several times the prediction on a large frame. Rows with a missing value the model
    cannot take are refused by index label; ``skip_missing=True`` scores the others and
    leaves theirs missing (listed in ``.attrs["skipped"]``)."""
    from .serving.batch import predict_batch as _predict_batch

    bar = None
    if progress and len(data) > chunk_size:
        from tqdm.auto import tqdm

        def bar(total: int) -> Any:
            return tqdm(total=total, unit="rows", desc=f"scoring {reference}")

    return _predict_batch(
        reference,
        data,
        proba=proba,
        chunk_size=chunk_size,
        log=log,
        snapshot=snapshot,
        skip_missing=skip_missing,
        progress=bar,
    )


def log_feedback(
    request_ids: Any, labels: Any, *, model: str | None = None, wait: float = 5.0
) -> int:
    """Record ground-truth labels for served predictions by request id (``"<id>:<row>"``
    for a row of a multi-row request); returns how many were stored. Predictions a running
    deployment has not written to its log yet are waited for (up to ``wait`` seconds)."""
    from .registry.references import parse_model_ref
    from .serving.inference_log import log_feedback as _log_feedback

    name = parse_model_ref(model).name if model else None
    return _log_feedback(request_ids, labels, model=name, wait=wait)


def inference_log(
    model: str, *, since: float | None = None, last: int | None = None, kind: str | None = "online"
) -> Any:
    """The predictions served for ``model`` as a DataFrame, one row per predicted row
    (``kind="batch"`` lists batch scorings, ``kind=None`` both)."""
    from .serving.inference_log import inference_log as _inference_log

    return _inference_log(model, since=since, last=last, kind=kind)


def export_model(
    reference: str,
    format: str,
    outdir: str | os.PathLike[str],
    *,
    image: str | None = None,
    trusted: bool = False,
) -> Any:
    """Export a registered model for other platforms: ``format="mlflow"`` (an MLflow model
    folder, in MLflow's own flavor for XGBoost and LightGBM), ``"onnx"`` (``model.onnx``,
    verified in onnxruntime against the model's predictions), ``"docker"`` (an image build
    context serving OIP v2 and ``/invocations``) or ``"kserve"`` (the docker context plus a
    KServe InferenceService). Returns the folder."""
    from .serving.export import export_model as _export_model

    return _export_model(reference, format, outdir, image=image, trusted=trusted)


def drift(
    reference: Any,
    current: Any,
    *,
    columns: list[str] | None = None,
    prediction: str | None = None,
    thresholds: dict[str, float] | None = None,
    min_rows: int = 30,
) -> Any:
    """Drift between two frames (or data references such as ``"churn_train@v3"``), column
    by column: numeric columns by KS, PSI and Wasserstein, categorical ones by chi-square,
    PSI and Jensen–Shannon, each with its stated rule. Displays as a table; ``.to_frame()``,
    ``.to_dict()``, ``.chart()``, ``.drifted``, ``.dataset_drift``."""
    from .monitoring.drift import drift_report

    def frame(value: Any) -> Any:
        return load_data(value) if isinstance(value, str) else value

    return drift_report(
        frame(reference),
        frame(current),
        columns=columns,
        prediction=prediction,
        thresholds=thresholds,
        min_rows=min_rows,
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
    callback: Any = None,
    every: str = "15m",
) -> Any:
    """Say what healthy means for a deployed model: the window of served predictions to
    judge (``"1h"`` or a row count), ``min_rows`` before judging, drift ``thresholds``
    (``{"psi": 0.2}``), metric ``checks`` (``["accuracy >= 0.85"]``), the reference data
    (default: the model version's training data), and where alerts go (``webhook``,
    ``callback``). ``every`` is how often the server extension checks it."""
    from .monitoring.monitor import set_monitor as _set_monitor

    return _set_monitor(
        model,
        window=window,
        min_rows=min_rows,
        thresholds=thresholds,
        checks=checks,
        reference=reference,
        webhook=webhook,
        callback=callback,
        every=every,
    )


def check(model: str, *, current: Any = None) -> Any:
    """Evaluate a model's monitor now: drift, performance from feedback, data quality and
    metric checks over the current window of its inference log (or over ``current``, a
    DataFrame or data reference); raises, updates or resolves alerts."""
    from .monitoring.monitor import check as _check

    return _check(model, current=current)


def alerts(model: str | None = None, *, status: str | None = None) -> Any:
    """Alerts raised by monitors as a DataFrame (``status="open"`` for the current ones)."""
    from .monitoring.monitor import alerts as _alerts

    return _alerts(model, status=status)


def monitor(model: str, *, window: str | None = None) -> Any:
    """The monitoring panel (a widget) of a deployed model: traffic and latency, the drift
    table, reference vs current distributions, drift and performance over time, the
    prediction distribution and the alerts; pick a window, refresh, or check now."""
    from .views.monitor import monitor_view

    return monitor_view(model, window=window)


def retrain(
    model: str,
    data: Any = None,
    *,
    notebook: str | None = None,
    parameters: dict[str, Any] | None = None,
    gate: Any = None,
    holdout: Any = None,
    target: str | None = None,
    promote: str | None = "production",
    wait: bool = True,
    timeout: float | None = None,
) -> Any:
    """Retrain ``model`` now, in a separate process: replay the champion's training run on
    the latest data (or ``data={"df": "churn_train@v4"}``, or run ``notebook`` with
    ``parameters``), register the challenger, score both on ``holdout`` and move the
    ``promote`` alias only if every ``gate`` check (``"f1 >= champion"``) passes."""
    from .retraining.service import retrain as _retrain

    return _retrain(
        model,
        data,
        notebook=notebook,
        parameters=parameters,
        gate=gate,
        holdout=holdout,
        target=target,
        promote=promote,
        wait=wait,
        timeout=timeout,
    )


def retrain_policy(model: str, **options: Any) -> Any:
    """Retrain ``model`` automatically ``on=["drift", "metric", "alert", "new_data",
    "schedule"]`` (``schedule="0 3 * * *"``), with ``retrain``'s options plus ``cooldown``
    and ``watch``; ``enabled=False`` pauses it."""
    from .retraining.policy import retrain_policy as _policy

    return _policy(model, **options)


def retraining_jobs(model: str | None = None, *, limit: int = 200) -> Any:
    """Retraining and CI jobs as a DataFrame, newest first: trigger, status, champion,
    challenger, runs, gate lines, promoted."""
    from .retraining.jobs import retraining_jobs as _jobs

    return _jobs(model, limit=limit)


def retraining_policies() -> Any:
    """Every retraining policy as a DataFrame (triggers, schedule and next run, gate)."""
    from .retraining.policy import retraining_policies as _policies

    return _policies()


def run_due_policies(*, now: float | None = None) -> Any:
    """Start the retraining jobs whose policies are due (what the server extension's loop
    and ``jupyter-mlops scheduler`` call); returns the jobs."""
    from .retraining.policy import run_due_policies as _run

    return _run(now=now)
