"""The Keras 3 flavor: ``keras.Model`` in all its forms (``Sequential``, functional,
subclassed), on any backend.

Saved as Keras' own ``.keras`` archive (``model.save("….keras")``: the layer graph as
JSON, the weights as HDF5) inside the flavor container, and loaded with
``keras.saving.load_model(…, safe_mode=True)`` after ``keras_check`` has read the archive
as untrusted input: only Keras' own classes, no Lambda bytecode, no pickles, no links.

A model Keras cannot rebuild from its archive alone (a custom layer or a subclassed model:
only its Python class can, and that is code) is not saved unless the user trusts it:
``mlops.log_model(model, trusted=True)`` stores the archive with the custom classes
pickled beside it (cloudpickle), format ``keras-trusted``, which loads only with
``trusted=True``.

The backend: a process that loads a Keras model before importing Keras itself, with
``KERAS_BACKEND`` unset and no backend in ``~/.keras/keras.json``, gets the backend the
model was saved with if it is installed, else the first installed of TensorFlow, PyTorch
and JAX (``KERAS_BACKEND`` is set to it, as Keras reads it once, at import).
"""

from __future__ import annotations

import ast
import importlib.util
import json
import math
import os
import pickle
import sys
import tempfile
import types
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ...errors import MlopsError, UnsafeModelError, UntrustedModelError, ValidationError
from .base import Flavor, Training, call_arg, call_value, model_error, pack, unpack
from .keras_check import KerasCheckError, check_archive

__all__ = ["FLAVOR", "KerasFlavor", "KerasPredictor", "choose_backend"]

FORMAT = "keras"
TRUSTED_FORMAT = "keras-trusted"
MODEL_FILE = "model.keras"
CUSTOM_FILE = "custom_objects.pkl"
_BACKENDS = {"tensorflow": "tensorflow", "torch": "torch", "jax": "jax"}  # backend → package


def _configured_backend() -> str | None:
    """The backend ``keras.json`` names (Keras reads it when KERAS_BACKEND is unset)."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    try:
        doc = json.loads(Path(home, "keras.json").read_text())
    except (OSError, ValueError):
        return None
    found = doc.get("backend") if isinstance(doc, dict) else None
    return found if isinstance(found, str) and found else None


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a module set to None in sys.modules: not there
        return False


def choose_backend(saved_with: str | None = None) -> str | None:
    """The backend to give Keras before it is imported: None when Keras is loaded already
    or the user chose one (KERAS_BACKEND, keras.json); else the model's own backend if
    installed, else the first installed of tensorflow, torch and jax."""
    if "keras" in sys.modules or os.environ.get("KERAS_BACKEND") or _configured_backend():
        return None
    order = [saved_with] if saved_with in _BACKENDS else []
    order += [b for b in _BACKENDS if b not in order]
    for backend in order:
        if _installed(_BACKENDS[backend]):
            return backend
    return None


def _keras(saved_with: str | None = None) -> Any:
    backend = choose_backend(saved_with)
    if backend is not None:
        os.environ["KERAS_BACKEND"] = backend
    if not _installed("keras"):
        raise MlopsError(
            "This model is a Keras model, and keras is not installed here: "
            "pip install 'jupyter_mlops[keras]' (and a backend: torch, tensorflow or jax), "
            "then load it again."
        )
    try:
        import keras
    except Exception as exc:  # a backend named by KERAS_BACKEND or keras.json is missing
        raise MlopsError(
            f"Keras could not start ({_short(exc, 200)}): set KERAS_BACKEND to an installed "
            f"backend (torch, tensorflow or jax; it is {os.environ.get('KERAS_BACKEND')!r} "
            "here) before Keras is imported, then load the model again."
        ) from exc
    return keras


def _class_path(obj: Any) -> str:
    cls = obj if isinstance(obj, type) else type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def _is_keras_class(cls: type) -> bool:
    return (cls.__module__ or "").partition(".")[0] == "keras"


def _custom_classes(model: Any) -> dict[str, type]:
    """The classes of a model's layers (and of the model) that are not Keras' own, by the
    name its archive gives them: what only the user's code can rebuild."""
    import keras

    try:
        layers = list(model._flatten_layers(include_self=True, recursive=True))
    except Exception:
        layers = [model]
    return {
        keras.saving.get_registered_name(type(layer)): type(layer)
        for layer in layers
        if not _is_keras_class(type(layer))
    }


def _custom_functions(model: Any) -> dict[str, Any]:
    """A loss function of the user's own (a safe load rebuilds the model without it:
    uncompiled, predicting the same)."""
    loss = getattr(model, "loss", None)
    if isinstance(loss, types.FunctionType) and not (loss.__module__ or "").startswith("keras"):
        return {loss.__name__: loss}
    return {}


def _short(exc: BaseException, limit: int = 300) -> str:
    """An exception as one line (Keras' messages run over many)."""
    return f"{type(exc).__name__}: {' '.join(str(exc).split())[:limit]}"


def _save(model: Any) -> bytes:
    """The model's ``.keras`` archive (Keras writes paths only)."""
    with tempfile.TemporaryDirectory(prefix="mlops-keras-") as tmp:
        path = os.path.join(tmp, MODEL_FILE)
        model.save(path)
        return Path(path).read_bytes()


def _load(data: bytes, keras: Any, **options: Any) -> Any:
    with tempfile.TemporaryDirectory(prefix="mlops-keras-") as tmp:
        path = os.path.join(tmp, MODEL_FILE)
        Path(path).write_bytes(data)
        return keras.saving.load_model(path, **options)


def _float(value: Any) -> Any:
    """A float32 setting (learning_rate=0.01 is held as 0.009999999776) as it was typed."""
    if isinstance(value, float) and math.isfinite(value):
        return float(f"{value:.7g}")
    return value


def _setting(value: Any) -> Any:
    """A compile setting as a param: a name, a number, or the class of an object."""
    if isinstance(value, dict) and "class_name" in value:
        return (
            value.get("class_name")
            if value.get("class_name") != "function"
            else value.get("config")
        )
    if isinstance(value, list):  # metrics=["accuracy", "auc"] as "accuracy, auc"
        items = [_setting(v) for v in value[:16]]
        if items and all(isinstance(i, str) for i in items):
            return ", ".join(items)
        return items if all(isinstance(i, int | float | bool) for i in items) else None
    if isinstance(value, str | int | float | bool) or value is None:
        return _float(value)
    return None


def _compile_params(model: Any) -> dict[str, Any]:
    """``model.compile(...)``'s settings: the optimizer's class and its config, the loss,
    the metrics (``optimizer``, ``optimizer.learning_rate``, ``loss``, ``metrics``)."""
    out: dict[str, Any] = {}
    try:
        config = model.get_compile_config() or {}
    except Exception:
        config = {}
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None:
        out["optimizer"] = type(optimizer).__name__
        try:
            settings = optimizer.get_config()
        except Exception:
            settings = {}
        for key, value in settings.items():
            if key == "name" or value is None:
                continue
            if isinstance(value, dict):  # a learning-rate schedule
                value = _setting(value)
            if isinstance(value, str | int | float | bool):
                out[f"optimizer.{key}"] = _float(value)
    for key in ("loss", "metrics", "loss_weights", "weighted_metrics"):
        value = _setting(config.get(key))
        if value is not None and value != []:
            out[key] = value
    try:
        out["param_count"] = int(model.count_params())
    except Exception:
        pass
    return out


def _tensor_spec(model: Any, x: Any) -> dict[str, Any] | None:
    """The input tensor's shape (batch as -1) and dtype: from the training data when
    known, else from the model's inputs."""
    shape = getattr(x, "shape", None) if x is not None else None
    dtype = getattr(x, "dtype", None) if x is not None else None
    if hasattr(x, "columns"):  # a DataFrame: Keras takes its values as one float tensor
        return {"shape": [-1, len(x.columns)], "dtype": "float32"}
    if shape is None:
        try:
            spec = model.inputs[0]
            shape, dtype = spec.shape, spec.dtype
        except Exception:
            return None
    try:
        dims = [-1, *(int(d) if d is not None else -1 for d in list(shape)[1:])]
    except (TypeError, ValueError):
        return None
    return {"shape": dims, "dtype": str(dtype).replace("torch.", "") if dtype else "float32"}


class KerasFlavor(Flavor):
    """Keras 3 models."""

    name = "keras"
    package = "keras"
    formats = (FORMAT, TRUSTED_FORMAT)
    missing_values = False  # a NaN input is a NaN output

    def handles(self, obj: Any) -> bool:
        keras = sys.modules.get("keras")
        model = getattr(keras, "Model", None)
        return model is not None and isinstance(obj, model)

    def is_fitted(self, obj: Any) -> bool:
        if not getattr(obj, "built", False):
            return False
        if getattr(getattr(obj, "history", None), "epoch", None):
            return True
        iterations = getattr(getattr(obj, "optimizer", None), "iterations", None)
        if iterations is None:
            return False
        try:
            value = iterations.numpy() if hasattr(iterations, "numpy") else iterations
            return int(value) > 0
        except Exception:
            return False

    def requires(self, model: Any) -> list[str]:
        """Keras itself (a subclassed model's class lives in ``__main__``) and its backend."""
        backend = sys.modules["keras"].backend.backend()
        return ["keras", _BACKENDS.get(backend, backend)]

    # -- save / load -----------------------------------------------------------------------
    def _info(self, model: Any) -> dict[str, Any]:
        keras = sys.modules["keras"]
        return {
            "class": _class_path(model),
            "keras_version": self.version(),
            "backend": keras.backend.backend(),
        }

    def dump(self, model: Any) -> tuple[bytes, str]:
        custom = _custom_classes(model)
        if custom:
            names = ", ".join(sorted(_class_path(c) for c in custom.values())[:5])
            raise UnsafeModelError(self._unsafe(f"it uses {names}, which only its own code builds"))
        try:
            data = _save(model)
        except Exception as exc:
            raise UnsafeModelError(
                self._unsafe(f"Keras could not save it ({_short(exc, 200)})")
            ) from exc
        try:
            check_archive(data)
        except KerasCheckError as exc:
            raise UnsafeModelError(self._unsafe(str(exc))) from exc
        return pack(FORMAT, {MODEL_FILE: data}, self._info(model)), FORMAT

    @staticmethod
    def _unsafe(problem: str) -> str:
        return (
            f"This Keras model cannot be saved in a form that loads without running code: "
            f"{problem}. To keep it anyway, call mlops.log_model(model, trusted=True) in the "
            "tracked cell (its code is pickled; loading it then needs trusted=True)."
        )

    def dump_trusted(self, model: Any) -> tuple[bytes, str]:
        try:
            import cloudpickle as pickler  # pickles classes of __main__ by value
        except ImportError:
            pickler = pickle
        custom = {**_custom_functions(model), **_custom_classes(model)}
        try:
            data = _save(model)
        except Exception as exc:  # a layer without get_config(): Keras writes no archive
            raise ValidationError(
                f"Keras cannot save this model, even trusted ({_short(exc, 200)}). Give its "
                "custom layers a get_config() (see Keras' serialization guide), then log it "
                "again."
            ) from exc
        blob = pickler.dumps(custom, protocol=pickle.HIGHEST_PROTOCOL)
        info = {**self._info(model), "custom_objects": sorted(custom)}
        return pack(TRUSTED_FORMAT, {MODEL_FILE: data, CUSTOM_FILE: blob}, info), TRUSTED_FORMAT

    def load(self, data: bytes, format: str, trusted: Any = False) -> Any:
        if format == TRUSTED_FORMAT:
            return self._load_trusted(data, trusted)
        files, info = unpack(data, FORMAT, (MODEL_FILE,))
        try:
            check_archive(files[MODEL_FILE])
        except KerasCheckError as exc:
            raise model_error(FORMAT, str(exc)) from exc
        keras = _keras(info.get("backend"))
        try:
            return _load(files[MODEL_FILE], keras, safe_mode=True)
        except Exception as exc:
            first = exc
        # a loss or metric of the user's own (a function only their code defines): the
        # layers and weights still load, without the compile settings
        try:
            model = _load(files[MODEL_FILE], keras, safe_mode=True, compile=False)
        except Exception:
            raise model_error(FORMAT, _short(first)) from first
        warnings.warn(
            "jupyter_mlops: this Keras model loaded without its compile settings "
            f"({_short(first, 200)}); it predicts as saved. Call "
            "model.compile(...) before training it again.",
            stacklevel=2,
        )
        return model

    def _load_trusted(self, data: bytes, trusted: Any) -> Any:
        if trusted is not True:
            raise UntrustedModelError(
                "This Keras model was saved with its custom code pickled (trusted=True when "
                "it was logged), which runs when it is loaded. Load it with trusted=True only "
                "if you trust whoever wrote this store."
            )
        files, info = unpack(data, TRUSTED_FORMAT, (MODEL_FILE, CUSTOM_FILE))
        keras = _keras(info.get("backend"))
        custom = pickle.loads(files[CUSTOM_FILE])
        if not isinstance(custom, dict):
            raise model_error(TRUSTED_FORMAT, f"{CUSTOM_FILE} is not a dict of custom objects")
        try:
            return _load(files[MODEL_FILE], keras, custom_objects=custom, safe_mode=False)
        except Exception as exc:
            raise model_error(TRUSTED_FORMAT, _short(exc)) from exc

    # -- capture --------------------------------------------------------------------------
    def training(self, model: Any, call: ast.Call | None, ns: Mapping[str, Any]) -> Training:
        out = Training(params=_compile_params(model))
        history = getattr(model, "history", None)
        curves = getattr(history, "history", None)
        if isinstance(curves, Mapping):
            for key, values in curves.items():
                try:
                    points = [float(v) for v in values]
                except (TypeError, ValueError):
                    continue
                if points:
                    out.curves[str(key)] = points
            epochs = list(getattr(history, "epoch", None) or [])
            out.start = int(epochs[0]) if epochs else 0
            out.source = "model.history.history (one value per epoch)"
            planned = (getattr(history, "params", None) or {}).get("epochs")
            if isinstance(planned, int):
                out.params["epochs"] = planned
            steps = (getattr(history, "params", None) or {}).get("steps")
            if isinstance(steps, int):
                out.params["steps_per_epoch"] = steps
        return out

    def fit_params(self, model: Any, call: ast.Call, ns: Mapping[str, Any]) -> dict[str, Any]:
        """``model.fit(X, y, batch_size=32, epochs=3, validation_split=0.2, …)``: the
        settings the call names (positions as ``Model.fit`` takes them)."""
        out: dict[str, Any] = {}
        for index, key in (
            (2, "batch_size"),
            (3, "epochs"),
            (None, "validation_split"),
            (None, "shuffle"),
            (None, "initial_epoch"),
            (None, "steps_per_epoch"),
            (None, "validation_freq"),
        ):
            value = call_value(call_arg(call, index, key), ns)
            if isinstance(value, bool | int | float) and not isinstance(value, complex):
                out[key] = value
        return out

    def signature(self, model: Any, x: Any, y: Any, frames: list[Any]) -> dict[str, Any]:
        from ...data.fingerprint import data_kind
        from ..estimators import inputs_for, signature

        tensor = _tensor_spec(model, x)
        kind = data_kind(x) if x is not None else None
        if kind == "dataframe" or (kind == "ndarray" and getattr(x, "ndim", 0) == 2):
            sig = signature(model, x, y, frames)
        else:
            shape = (tensor or {}).get("shape") or []
            n = shape[1] if len(shape) == 2 and shape[1] > 0 else None
            inputs, kind = inputs_for(None, n, ())
            dtype = (tensor or {}).get("dtype") or "float32"
            for item in inputs:
                item["dtype"] = dtype
            output: dict[str, Any] = {"name": "prediction"}
            if hasattr(y, "dtype"):
                output["dtype"] = str(y.dtype).replace("torch.", "")
            sig = {
                "inputs": inputs,
                "input_kind": kind if inputs else "tensor",
                "outputs": [output],
                "estimator": _class_path(model),
            }
        if tensor is not None:
            sig["tensor"] = tensor
        return sig

    def servable(self, model: Any) -> Any:
        return KerasPredictor(model)


class KerasPredictor:
    """A Keras model as a server calls it: ``predict`` on a DataFrame or a 2-D array, one
    batch, as a float tensor; a single output column comes back as one value per row."""

    def __init__(self, model: Any):
        self.model = model
        try:
            self.dtype = str(model.inputs[0].dtype)
        except Exception:
            self.dtype = "float32"

    def predict(self, x: Any) -> Any:
        """The model's output for rows ``x``."""
        import numpy as np

        if hasattr(x, "to_numpy"):
            x = x.to_numpy(dtype=self.dtype)
        else:
            x = np.asarray(x, dtype=self.dtype)
        out = np.asarray(self.model.predict_on_batch(x))
        if out.ndim == 2 and out.shape[1] == 1:
            out = out[:, 0]
        return out


FLAVOR = KerasFlavor()
