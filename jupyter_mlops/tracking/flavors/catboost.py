"""The CatBoost flavor: ``CatBoostClassifier``/``CatBoostRegressor``/``CatBoostRanker``
and the ``CatBoost`` model ``catboost.train`` returns, fitted on frames, arrays or a
``Pool``.

Saved as CatBoost's own binary model (``save_model(…, format="cbm")``: trees, feature
names, categorical features and the statistics CatBoost computes for them, the class
labels) with the class and its params beside it, and loaded with
``load_model(blob=…, format="cbm")`` into the same class. The cbm file is data, never
code; but CatBoost's C++ reader trusts it, so it is checked first (``catboost_check``).
"""

from __future__ import annotations

import ast
import os
import tempfile
from collections.abc import Mapping
from typing import Any

from ...errors import MlopsError
from .base import Flavor, Training, json_params, mark_categorical, model_error, pack, unpack
from .catboost_check import CbmError, check_cbm

__all__ = ["FLAVOR", "CatBoostFlavor"]

FORMAT = "catboost-cbm"
MODEL_FILE = "model.cbm"
# the classes a file may name: looked up in catboost by these exact names, nothing else
_CLASSES = ("CatBoostClassifier", "CatBoostRegressor", "CatBoostRanker", "CatBoost")
# the settings CatBoost chooses itself when not given (the learning rate from the data),
# recorded beside the ones the user set
_RESOLVED = (
    "learning_rate",
    "iterations",
    "depth",
    "loss_function",
    "eval_metric",
    "l2_leaf_reg",
    "border_count",
    "one_hot_max_size",
    "random_seed",
    "grow_policy",
    "bootstrap_type",
    "nan_mode",
)
LEARN = "learn"  # get_evals_result()'s name for the training set


def _cb() -> Any:
    try:
        import catboost
    except ImportError as exc:
        raise MlopsError(
            "This model is a CatBoost model, and catboost is not installed here: "
            "pip install 'jupyter_mlops[catboost]' (or catboost), then load it again."
        ) from exc
    return catboost


def _class_name(obj: Any) -> str | None:
    import catboost as cb

    cls = type(obj)
    if cls.__name__ in _CLASSES and getattr(cb, cls.__name__, None) is cls:
        return cls.__name__
    return None


def _curves(history: Any) -> dict[str, list[float]]:
    """``{"validation": {"Logloss": [...]}}`` as ``{"validation.Logloss": [...]}``."""
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


def _best_score(model: Any) -> float | None:
    """The score of the round kept: the eval metric on the last eval set (the one CatBoost
    picks the best iteration on)."""
    try:
        scores = model.get_best_score() or {}
        metric = str(model.get_all_params().get("eval_metric") or "")
    except Exception:
        return None
    held = [(k, v) for k, v in scores.items() if k != LEARN and isinstance(v, Mapping) and v]
    if not held:
        return None
    values = held[-1][1]
    name = metric.partition(":")[0]
    value = values.get(metric, values.get(name, next(iter(values.values()))))
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _importance(model: Any) -> dict[str, float] | None:
    """PredictionValuesChange per feature (CatBoost's default importance, which needs no
    data), highest first."""
    try:
        values = model.get_feature_importance(type="PredictionValuesChange")
    except Exception:  # ranking losses need a dataset for theirs
        return None
    names = [str(n) for n in model.feature_names_]
    scores = {n: float(v) for n, v in zip(names, values, strict=False)}
    return dict(sorted(scores.items(), key=lambda kv: -kv[1]))


def _default_names(names: list[str]) -> bool:
    """CatBoost's names for the columns of an array: "0", "1", …"""
    return names == [str(i) for i in range(len(names))]


class CatBoostFlavor(Flavor):
    """CatBoost's models: the scikit-learn style classes and ``catboost.train``'s."""

    name = "catboost"
    package = "catboost"
    formats = (FORMAT,)
    missing_values = True  # NaN in numeric features takes each split's "Min" side

    def handles(self, obj: Any) -> bool:
        return _class_name(obj) is not None

    def is_fitted(self, obj: Any) -> bool:
        return bool(obj.is_fitted())

    # -- save / load -----------------------------------------------------------------------
    def dump(self, model: Any) -> tuple[bytes, str]:
        name = _class_name(model)
        with tempfile.TemporaryDirectory(prefix="mlops-cbm-") as folder:
            path = os.path.join(folder, MODEL_FILE)
            model.save_model(path, format="cbm")
            with open(path, "rb") as f:
                raw = f.read()
        try:  # what load will refuse (text or embedding features) is not saved as cbm
            check_cbm(raw)
        except CbmError as exc:
            raise MlopsError(f"CatBoost's cbm of this model cannot be checked: {exc}") from exc
        params = model.get_params()
        info: dict[str, Any] = {"class": name, "catboost_version": self.version()}
        info["params"] = json_params(params)
        cats = params.get("cat_features")
        if cats is not None and "cat_features" not in info["params"]:
            try:  # more than a param's usual 16 values: kept whole, a refit needs them
                info["params"]["cat_features"] = [
                    c if isinstance(c, str) else int(c) for c in list(cats)
                ]
            except (TypeError, ValueError):
                pass
        classes = getattr(model, "classes_", None) if name == "CatBoostClassifier" else None
        if classes is not None:
            info["classes"] = [c.item() if hasattr(c, "item") else c for c in classes]
        return pack(FORMAT, {MODEL_FILE: raw}, info), FORMAT

    def load(self, data: bytes, format: str, trusted: Any = False) -> Any:
        files, info = unpack(data, FORMAT, (MODEL_FILE,))
        name = info.get("class")
        if name not in _CLASSES:
            raise model_error(FORMAT, f"it names the class {name!r}, not a CatBoost model")
        raw = files[MODEL_FILE]
        try:
            check_cbm(raw)  # CatBoost's reader trusts its input: check first
        except CbmError as exc:
            raise model_error(FORMAT, f"not a CatBoost cbm model: {exc}") from exc
        cb = _cb()
        cls = getattr(cb, name)
        params = info.get("params") if isinstance(info.get("params"), dict) else {}
        try:
            model = cls(**params)
        except Exception:  # params of another catboost version
            model = cls()
        try:
            model.load_model(blob=bytes(raw), format="cbm")  # bytes, never a path
        except Exception as exc:  # CatBoostError on a damaged model
            raise model_error(FORMAT, f"{type(exc).__name__}: {str(exc)[:300]}") from exc
        if name == "CatBoostClassifier":
            classes = getattr(model, "classes_", None)
            if classes is None or not len(classes):
                raise model_error(FORMAT, "a classifier saved without its classes")
        return model

    # -- capture --------------------------------------------------------------------------
    def training(self, model: Any, call: ast.Call | None, ns: Mapping[str, Any]) -> Training:
        out = Training(importance=_importance(model), importance_type="PredictionValuesChange")
        try:
            out.curves = _curves(model.get_evals_result())
            out.source = "get_evals_result()"
        except Exception:
            out.curves = {}
        if any(not key.startswith(f"{LEARN}.") for key in out.curves):  # an eval set ran
            best = model.get_best_iteration()
            if isinstance(best, int) and best >= 0:
                out.best_iteration = best
                out.best_score = _best_score(model)
        try:
            given = model.get_params()
            resolved = model.get_all_params()
        except Exception:
            return out
        chosen = {k: resolved[k] for k in _RESOLVED if k in resolved and k not in given}
        out.params = json_params(chosen)
        out.defaults = sorted(out.params)
        return out

    def signature(self, model: Any, x: Any, y: Any, frames: list[Any]) -> dict[str, Any]:
        from ...data.fingerprint import data_kind
        from ..estimators import inputs_for, signature

        names = [str(n) for n in (model.feature_names_ or [])]
        indices = [int(i) for i in model.get_cat_feature_indices()]
        if x is not None and data_kind(x) in ("dataframe", "ndarray"):
            sig = signature(model, x, y, frames)
        else:  # a Pool, or nothing known: the model's own names, dtypes from a frame in scope
            positional = _default_names(names)
            inputs, kind = inputs_for(None if positional else names, len(names), frames)
            output: dict[str, Any] = {"name": "prediction"}
            classes = getattr(model, "classes_", None)
            if _class_name(model) == "CatBoostClassifier" and classes is not None:
                output["classes"] = [c.item() if hasattr(c, "item") else c for c in classes]
                output["dtype"] = str(classes.dtype)
            sig = {
                "inputs": inputs,
                "input_kind": kind,
                "outputs": [output],
                "estimator": f"{type(model).__module__}.{type(model).__qualname__}",
            }
        inputs = [str(i["name"]) for i in sig.get("inputs", [])]
        if len(inputs) != len(names):
            return sig
        columns = [inputs[i] for i in indices if 0 <= i < len(inputs)]
        for i in indices:  # a categorical column no frame told the dtype of: text
            if 0 <= i < len(inputs) and sig["inputs"][i].get("dtype", "").startswith("float"):
                sig["inputs"][i]["dtype"] = "object"  # CatBoost takes text or integers here
        try:
            numeric = [int(i) for i in model._get_float_feature_indices()]
        except Exception:
            numeric = []
        for i in numeric:  # the numbers of an object array (mixed with its categories)
            if 0 <= i < len(inputs) and sig["inputs"][i].get("dtype") == "object":
                sig["inputs"][i]["dtype"] = "float64"
        sig = mark_categorical(
            sig, dict.fromkeys(columns), [x, *frames] if x is not None else frames
        )
        sig["categorical_indices"] = [i for i in indices if 0 <= i < len(inputs)]
        return sig

    def refuses_missing(self, model: Any, names: list[str]) -> set[str]:
        """CatBoost takes NaN in numeric features but none in categorical ones."""
        try:
            indices = model.get_cat_feature_indices()
        except Exception:
            return set()
        return {names[i] for i in indices if 0 <= i < len(names)}

    def servable(self, model: Any) -> Any:
        if _class_name(model) == "CatBoostClassifier":
            return ClassifierPredictor(model)
        return model


class ClassifierPredictor:
    """A ``CatBoostClassifier`` as a server calls it: its labels as one column (CatBoost
    returns a multiclass model's as an (n, 1) array), probabilities and classes as ever."""

    def __init__(self, model: Any):
        self.model = model
        self.classes_ = model.classes_

    def predict(self, x: Any) -> Any:
        """The predicted labels of rows ``x``."""
        out = self.model.predict(x)
        return out.ravel() if getattr(out, "ndim", 1) == 2 and out.shape[1] == 1 else out

    def predict_proba(self, x: Any) -> Any:
        """The class probabilities of rows ``x``, in the order of ``classes_``."""
        return self.model.predict_proba(x)


FLAVOR = CatBoostFlavor()
