"""``CellCapture``: turns a cell's code and its namespace, before and after it ran, into a
run's params, metrics, data inputs, models and figures. Plain Python: the same capture
serves ``%%track`` and ``with mlops.track():``."""

from __future__ import annotations

import ast
import base64
import io
import json
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..data.fingerprint import Fingerprint, data_kind, fingerprint
from .analysis import CellAnalysis, FitCall
from .estimators import (
    default_params,
    estimator_params,
    is_estimator,
    is_fitted,
    is_search,
    search_children,
    signature,
)
from .modelio import dump_model
from .values import is_metric_value, is_scalar_param, short_repr
from .writer import DEFAULT_PARAMS_TAG, RunWriter

__all__ = ["CaptureOptions", "CellCapture", "is_metric_name"]

_METRIC_WORDS = frozenset(
    [
        "accuracy",
        "acc",
        "f1",
        "f1score",
        "auc",
        "roc",
        "rocauc",
        "auroc",
        "aupr",
        "prauc",
        "ap",
        "map",
        "rmse",
        "mse",
        "mae",
        "mape",
        "smape",
        "r2",
        "rsquared",
        "loss",
        "logloss",
        "nll",
        "precision",
        "recall",
        "score",
        "error",
        "err",
        "brier",
        "kappa",
        "mcc",
        "jaccard",
        "iou",
        "dice",
        "perplexity",
        "bleu",
        "rouge",
        "ndcg",
        "mrr",
        "entropy",
        "crossentropy",
        "hinge",
        "deviance",
        "explained",
        "sensitivity",
        "specificity",
        "fbeta",
        "gini",
        "lift",
    ]
)
_IGNORED_NAMES = frozenset({"In", "Out", "exit", "quit", "get_ipython"})
_SPLIT = re.compile(r"[_\W]+|(?<=[a-z0-9])(?=[A-Z])")


def is_metric_name(name: str) -> bool:
    """Whether a variable name reads as a metric (``accuracy``, ``test_f1``, ``valLoss``)."""
    tokens = [t.lower() for t in _SPLIT.split(name) if t]
    return any(t in _METRIC_WORDS for t in tokens) or name.lower() in _METRIC_WORDS


@dataclass
class CaptureOptions:
    """What ``%%track`` was asked to capture beyond the defaults."""

    params: list[str] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)
    data: bool = True
    models: bool = True


def _skip(name: str) -> bool:
    return name.startswith("_") or name in _IGNORED_NAMES


def _resolve(node: ast.expr, ns: Mapping[str, Any]) -> Any:
    """The object a ``Name`` or dotted ``Attribute`` refers to, or None (never evaluates calls)."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name) or node.id not in ns:
        return None
    obj = ns[node.id]
    for part in reversed(parts):
        try:
            obj = getattr(obj, part)
        except Exception:
            return None
    return obj


def _call_kinds(value: ast.expr, ns: Mapping[str, Any]) -> set[str]:
    """Which kinds of metric-producing calls the expression contains."""
    kinds: set[str] = set()
    for node in ast.walk(value):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr == "score":
            kinds.add("score")
        target = _resolve(func, ns)
        module = getattr(target, "__module__", "") or ""
        qual = getattr(target, "__name__", "")
        if module.startswith("sklearn.metrics"):
            kinds.add("metric")
        elif module.startswith("sklearn.model_selection") and qual in {
            "cross_val_score",
            "cross_validate",
        }:
            kinds.add("cv")
    return kinds


def _flatten_numbers(prefix: str, value: Any, out: dict[str, Any], depth: int = 0) -> None:
    if depth > 4 or len(out) > 500:
        return
    if is_metric_value(value):
        out[prefix] = value
    elif isinstance(value, Mapping):
        for key, inner in value.items():
            _flatten_numbers(f"{prefix}.{key}", inner, out, depth + 1)
    elif data_kind(value) in {"ndarray", "series"} and getattr(value, "ndim", 1) == 1:
        try:
            import numpy as np

            arr = np.asarray(value, dtype=float)
        except (TypeError, ValueError):
            return
        if arr.size:
            out[f"{prefix}.mean"] = float(arr.mean())
            out[f"{prefix}.std"] = float(arr.std())


@dataclass
class CapturedModel:
    """A fitted estimator found in the cell."""

    name: str
    obj: Any
    fit: FitCall | None


class CellCapture:
    """Capture for one execution of one cell; call ``before`` then ``after``."""

    def __init__(self, analysis: CellAnalysis, options: CaptureOptions | None = None):
        self.analysis = analysis
        self.options = options or CaptureOptions()
        self.inputs: dict[str, Fingerprint] = {}
        self.versions: dict[str, int] = {}
        self._input_ids: set[int] = set()
        self.input_params: dict[str, Any] = {}
        self._figures_before: set[int] = set()

    # -- before ----------------------------------------------------------------------------
    def before(self, ns: Mapping[str, Any]) -> None:
        """Look at what the cell will read: data inputs (fingerprinted now, before any
        in-place change) and scalar globals set earlier."""
        a = self.analysis
        for name in sorted(a.free):
            if _skip(name) or name not in ns:
                continue
            value = ns[name]
            if self.options.data and data_kind(value) is not None:
                try:
                    self.inputs[name] = fingerprint(value)
                    self._input_ids.add(id(value))
                except Exception:
                    pass
            elif is_scalar_param(value) and not isinstance(value, type):
                self.input_params[name] = value
        if "matplotlib.pyplot" in sys.modules:
            self._figures_before = set(sys.modules["matplotlib.pyplot"].get_fignums())

    # -- after -------------------------------------------------------------------------------
    def after(
        self,
        ns: Mapping[str, Any],
        run: RunWriter,
        displayed: Iterable[tuple[Any, Mapping[str, Any]]] = (),
    ) -> list[str]:
        """Record everything into ``run``; returns the problems met (never raises)."""
        problems: list[str] = []
        for step in (
            lambda: self._params_and_metrics(ns, run),
            lambda: self._models(ns, run),
            lambda: self._inputs(run),
            lambda: self._figures(run, displayed),
        ):
            try:
                step()
            except Exception as exc:  # capture must never cost the user their cell
                problems.append(f"{type(exc).__name__}: {exc}")
        return problems

    def _params_and_metrics(self, ns: Mapping[str, Any], run: RunWriter) -> None:
        a = self.analysis
        for name, value in self.input_params.items():
            run.log_param(name, value)
        last: dict[str, Any] = {}
        for assignment in a.assignments:
            last[assignment.target] = assignment
        for name, assignment in last.items():
            if _skip(name) or name in a.loop_targets or name not in ns:
                continue
            value = ns[name]
            kinds = _call_kinds(assignment.value, ns)
            metric_like = bool(kinds) or is_metric_name(name) or name in self.options.metrics
            if metric_like and self._log_metric_value(run, name, value, assignment.source, kinds):
                continue
            if is_scalar_param(value) and not is_estimator(value):
                run.log_param(name, value)
        for name in self.options.params:
            if name in ns:
                run.log_param(name, ns[name])
        for name in self.options.metrics:
            if name in ns and name not in last:
                self._log_metric_value(run, name, ns[name], name, {"metric"})

    def _log_metric_value(
        self, run: RunWriter, name: str, value: Any, source: str, kinds: set[str]
    ) -> bool:
        if is_metric_value(value):
            run.log_metric(name, value, step=0, source=source)
            return True
        flat: dict[str, Any] = {}
        if kinds or isinstance(value, Mapping) or data_kind(value) in {"ndarray", "series"}:
            _flatten_numbers(name, value, flat)
        for key, number in flat.items():
            run.log_metric(key, number, step=0, source=source)
        return bool(flat)

    def _fitted_models(self, ns: Mapping[str, Any]) -> list[CapturedModel]:
        a = self.analysis
        fits: dict[str, FitCall] = {}
        for call in a.fit_calls:
            fits[call.owner] = call
        names = [x.target for x in a.assignments] + list(fits)
        seen: set[str] = set()
        found = []
        for name in names:
            if name in seen or _skip(name) or name not in ns:
                continue
            seen.add(name)
            obj = ns[name]
            if is_estimator(obj) and is_fitted(obj):
                found.append(CapturedModel(name, obj, fits.get(name)))
        return found

    def _models(self, ns: Mapping[str, Any], run: RunWriter) -> None:
        defaults: list[str] = []
        for model in self._fitted_models(ns):
            run.log_params(estimator_params(model.name, model.obj))
            defaults += default_params(model.name, model.obj)
            if defaults:  # the run card folds these; set at once, whatever follows fails
                run.set_tag(DEFAULT_PARAMS_TAG, json.dumps(sorted(set(defaults))))
            target = model.obj
            if is_search(model.obj):
                for key, value in model.obj.best_params_.items():
                    run.log_param(f"{model.name}.best.{key}", value)
                if is_metric_value(getattr(model.obj, "best_score_", None)):
                    run.log_metric(
                        f"{model.name}.best_score",
                        model.obj.best_score_,
                        step=0,
                        source=f"{model.name}.best_score_",
                    )
                for child in search_children(run.name, model.obj):
                    run.add_child(child)
                target = getattr(model.obj, "best_estimator_", model.obj)
            if not self.options.models:
                continue
            x, y = self._fit_data(model, ns)
            fit = model.fit
            names = {
                role: node.id
                for role, node in (("x", fit and fit.x), ("y", fit and fit.y))
                if isinstance(node, ast.Name)
            }
            log_model(
                run, target, model.name, x=x, y=y, inputs=self._input_frames(ns), fit_names=names
            )

    def _fit_data(self, model: CapturedModel, ns: Mapping[str, Any]) -> tuple[Any, Any]:
        if model.fit is None:
            return None, None
        x = _resolve(model.fit.x, ns) if model.fit.x is not None else None
        y = _resolve(model.fit.y, ns) if model.fit.y is not None else None
        return x, y

    def _input_frames(self, ns: Mapping[str, Any]) -> list[Any]:
        return [ns[n] for n, fp in self.inputs.items() if fp.kind == "dataframe" and n in ns]

    def _inputs(self, run: RunWriter) -> None:
        for name, fp in self.inputs.items():
            run.log_input(
                name,
                fp.kind,
                fp.content_hash,
                fp.shape,
                fp.columns,
                data_version_id=self.versions.get(name),
            )

    def created_frames(self, ns: Mapping[str, Any]) -> dict[str, Any]:
        """DataFrames the cell assigned to names (its data outputs), inputs and aliases of
        inputs excluded."""
        out = {}
        for name in sorted(self.analysis.binds - self.analysis.loop_targets):
            if _skip(name) or name in self.inputs or name not in ns:
                continue
            if id(ns[name]) in self._input_ids:
                continue
            if data_kind(ns[name]) == "dataframe":
                out[name] = ns[name]
        return out

    def _figures(self, run: RunWriter, displayed: Iterable[tuple[Any, Mapping[str, Any]]]) -> None:
        """Save what the cell displayed as figures: charts, plots and images."""
        count = 0
        seen: set[int] = set()
        for obj, bundle in displayed:
            saved = _object_figure(obj) or _bundle_figure(bundle)
            if saved is None:
                continue
            seen.add(id(obj))
            count += 1
            data, ext, fmt = saved
            run.log_object(f"figure-{count}.{ext}", data, kind="figure", format=fmt)
        plt = sys.modules.get("matplotlib.pyplot")
        if plt is not None:
            for num in plt.get_fignums():
                figure = plt.figure(num)
                if num in self._figures_before or id(figure) in seen:
                    continue
                count += 1
                png = _object_figure(figure)
                if png is not None:
                    run.log_object(f"figure-{count}.png", png[0], kind="figure", format="png")


def _object_figure(obj: Any) -> tuple[bytes, str, str] | None:
    module = type(obj).__module__ or ""
    if module.startswith("altair") and hasattr(obj, "to_dict"):
        return json.dumps(obj.to_dict()).encode(), "vl.json", "vega-lite"
    if module.startswith("matplotlib") and hasattr(obj, "savefig"):
        buf = io.BytesIO()
        obj.savefig(buf, format="png", dpi=100, bbox_inches="tight")
        return buf.getvalue(), "png", "png"
    return None


def _bundle_figure(bundle: Mapping[str, Any]) -> tuple[bytes, str, str] | None:
    for mime, payload in bundle.items():
        saved = _figure_bytes(mime, payload)
        if saved is not None:
            return saved
    return None


def _figure_bytes(mime: str, payload: Any) -> tuple[bytes, str, str] | None:
    if mime == "image/png":
        data = base64.b64decode(payload) if isinstance(payload, str) else bytes(payload)
        return data, "png", "png"
    if mime == "image/svg+xml":
        return str(payload).encode(), "svg", "svg"
    if "vegalite" in mime:
        return json.dumps(payload).encode(), "vl.json", "vega-lite"
    return None


def log_model(
    run: RunWriter,
    model: Any,
    name: str = "model",
    *,
    x: Any = None,
    y: Any = None,
    inputs: Iterable[Any] = (),
    fit_names: dict[str, str] | None = None,
) -> str:
    """Save a fitted model as artifact ``name`` with its signature; returns its object hash.

    The signature comes from ``x``/``y`` (the data it was fitted on) when known, else from
    a data input holding all of the model's feature names, else from the model itself.
    ``fit_names`` (the variables passed to ``fit``) let a gate find the rows the model
    was fitted on among the run's data.
    """
    if x is None:
        names = getattr(model, "feature_names_in_", None)
        if names is not None:
            wanted = [str(c) for c in names]
            for frame in inputs:
                if all(c in frame.columns for c in wanted):
                    x = frame[wanted].iloc[:0]
                    break
    data, fmt = dump_model(model)
    meta = {
        "signature": signature(model, x, y),
        "class": f"{type(model).__module__}.{type(model).__qualname__}",
        "repr": short_repr(model, 500),
    }
    if fit_names:
        meta["fit"] = fit_names
    if "sklearn" in sys.modules:
        meta["sklearn_version"] = sys.modules["sklearn"].__version__
    return run.log_object(name, data, kind="model", format=fmt, meta=meta)
