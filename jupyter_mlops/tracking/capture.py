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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..data.fingerprint import Fingerprint, data_kind, fingerprint
from ..errors import UnsafeModelError, ValidationError
from .analysis import CellAnalysis, FitCall, analyze
from .estimators import (
    FittedState,
    column_hints,
    components,
    default_params,
    dtype_kind,
    estimator_params,
    is_estimator,
    is_search,
    search_children,
)
from .flavors import Training, flavor_for, is_model
from .flavors.base import lookup as _resolve
from .modelio import dump_model
from .values import is_metric_value, is_scalar_param, short_repr
from .writer import DEFAULT_PARAMS_TAG, MODEL_NOT_SAVED_TAG, RunWriter

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


# Clocks: a variable assigned from one (``t0 = time.time()``, ``elapsed = perf_counter() -
# t0``, ``stamp = datetime.now().timestamp()``) holds when the cell ran, not a setting.
_CLOCKS = {
    "time": frozenset(
        {
            "time",
            "time_ns",
            "perf_counter",
            "perf_counter_ns",
            "monotonic",
            "monotonic_ns",
            "process_time",
            "process_time_ns",
            "thread_time",
            "thread_time_ns",
        }
    ),
    "timeit": frozenset({"default_timer"}),
}
_CLOCK_METHODS = frozenset({"now", "utcnow", "today"})  # datetime, date, pandas.Timestamp


def _is_clock(target: Any) -> bool:
    """Whether ``target`` (a resolved callable) reads a clock."""
    if target is None:
        return False
    import time

    if any(target is getattr(time, n, None) for n in _CLOCKS["time"]):
        return True
    module = getattr(target, "__module__", None) or ""
    name = getattr(target, "__name__", "")
    if module in _CLOCKS and name in _CLOCKS[module]:
        return True
    owner = getattr(target, "__self__", None)
    if isinstance(owner, type) and name in _CLOCK_METHODS:
        import datetime

        return issubclass(owner, datetime.date)  # datetime, date, and pandas' Timestamp
    return False


def reads_clock(value: ast.expr, ns: Mapping[str, Any]) -> bool:
    """Whether an expression calls a clock (``time.time()``, ``perf_counter()``,
    ``datetime.now()``), resolving the called names in ``ns`` (so ``from time import
    perf_counter as pc`` counts too): its value is a timer, not a param."""
    return any(
        isinstance(node, ast.Call) and _is_clock(_resolve(node.func, ns))
        for node in ast.walk(value)
    )


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


@dataclass
class ExplicitModel:
    """A model saved by ``log_model`` during the run, and its fitted state at that moment:
    the capture saves it only under this name, unless it was fitted again afterwards."""

    name: str
    obj: Any
    state: FittedState
    given: bool  # its signature came from signature= or input_example

    def unchanged(self) -> bool:
        """Whether the object still holds what was saved (not fitted again since)."""
        return self.state.same_as(FittedState(self.obj))


class CellCapture:
    """Capture for one execution of one cell; call ``before`` then ``after``."""

    def __init__(
        self,
        analysis: CellAnalysis,
        options: CaptureOptions | None = None,
        history: Sequence[str] = (),
    ):
        self.analysis = analysis
        self.options = options or CaptureOptions()
        self.history = history  # the code of the cells run before, oldest first
        self.inputs: dict[str, Fingerprint] = {}
        self.versions: dict[str, int] = {}
        self._input_ids: set[int] = set()
        self.input_params: dict[str, Any] = {}
        self._figures_before: set[int] = set()
        self.notes: list[str] = []  # what the capture left out on purpose, and why

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
                if name in a.loop_binds:  # a loop's state left by an earlier run
                    continue
                if isinstance(value, int | float) and self._timer_from_before(name, ns):
                    continue
                self.input_params[name] = value
        if "matplotlib.pyplot" in sys.modules:
            self._figures_before = set(sys.modules["matplotlib.pyplot"].get_fignums())

    def _timer_from_before(self, name: str, ns: Mapping[str, Any]) -> bool:
        """Whether the earlier cell that last assigned ``name`` took it from a clock."""
        for code in reversed(self.history):
            found = [x for x in analyze(code).assignments if x.target == name]
            if found:
                return reads_clock(found[-1].value, ns)
        return False

    # -- after -------------------------------------------------------------------------------
    def after(
        self,
        ns: Mapping[str, Any],
        run: RunWriter,
        displayed: Iterable[tuple[Any, Mapping[str, Any]]] = (),
        explicit: Iterable[ExplicitModel] = (),
    ) -> list[str]:
        """Record everything into ``run``; returns the problems met (never raises).

        ``explicit`` are the models ``log_model`` saved during the run: a fitted model the
        capture finds among them is that model (saved once, under the explicit name).
        """
        problems: list[str] = []
        saved = list(explicit)
        for step in (
            lambda: self._params_and_metrics(ns, run),
            lambda: self._models(ns, run, saved),
            lambda: self._inputs(run),
            lambda: self._figures(run, displayed),
        ):
            try:
                step()
            except Exception as exc:  # capture must never cost the user their cell
                problems.append(f"{type(exc).__name__}: {exc}")
        return problems + self.notes

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
            if run.has_metric(name):  # logged with log_metric (a curve): a metric only
                continue
            value = ns[name]
            kinds = _call_kinds(assignment.value, ns)
            metric_like = bool(kinds) or is_metric_name(name) or name in self.options.metrics
            if metric_like and self._log_metric_value(run, name, value, assignment.source, kinds):
                continue
            if name in a.loop_binds:  # rebound in a loop (`w = w - lr * grad`): state
                continue
            if reads_clock(assignment.value, ns):  # `t0 = time.time()`: a timer
                continue
            if is_scalar_param(value) and not is_estimator(value):
                run.log_param(name, value)
        for name in self.options.params:
            if name in ns:
                run.log_param(name, ns[name])
        for name in self.options.metrics:
            if name in ns and name not in last and not run.has_metric(name):
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
        found: dict[int, CapturedModel] = {}  # one model per object (`alias = clf` too)
        for name in names:
            if name in seen or _skip(name) or name not in ns:
                continue
            seen.add(name)
            obj = ns[name]
            if is_model(obj):
                known = found.get(id(obj))
                if known is None or (known.fit is None and fits.get(name) is not None):
                    found[id(obj)] = CapturedModel(name, obj, fits.get(name))
        # `pre = ColumnTransformer(...)`, `pipe = Pipeline([("pre", pre), ...])`: the step
        # is a part of `pipe`, not a model of its own
        parts: set[int] = set()
        for model in found.values():
            parts |= {id(c) for c in components(model.obj)}
        return [m for key, m in found.items() if key not in parts]

    def _models(self, ns: Mapping[str, Any], run: RunWriter, explicit: list[ExplicitModel]) -> None:
        defaults: list[str] = []
        models = self._fitted_models(ns)
        trainings = self._trainings(models, ns)
        for model in models:
            run.log_params(estimator_params(model.name, model.obj))
            defaults += default_params(model.name, model.obj)
            training = trainings.get(model.name)
            if training is not None:  # settings the framework chose: defaults too
                defaults += [f"{model.name}.{k}" for k in training.defaults]
            if defaults:  # the run card folds these; set at once, whatever follows fails
                run.set_tag(DEFAULT_PARAMS_TAG, json.dumps(sorted(set(defaults))))
            if training is not None:
                prefix = "" if len(trainings) == 1 else f"{model.name}."
                log_training(run, model.name, training, prefix)
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
            frames = [*self._input_frames(ns), *frames_in(ns)]
            same = [
                e for e in explicit if (e.obj is target or e.obj is model.obj) and e.unchanged()
            ]
            if same:  # saved by log_model: that artifact is this model; describe it fully
                for e in same:
                    meta = model_meta(e.obj, x=x, y=y, inputs=frames, fit_names=names)
                    if e.given:
                        meta = {**run.artifact_meta(e.name), "fit": names} if names else None
                    if meta is not None:
                        run.update_artifact_meta(e.name, meta)
                continue
            try:
                log_model(run, target, model.name, x=x, y=y, inputs=frames, fit_names=names)
            except UnsafeModelError as exc:  # recorded without the model; the run says why
                run.set_tag(f"{MODEL_NOT_SAVED_TAG}.{model.name}", str(exc))
                self.notes.append(f"model {model.name!r} not saved: {exc}")

    def _trainings(self, models: list[CapturedModel], ns: Mapping[str, Any]) -> dict[str, Training]:
        """What each model's training left behind (boosting curves, importances), read by
        its flavor; ``call`` is the training call the cell assigned it from."""
        calls: dict[str, ast.Call] = {}
        for assignment in self.analysis.assignments:
            if isinstance(assignment.value, ast.Call):
                calls[assignment.target] = assignment.value
        out: dict[str, Training] = {}
        for model in models:
            flavor = flavor_for(model.obj)
            found = flavor.training(model.obj, calls.get(model.name), ns) if flavor else None
            fit = model.fit.call if model.fit is not None else None
            if found is not None and flavor is not None and fit is not None:
                found.params.update(flavor.fit_params(model.obj, fit, ns))
            if found is not None:
                out[model.name] = found
        return out

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


_MLFLOW_TYPES = {
    "double": "float64",
    "float": "float32",
    "long": "int64",
    "integer": "int32",
    "boolean": "bool",
    "string": "object",
}


def example_frame(model: Any, example: Any) -> Any:
    """An ``input_example`` as the frame (or 2-D array) the model takes, checked by
    predicting on its first rows: an example the model cannot take is refused."""
    import numpy as np
    import pandas as pd

    names = getattr(model, "feature_names_in_", None)
    wanted = [str(c) for c in names] if names is not None else None
    if isinstance(example, pd.DataFrame):
        frame: Any = example
    elif isinstance(example, pd.Series):
        frame = example.to_frame().T.infer_objects()
    elif isinstance(example, Mapping):
        scalars = all(np.ndim(v) == 0 for v in example.values())
        frame = pd.DataFrame([dict(example)] if scalars else dict(example))
    elif isinstance(example, list) and example and all(isinstance(r, Mapping) for r in example):
        frame = pd.DataFrame(example)
    elif isinstance(example, np.ndarray | list | tuple):
        arr = np.asarray(example)
        if arr.ndim == 1:
            arr = arr.reshape(1, -1)
        if arr.ndim != 2:
            raise ValidationError(
                f"input_example has {arr.ndim} dimensions; give rows of columns (a DataFrame "
                "or a 2-D array)."
            )
        frame = pd.DataFrame(arr, columns=wanted) if wanted and arr.shape[1] == len(wanted) else arr
    else:
        raise ValidationError(
            f"input_example cannot be a {type(example).__name__}: give a DataFrame, a dict of "
            "columns, a list of row dicts or a 2-D array."
        )
    if len(frame) == 0:
        raise ValidationError("input_example has no rows; give at least one row.")
    if isinstance(frame, pd.DataFrame):
        frame.columns = [str(c) for c in frame.columns]
        if wanted is not None:
            missing = [c for c in wanted if c not in frame.columns]
            if missing:
                raise ValidationError(
                    f"input_example lacks the columns {missing} the model was fitted on ({wanted})."
                )
            frame = frame[wanted]
    n = getattr(model, "n_features_in_", None)
    if isinstance(n, int) and frame.shape[1] != n:
        raise ValidationError(f"input_example has {frame.shape[1]} columns; the model takes {n}.")
    if hasattr(model, "predict"):
        import warnings

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model.predict(frame[:5] if not isinstance(frame, pd.DataFrame) else frame.head(5))
        except Exception as exc:
            raise ValidationError(
                f"The model cannot predict on input_example ({type(exc).__name__}: {exc}); "
                "give rows of the data it was fitted on."
            ) from exc
    return frame


def given_inputs(model: Any, given: Any) -> tuple[list[dict[str, str]], str]:
    """The inputs of a ``signature=``: ours (``{"inputs": [{"name", "dtype"}]}``), MLflow's
    (a ``ModelSignature`` or its ``to_dict()``) or ``{column: dtype}``, checked against the
    model: the columns it was fitted on, and no text where it takes numbers."""
    if not isinstance(given, Mapping) and callable(getattr(given, "to_dict", None)):
        given = given.to_dict()  # mlflow.models.ModelSignature
    if not isinstance(given, Mapping):
        raise ValidationError(
            "signature= is a dict: {'inputs': [{'name': 'age', 'dtype': 'float64'}, ...]} "
            "(or {column: dtype}, or an MLflow ModelSignature)."
        )
    if "inputs" in given:
        raw = given["inputs"]
        if isinstance(raw, str):  # MLflow's to_dict(): a JSON string of column specs
            try:
                raw = json.loads(raw)
            except ValueError as exc:
                raise ValidationError(f"signature inputs are not valid JSON: {exc}") from exc
        if not isinstance(raw, list) or not all(
            isinstance(i, Mapping) and "name" in i for i in raw
        ):
            raise ValidationError("signature['inputs'] is a list of {'name': ..., 'dtype': ...}.")
        pairs = [
            (str(i["name"]), str(i.get("dtype") or _MLFLOW_TYPES.get(str(i.get("type")), "")))
            for i in raw
        ]
    else:
        pairs = [(str(k), str(v)) for k, v in given.items()]
    for name, dtype in pairs:
        if dtype_kind(dtype) == "any":
            raise ValidationError(
                f"signature column {name!r} has dtype {dtype!r}; use a numpy/pandas dtype "
                "such as float64, int64, bool, object or category."
            )
    by_name = dict(pairs)
    if len(by_name) != len(pairs):
        raise ValidationError("signature= names a column twice.")
    fitted = getattr(model, "feature_names_in_", None)
    n = getattr(model, "n_features_in_", None)
    if fitted is not None:
        wanted = [str(c) for c in fitted]
        if set(wanted) != set(by_name):
            raise ValidationError(
                f"signature= has the columns {list(by_name)}; the model was fitted on {wanted}."
            )
        pairs = [(c, by_name[c]) for c in wanted]
        kind = "dataframe"
    else:
        if isinstance(n, int) and len(pairs) != n:
            raise ValidationError(f"signature= has {len(pairs)} columns; the model takes {n}.")
        kind = "ndarray"
    try:
        hints = column_hints(model, len(pairs))
    except Exception:
        hints = [None] * len(pairs)
    for (name, dtype), hint in zip(pairs, hints, strict=True):
        if hint is not None and dtype_kind(dtype) == "text" and dtype_kind(hint) != "text":
            raise ValidationError(
                f"signature= says column {name!r} holds text ({dtype}), but the model takes "
                "numbers there; give a numeric dtype such as float64."
            )
        if hint is not None and dtype_kind(hint) == "text" and dtype_kind(dtype) != "text":
            raise ValidationError(
                f"signature= says column {name!r} holds {dtype}, but the model encodes text "
                "categories there; give object (or category)."
            )
    return [{"name": n_, "dtype": d} for n_, d in pairs], kind


def frames_in(namespace: Mapping[str, Any] | None) -> list[Any]:
    """The DataFrames a namespace holds (where a model's training frame may be in scope)."""
    if not namespace:
        return []
    out = []
    try:
        values = list(namespace.values())
    except Exception:
        return []
    for value in values[:10_000]:
        if data_kind(value) == "dataframe":
            out.append(value)
    return out


def model_meta(
    model: Any,
    *,
    x: Any = None,
    y: Any = None,
    inputs: Iterable[Any] = (),
    fit_names: dict[str, str] | None = None,
    input_example: Any = None,
    given: Any = None,
) -> dict[str, Any]:
    """The metadata saved with a model: its signature, class, repr and fit names.

    The signature comes from ``given`` (``signature=``), else ``input_example``, else
    ``x``/``y`` (the data it was fitted on) when known, else from the model itself with
    the dtypes of a frame among ``inputs`` that holds its feature names. Raises
    ``ValidationError`` for an example or a signature the model cannot take.
    """
    example = None
    if input_example is not None:
        example = example_frame(model, input_example)
        x = example
    flavor = flavor_for(model)
    frames = list(inputs)
    if flavor is not None:
        sig = flavor.signature(model, x, y, frames)
    else:
        from .estimators import signature

        sig = signature(model, x, y, frames)
    meta: dict[str, Any] = {
        "signature": sig,
        "class": f"{type(model).__module__}.{type(model).__qualname__}",
        "repr": short_repr(model, 500),
    }
    if flavor is not None:
        meta["flavor"] = flavor.name
        if flavor.name != "sklearn" and flavor.version():
            meta[f"{flavor.name}_version"] = flavor.version()
        try:
            requires = flavor.requires(model)
        except Exception:
            requires = []
        if requires:
            meta["requires"] = requires
    if given is not None:
        meta["signature"]["inputs"], meta["signature"]["input_kind"] = given_inputs(model, given)
        meta["signature_given"] = True
    if example is not None:
        meta["input_example"] = json.loads(_head_json(example))
    if fit_names:
        meta["fit"] = fit_names
    if "sklearn" in sys.modules:
        meta["sklearn_version"] = sys.modules["sklearn"].__version__
    return meta


def _head_json(example: Any) -> str:
    import pandas as pd

    frame = example if isinstance(example, pd.DataFrame) else pd.DataFrame(example)
    return frame.head(5).to_json(orient="split", index=False, date_format="iso")


def log_training(run: RunWriter, name: str, training: Training, prefix: str = "") -> None:
    """Record what a model's training left: one stepped metric per eval set and metric
    (``validation_0.logloss`` at step = boosting round), the best iteration and score,
    the params of a training function (``bst.max_depth``) and the feature importances
    (artifact ``<name>.importance.json``). A metric the code logged itself is left alone."""
    run.log_params({f"{name}.{k}": v for k, v in training.params.items()})
    for key, values in training.curves.items():
        metric = f"{prefix}{key}"
        if run.has_metric(metric):
            continue
        for step, value in enumerate(values, start=training.start):
            run.log_metric(metric, value, step=step, source=training.source or None)
    best = (
        ("best_iteration", training.best_iteration, f"{name}: the round kept (a curve step)"),
        ("best_score", training.best_score, f"{name}: its score at that round"),
    )
    for key, value, source in best:
        if value is not None and not run.has_metric(f"{prefix}{key}"):
            run.log_metric(f"{prefix}{key}", value, step=0, source=source)
    if training.importance:
        doc = {"importance_type": training.importance_type, "importance": training.importance}
        run.log_object(
            f"{name}.importance.json", json.dumps(doc).encode(), kind="file", format="json"
        )


def log_model(
    run: RunWriter,
    model: Any,
    name: str = "model",
    *,
    x: Any = None,
    y: Any = None,
    inputs: Iterable[Any] = (),
    fit_names: dict[str, str] | None = None,
    meta: dict[str, Any] | None = None,
    trusted: bool = False,
) -> str:
    """Save a fitted model as artifact ``name`` with its signature; returns its object hash.

    ``meta`` is ``model_meta``'s result when the caller already built it; otherwise it is
    built from ``x``/``y``/``inputs``/``fit_names`` (see ``model_meta``). ``fit_names``
    (the variables passed to ``fit``) let a gate find the rows the model was fitted on
    among the run's data. A model its flavor cannot save safely raises
    ``UnsafeModelError`` unless ``trusted=True``.
    """
    if meta is None:
        meta = model_meta(model, x=x, y=y, inputs=inputs, fit_names=fit_names)
    data, fmt = dump_model(model, trusted=trusted)
    return run.log_object(name, data, kind="model", format=fmt, meta=meta)
