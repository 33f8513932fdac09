"""The LightGBM flavor: ``LGBMClassifier``/``LGBMRegressor``/``LGBMRanker`` and a
``Booster`` returned by ``lgb.train``.

Saved as LightGBM's model text (``booster_.model_to_string()``, what ``save_model``
writes: trees, params, feature names and the categories of pandas Categoricals) with
the wrapper's class, params and classes beside it. Loaded with
``lgb.Booster(model_str=…)``, and the scikit-learn wrapper rebuilt around it from its
params (LightGBM has no loader for its wrappers; pickling them is what others do).
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ...errors import MlopsError
from .base import (
    Flavor,
    MlflowFlavor,
    OnnxInputs,
    Training,
    call_arg,
    call_value,
    categorical_adapter,
    json_params,
    mark_categorical,
    model_error,
    pack,
    unpack,
)
from .lightgbm_check import ModelTextError, check_model_text

__all__ = ["FLAVOR", "LightGBMFlavor"]

FORMAT = "lightgbm-txt"
MODEL_FILE = "model.txt"
_WRAPPERS = ("LGBMClassifier", "LGBMRegressor", "LGBMRanker")
BOOSTER = "Booster"
# LightGBM's names for the categorical features param (its aliases)
_CATEGORICAL_KEYS = (
    "categorical_feature",
    "categorical_column",
    "cat_feature",
    "cat_column",
    "categorical_features",
)


def _lgb() -> Any:
    try:
        import lightgbm
    except ImportError as exc:
        raise MlopsError(
            "This model is a LightGBM model, and lightgbm is not installed here: "
            "pip install 'jupyter_mlops[lightgbm]' (or lightgbm), then load it again."
        ) from exc
    return lightgbm


def _class_name(obj: Any) -> str | None:
    import lightgbm as lgb

    cls = type(obj)
    if cls is lgb.Booster:
        return BOOSTER
    if cls.__name__ in _WRAPPERS and getattr(lgb, cls.__name__, None) is cls:
        return cls.__name__
    return None


def _booster(model: Any) -> Any:
    return model if type(model).__name__ == BOOSTER else model.booster_


def _curves(history: Any) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    if not isinstance(history, Mapping):
        return out
    for dataset, metrics in history.items():
        if not isinstance(metrics, Mapping):
            continue
        for metric, values in metrics.items():
            try:
                points = [float(v) for v in values]
            except (TypeError, ValueError):
                continue
            if points:
                out[f"{dataset}.{metric}"] = points
    return out


def _best(best_score: Any, training_names: set[str]) -> float | None:
    """The best score LightGBM kept: the first metric of the last validation set (the
    training set's own scores excluded), as xgboost reports the metric it stopped on."""
    sets = [(k, v) for k, v in (best_score or {}).items() if isinstance(v, Mapping) and v]
    held = [(k, v) for k, v in sets if k not in training_names] or sets
    if not held:
        return None
    try:
        return float(next(iter(held[-1][1].values())))
    except (TypeError, ValueError):
        return None


def _categorical_indices(booster: Any) -> list[int]:
    params = getattr(booster, "params", None) or {}
    for key in _CATEGORICAL_KEYS:
        value = params.get(key)
        if isinstance(value, list | tuple) and all(isinstance(v, int) for v in value):
            return [int(v) for v in value]
        if isinstance(value, str) and value and not value.startswith("name:"):
            try:
                return [int(v) for v in value.split(",")]
            except ValueError:
                continue
    return []


def _record_evaluation(callbacks: Any, ns: Mapping[str, Any]) -> tuple[Any, str] | None:
    """The dict ``lgb.record_evaluation(d)`` fills, among the callbacks of the call."""
    if not isinstance(callbacks, ast.List | ast.Tuple):
        return None
    for item in callbacks.elts:
        if (
            isinstance(item, ast.Call)
            and isinstance(item.func, ast.Attribute | ast.Name)
            and (item.func.attr if isinstance(item.func, ast.Attribute) else item.func.id)
            == "record_evaluation"
        ):
            arg = call_arg(item, 0, "eval_result")
            value = call_value(arg, ns)
            if isinstance(value, Mapping) and arg is not None:
                return value, ast.unparse(arg)
    return None


class LightGBMFlavor(Flavor):
    """LightGBM's scikit-learn wrappers and boosters."""

    name = "lightgbm"
    package = "lightgbm"
    formats = (FORMAT,)
    missing_values = True  # boosted trees send them down each split's default branch

    def handles(self, obj: Any) -> bool:
        return _class_name(obj) is not None

    def is_fitted(self, obj: Any) -> bool:
        if type(obj).__name__ == BOOSTER:
            return obj.current_iteration() > 0
        return bool(obj.__sklearn_is_fitted__())

    # -- save / load -----------------------------------------------------------------------
    def dump(self, model: Any) -> tuple[bytes, str]:
        name = _class_name(model)
        booster = _booster(model)
        text = booster.model_to_string()  # up to the best iteration, as save_model writes
        info: dict[str, Any] = {"class": name, "lightgbm_version": self.version()}
        if name != BOOSTER:
            info["params"] = json_params(model.get_params(deep=False))
            info["objective"] = model._objective if isinstance(model._objective, str) else None
            info["feature_names"] = bool(model._fitted_with_feature_names)
            info["n_features_in"] = int(model._n_features_in)
            info["best_iteration"] = int(model.best_iteration_ or 0)
            info["best_score"] = {
                k: {m: float(v) for m, v in d.items()} for k, d in model.best_score_.items()
            }
            classes = getattr(model, "_classes", None)
            if classes is not None:
                info["classes"] = [c.item() if hasattr(c, "item") else c for c in classes]
                info["classes_dtype"] = str(classes.dtype)
        return pack(FORMAT, {MODEL_FILE: text.encode()}, info), FORMAT

    def load(self, data: bytes, format: str, trusted: Any = False) -> Any:
        files, info = unpack(data, FORMAT, (MODEL_FILE,))
        lgb = _lgb()
        name = info.get("class")
        if name != BOOSTER and name not in _WRAPPERS:
            raise model_error(FORMAT, f"it names the class {name!r}, not a LightGBM model")
        try:
            text = files[MODEL_FILE].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise model_error(FORMAT, "its model is not LightGBM model text") from exc
        try:
            text = check_model_text(text)  # LightGBM's parser trusts its input: check first
        except ModelTextError as exc:
            raise model_error(FORMAT, f"not LightGBM model text: {exc}") from exc
        try:
            booster = lgb.Booster(model_str=text)
            if name == BOOSTER:
                return booster
            return _wrapper(lgb, name, booster, info)
        except MlopsError:
            raise
        except Exception as exc:  # LightGBMError on damaged model text
            raise model_error(FORMAT, f"{type(exc).__name__}: {str(exc)[:300]}") from exc

    # -- capture --------------------------------------------------------------------------
    def training(self, model: Any, call: ast.Call | None, ns: Mapping[str, Any]) -> Training:
        booster = _booster(model)
        gain = booster.feature_importance(importance_type="gain")
        scores = {str(n): float(g) for n, g in zip(booster.feature_name(), gain, strict=False)}
        out = Training(importance=dict(sorted(scores.items(), key=lambda kv: -kv[1])))
        if type(model).__name__ == BOOSTER:
            # lgb.train(params, train_set, num_boost_round, valid_sets=…, callbacks=…)
            out.params = json_params(
                {str(k): v for k, v in (booster.params or {}).items() if k not in _CATEGORICAL_KEYS}
            )
            found = _record_evaluation(call_arg(call, None, "callbacks"), ns)
            if found is not None:
                out.curves, out.source = _curves(found[0]), found[1]
            best_iteration = booster.best_iteration
            best_score = booster.best_score
            names = {"training"}
            if not out.curves and best_score:  # no history: the values of the model kept
                out.curves = {
                    f"{k}.{m}": [float(v)] for k, d in best_score.items() for m, v in d.items()
                }
                out.start = (best_iteration or booster.current_iteration()) - 1
                out.source = "Booster.best_score after training"
        else:
            out.curves = _curves(model.evals_result_)
            out.source = "evals_result_"
            best_iteration = model.best_iteration_
            best_score = model.best_score_
            names = {"training"}
        if best_iteration and best_iteration > 0:  # early stopping ran (1-based in LightGBM)
            out.best_iteration = int(best_iteration) - 1
            out.best_score = _best(best_score, names)
        return out

    def signature(self, model: Any, x: Any, y: Any, frames: list[Any]) -> dict[str, Any]:
        from ..estimators import inputs_for, signature

        booster = _booster(model)
        names = [str(n) for n in booster.feature_name()]
        if type(model).__name__ == BOOSTER:
            default = names == [f"Column_{i}" for i in range(len(names))]
            inputs, kind = inputs_for(None if default else names, len(names), frames)
            sig = {
                "inputs": inputs,
                "input_kind": kind,
                "outputs": [{"name": "prediction", "dtype": "float64"}],
                "estimator": "lightgbm.basic.Booster",
            }
        else:
            sig = signature(model, x, y, frames)
        indices = _categorical_indices(booster)
        cats = getattr(booster, "pandas_categorical", None) or []
        inputs = [str(i["name"]) for i in sig.get("inputs", [])]
        if len(inputs) != len(names):
            return sig
        columns = [inputs[i] for i in indices if 0 <= i < len(inputs)]
        # the categories of pandas Categoricals, in column order, when each categorical
        # feature was one (integer codes given as categorical_feature stay numbers)
        known = dict(zip(columns, cats, strict=True)) if len(cats) == len(columns) else {}
        categorical = {c: known.get(c) for c in columns}
        return mark_categorical(sig, categorical, [x, *frames] if x is not None else frames)

    def input_adapter(self, signature: Mapping[str, Any]) -> Callable[[Any], Any] | None:
        return categorical_adapter(signature)

    def scorable(self, model: Any) -> Any:
        """A Booster by its objective: probabilities (``binary``, ``multiclass``) score
        as a classifier, anything else as a regressor."""
        if type(model).__name__ != BOOSTER:
            return model
        from .scoring import ProbabilityClassifier, ValueRegressor

        objective = str((model.params or {}).get("objective") or "").split(" ")[0]
        if objective in ("binary", "cross_entropy", "xentropy"):
            return ProbabilityClassifier(model, 2)
        if objective in ("multiclass", "softmax"):
            return ProbabilityClassifier(model, int(model.params.get("num_class") or 2))
        return ValueRegressor(model)

    # -- export ---------------------------------------------------------------------------
    def to_onnx(self, model: Any, inputs: OnnxInputs) -> Any:
        """onnxmltools' LightGBM converter (probabilities as a tensor, not a ZipMap)."""
        from onnxmltools.convert import convert_lightgbm
        from onnxmltools.convert.common.data_types import FloatTensorType

        booster = _booster(model)
        if getattr(booster, "pandas_categorical", None):
            names = booster.feature_name()
            columns = [names[i] for i in _categorical_indices(booster) if 0 <= i < len(names)]
            raise NotImplementedError(
                f"pandas Categorical features ({', '.join(columns[:5]) or 'categorical'}): "
                "an ONNX model takes numbers, not the categories LightGBM maps them from"
            )
        width = len(inputs.columns)
        return convert_lightgbm(
            model,
            initial_types=[("input", FloatTensorType([None, width]))],
            target_opset=inputs.opset,
            zipmap=False,
        )

    def register_skl2onnx(self) -> None:
        import lightgbm as lgb
        from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm
        from skl2onnx import update_registered_converter
        from skl2onnx.common.shape_calculator import (
            calculate_linear_classifier_output_shapes,
            calculate_linear_regressor_output_shapes,
        )

        update_registered_converter(
            lgb.LGBMClassifier,
            "LightGbmLGBMClassifier",
            calculate_linear_classifier_output_shapes,
            convert_lightgbm,
            options={"nocl": [True, False], "zipmap": [True, False, "columns"]},
        )
        update_registered_converter(
            lgb.LGBMRegressor,
            "LightGbmLGBMRegressor",
            calculate_linear_regressor_output_shapes,
            convert_lightgbm,
            options={"split": None},
        )

    def export_mlflow(self, model: Any, folder: Path) -> MlflowFlavor:
        """MLflow's ``lightgbm`` flavor: a ``Booster`` as LightGBM's model text
        (``model.lgb``); a scikit-learn wrapper as MLflow saves those without pickle, a
        skops file whose trusted types the ``MLmodel`` lists (the wrapper and its Booster,
        whose state is the same model text)."""
        from ..skops_import import skops_io

        sio = skops_io()

        name = _class_name(model)
        cls = type(model)
        conf: dict[str, Any] = {
            "code": None,
            "lgb_version": self.version(),
            "model_class": f"{cls.__module__}.{cls.__qualname__}",
        }
        if name == BOOSTER:
            model_file = "model.lgb"
            model.save_model(str(folder / model_file))
            extra: list[str] = []
            drop = ["skops", "scikit-learn"]
        else:
            model_file = "model.skops"
            data = sio.dumps(model)
            (folder / model_file).write_bytes(data)
            conf["serialization_format"] = "skops"
            conf["skops_trusted_types"] = sorted(sio.get_untrusted_types(data=data))
            extra, drop = [f"skops=={sio_version()}"], []
        conf["data"] = model_file
        flavors = {
            "python_function": {"loader_module": "mlflow.lightgbm", "data": model_file},
            "lightgbm": conf,
        }
        return MlflowFlavor(flavors, model_file, extra_requirements=extra, drop_requirements=drop)


def sio_version() -> str:
    """The installed skops version (an MLflow folder holding a skops file pins it)."""
    from importlib.metadata import version

    return version("skops")


def _wrapper(lgb: Any, name: str, booster: Any, info: Mapping[str, Any]) -> Any:
    """A fitted ``LGBMClassifier``/``Regressor``/``Ranker`` around a loaded booster: the
    attributes ``fit`` sets, from the booster and the info saved beside it."""
    import numpy as np

    cls = getattr(lgb, name)
    params = info.get("params") if isinstance(info.get("params"), dict) else {}
    try:
        model = cls(**params)
    except (TypeError, ValueError):
        model = cls()
    n = booster.num_feature()
    model._Booster = booster
    model._n_features = n
    model._n_features_in = int(info.get("n_features_in") or n)
    model._fitted_with_feature_names = bool(info.get("feature_names", True))
    objective = info.get("objective")
    model._objective = objective if isinstance(objective, str) else booster.params.get("objective")
    best = info.get("best_iteration")
    model._best_iteration = int(best) if isinstance(best, int) else 0
    score = info.get("best_score")
    model._best_score = score if isinstance(score, dict) else {}
    model._evals_result = {}
    if name == "LGBMClassifier":
        from sklearn.preprocessing import LabelEncoder

        raw = info.get("classes")
        if not isinstance(raw, list) or not raw:
            raise model_error(FORMAT, "a classifier saved without its classes")
        try:
            dtype = np.dtype(str(info.get("classes_dtype") or "object"))
        except TypeError:
            dtype = np.dtype(object)
        if dtype.kind not in "biufUO":
            dtype = np.dtype(object)
        classes = np.asarray(raw, dtype=dtype)
        encoder = LabelEncoder()
        encoder.classes_ = classes
        model._le = encoder
        model._classes = classes
        model._n_classes = len(classes)
        model._class_map = {c: i for i, c in enumerate(raw)}
    model.fitted_ = True
    return model


FLAVOR = LightGBMFlavor()
