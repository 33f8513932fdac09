"""The XGBoost flavor: ``XGBClassifier``/``XGBRegressor`` (and the ranker and random
forest wrappers) and a ``Booster`` returned by ``xgb.train``.

Saved as XGBoost's UBJSON model (``save_raw("ubj")``, what ``save_model("….ubj")``
writes) with the wrapper's class and params beside it, and loaded with ``load_model``
into the same class: the model file is data (trees, params, feature names), never code.
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
from .xgboost_check import ModelCheckError, check_model

__all__ = ["FLAVOR", "XGBoostFlavor"]

FORMAT = "xgboost-ubj"
MODEL_FILE = "model.ubj"
# the classes a file may name: looked up in xgboost by these exact names, nothing else
_WRAPPERS = ("XGBClassifier", "XGBRegressor", "XGBRanker", "XGBRFClassifier", "XGBRFRegressor")
BOOSTER = "Booster"


def _xgb() -> Any:
    try:
        import xgboost
    except ImportError as exc:
        raise MlopsError(
            "This model is an XGBoost model, and xgboost is not installed here: "
            "pip install 'jupyter_mlops[xgboost]' (or xgboost), then load it again."
        ) from exc
    return xgboost


def _booster(model: Any) -> Any:
    return model if type(model).__name__ == BOOSTER else model.get_booster()


def _class_name(obj: Any) -> str | None:
    import xgboost as xgb

    cls = type(obj)
    if cls is xgb.Booster:
        return BOOSTER
    if cls.__name__ in _WRAPPERS and getattr(xgb, cls.__name__, None) is cls:
        return cls.__name__
    return None


def _curves(history: Any) -> dict[str, list[float]]:
    """``{"validation_0": {"logloss": [...]}}`` as ``{"validation_0.logloss": [...]}``."""
    out: dict[str, list[float]] = {}
    if not isinstance(history, Mapping):
        return out
    for dataset, metrics in history.items():
        if not isinstance(metrics, Mapping):
            continue
        for metric, values in metrics.items():
            try:
                # a metric with a standard deviation (xgb.cv) is a (mean, std) pair
                points = [float(v[0] if isinstance(v, tuple | list) else v) for v in values]
            except (TypeError, ValueError, IndexError):
                continue
            if points:
                out[f"{dataset}.{metric}"] = points
    return out


def _parse_eval(text: str, names: list[str]) -> dict[str, float]:
    """``"[9]\ttrain-logloss:0.15\tvalid-auc:0.96"`` as ``{"train.logloss": 0.15, …}``
    (eval set names are matched whole: both they and metric names may hold a ``-``)."""
    out: dict[str, float] = {}
    for part in text.split("\t")[1:]:
        key, _, value = part.rpartition(":")
        for name in sorted(names, key=len, reverse=True):
            if key.startswith(f"{name}-"):
                try:
                    out[f"{name}.{key[len(name) + 1 :]}"] = float(value)
                except ValueError:
                    pass
                break
    return out


def _importance(booster: Any) -> dict[str, float]:
    """Gain per feature (the average gain of its splits, what ``feature_importances_``
    shows by default; features no split uses get 0), highest first."""
    names = booster.feature_names or [f"f{i}" for i in range(booster.num_features())]
    gain = booster.get_score(importance_type="gain")
    scores = {str(n): float(gain.get(n, 0.0)) for n in names}
    return dict(sorted(scores.items(), key=lambda kv: -kv[1]))


class XGBoostFlavor(Flavor):
    """XGBoost's scikit-learn wrappers and boosters."""

    name = "xgboost"
    package = "xgboost"
    formats = (FORMAT,)
    missing_values = True  # boosted trees send them down each split's default branch

    def handles(self, obj: Any) -> bool:
        return _class_name(obj) is not None

    def is_fitted(self, obj: Any) -> bool:
        if type(obj).__name__ == BOOSTER:
            return obj.num_boosted_rounds() > 0
        return bool(obj.__sklearn_is_fitted__())

    # -- save / load -----------------------------------------------------------------------
    def dump(self, model: Any) -> tuple[bytes, str]:
        name = _class_name(model)
        raw = bytes(_booster(model).save_raw("ubj"))
        info: dict[str, Any] = {"class": name, "xgboost_version": self.version()}
        if name != BOOSTER:
            info["params"] = json_params(model.get_params(deep=False))
        return pack(FORMAT, {MODEL_FILE: raw}, info), FORMAT

    def load(self, data: bytes, format: str, trusted: Any = False) -> Any:
        files, info = unpack(data, FORMAT, (MODEL_FILE,))
        xgb = _xgb()
        name = info.get("class")
        if name != BOOSTER and name not in _WRAPPERS:
            raise model_error(FORMAT, f"it names the class {name!r}, not an XGBoost model")
        try:
            check_model(files[MODEL_FILE])  # XGBoost's parser trusts its input: check first
        except ModelCheckError as exc:
            raise model_error(FORMAT, str(exc)) from exc
        raw = bytearray(files[MODEL_FILE])  # bytes, never a path: load_model reads paths
        try:
            if name == BOOSTER:
                model = xgb.Booster()
                model.load_model(raw)
                return model
            cls = getattr(xgb, name)
            params = info.get("params") if isinstance(info.get("params"), dict) else {}
            try:
                model = cls(**params)
            except (TypeError, ValueError):  # params of another xgboost version
                model = cls()
            model.load_model(raw)
            # load_model sets these from the booster's config (a base_score it estimated):
            # the params given at fit time are what a clone must train with again
            for key in (
                "objective",
                "booster",
                "base_score",
                "feature_types",
                "enable_categorical",
            ):
                if key in params:
                    setattr(model, key, params[key])
            return model
        except MlopsError:
            raise
        except Exception as exc:  # XGBoostError on a damaged or foreign model file
            raise model_error(FORMAT, f"{type(exc).__name__}: {str(exc)[:300]}") from exc

    # -- capture --------------------------------------------------------------------------
    def training(self, model: Any, call: ast.Call | None, ns: Mapping[str, Any]) -> Training:
        booster = _booster(model)
        out = Training(importance=_importance(booster))
        if type(model).__name__ == BOOSTER:
            self._train_call(booster, call, ns, out)
        else:
            try:
                out.curves = _curves(model.evals_result())
            except Exception:  # fitted without an eval_set
                out.curves = {}
            out.source = "evals_result()"
        attrs = booster.attributes()
        if "best_iteration" in attrs:  # early stopping ran
            try:
                out.best_iteration = int(attrs["best_iteration"])
                out.best_score = float(attrs["best_score"])
            except (KeyError, ValueError):
                pass
        return out

    def _train_call(
        self, booster: Any, call: ast.Call | None, ns: Mapping[str, Any], out: Training
    ) -> None:
        """``bst = xgb.train(params, dtrain, num_boost_round, evals=…, evals_result=…)``:
        the params dict, and the curves from ``evals_result`` when the cell passed one, else
        each eval set's final value (computed now: a Booster keeps no history)."""
        if call is None:
            return
        params = call_value(call_arg(call, 0, "params"), ns)
        if isinstance(params, Mapping):
            out.params.update(json_params({str(k): v for k, v in params.items()}))
        rounds = call_value(call_arg(call, 2, "num_boost_round"), ns)
        out.params["num_boost_round"] = rounds if isinstance(rounds, int) else 10
        history = call_value(call_arg(call, None, "evals_result"), ns)
        if isinstance(history, Mapping) and history:
            out.curves = _curves(history)
            out.source = str(ast.unparse(call_arg(call, None, "evals_result")))
            return
        evals = call_value(call_arg(call, None, "evals"), ns)
        sets = [
            (d, n)
            for d, n in (e for e in (evals or []) if isinstance(e, tuple) and len(e) == 2)
            if isinstance(n, str) and type(d).__name__ in ("DMatrix", "QuantileDMatrix")
        ]
        if not sets:
            return
        last = booster.num_boosted_rounds() - 1
        try:
            final = _parse_eval(booster.eval_set(sets, iteration=last), [n for _, n in sets])
        except Exception:
            return
        # one point per eval set and metric, at the last round: the values of the model kept
        out.curves = {key: [value] for key, value in final.items()}
        out.start = last
        out.source = "Booster.eval_set(evals) after training"

    def signature(self, model: Any, x: Any, y: Any, frames: list[Any]) -> dict[str, Any]:
        from ..estimators import signature

        booster = _booster(model)
        names = booster.feature_names
        if type(model).__name__ == BOOSTER:
            from ..estimators import inputs_for

            inputs, kind = inputs_for(
                [str(n) for n in names] if names else None, booster.num_features(), frames
            )
            sig = {
                "inputs": inputs,
                "input_kind": kind,
                "outputs": [{"name": "prediction", "dtype": "float32"}],
                "estimator": "xgboost.core.Booster",
            }
        else:
            sig = signature(model, x, y, frames)
        types = booster.feature_types or []
        categorical = {str(n): None for n, t in zip(names or [], types, strict=False) if t == "c"}
        return mark_categorical(sig, categorical, [x, *frames] if x is not None else frames)

    def servable(self, model: Any) -> Any:
        return BoosterPredictor(model) if type(model).__name__ == BOOSTER else model

    def scorable(self, model: Any) -> Any:
        """A Booster by its objective: probabilities (``binary:logistic``,
        ``multi:softprob``) score as a classifier, anything else as a regressor."""
        if type(model).__name__ != BOOSTER:
            return model
        import json

        from .scoring import ProbabilityClassifier, ValueRegressor

        learner = json.loads(model.save_config())["learner"]
        objective = str(learner["objective"]["name"])
        n_classes = int(learner["learner_model_param"].get("num_class") or 0)
        if objective in ("binary:logistic", "reg:logistic"):
            return ProbabilityClassifier(BoosterPredictor(model), 2)
        if objective == "multi:softprob":
            return ProbabilityClassifier(BoosterPredictor(model), n_classes)
        return ValueRegressor(BoosterPredictor(model))

    def input_adapter(self, signature: Mapping[str, Any]) -> Callable[[Any], Any] | None:
        return categorical_adapter(signature)

    # -- export ---------------------------------------------------------------------------
    def to_onnx(self, model: Any, inputs: OnnxInputs) -> Any:
        """onnxmltools' XGBoost converter, on a copy whose features are unnamed (the
        converter reads split features as ``f0``, ``f1``, …; the ONNX input is positional)."""
        from onnxmltools.convert import convert_xgboost
        from onnxmltools.convert.common.data_types import FloatTensorType

        booster = _booster(model)
        categorical = [
            str(n)
            for n, t in zip(booster.feature_names or [], booster.feature_types or [], strict=False)
            if t == "c"
        ]
        if categorical:
            raise NotImplementedError(
                f"categorical features ({', '.join(categorical[:5])}): onnxmltools' XGBoost "
                "converter has no categorical splits"
            )
        copy = self.load(*self.dump(model))
        _booster(copy).feature_names = None
        _booster(copy).feature_types = None
        width = len(inputs.columns)
        return convert_xgboost(
            copy,
            initial_types=[("input", FloatTensorType([None, width]))],
            target_opset=inputs.opset,
        )

    def register_skl2onnx(self) -> None:
        import xgboost as xgb
        from onnxmltools.convert.xgboost.operator_converters.XGBoost import convert_xgboost
        from skl2onnx import update_registered_converter
        from skl2onnx.common.shape_calculator import (
            calculate_linear_classifier_output_shapes,
            calculate_linear_regressor_output_shapes,
        )

        options = {"nocl": [True, False], "zipmap": [True, False, "columns"]}
        update_registered_converter(
            xgb.XGBClassifier,
            "XGBoostXGBClassifier",
            calculate_linear_classifier_output_shapes,
            convert_xgboost,
            options=options,
        )
        update_registered_converter(
            xgb.XGBRegressor,
            "XGBoostXGBRegressor",
            calculate_linear_regressor_output_shapes,
            convert_xgboost,
        )

    def export_mlflow(self, model: Any, folder: Path) -> MlflowFlavor:
        """MLflow's ``xgboost`` flavor: ``model.ubj`` written by XGBoost's own
        ``save_model`` and the class ``mlflow.xgboost`` rebuilds it into."""
        name = _class_name(model)
        path = folder / MODEL_FILE
        model.save_model(str(path))
        cls = type(model)
        model_class = f"{cls.__module__}.{cls.__qualname__}"
        flavors = {
            "python_function": {"loader_module": "mlflow.xgboost", "data": MODEL_FILE},
            "xgboost": {
                "code": None,
                "data": MODEL_FILE,
                "model_class": model_class,
                "model_format": "ubj",
                "xgb_version": self.version(),
            },
        }
        # a Booster loads without scikit-learn; the wrappers need it
        drop = ["skops", "scikit-learn"] if name == BOOSTER else ["skops"]
        return MlflowFlavor(flavors, MODEL_FILE, drop_requirements=drop)


class BoosterPredictor:
    """A ``Booster`` as a server calls it: ``predict`` on a DataFrame or a 2-D array
    (``inplace_predict``, as ``bst.predict(xgb.DMatrix(X))`` would, without the copy)."""

    def __init__(self, booster: Any):
        self.booster = booster

    def predict(self, x: Any) -> Any:
        """The booster's output for rows ``x`` (probabilities for a logistic objective)."""
        return self.booster.inplace_predict(x)


FLAVOR = XGBoostFlavor()
