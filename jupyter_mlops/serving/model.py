"""A model loaded for serving: the estimator, its version, its input schema, and one
``predict`` that returns named outputs (the prediction and, for classifiers, the class
probabilities).

Two sources provide it: the store (a model reference such as ``churn@production``, which
follows the alias when it moves) and an exported folder (``jupyter-mlops export``), which
is what a container serves.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import MlopsError, NotFoundError, ValidationError
from .signature import InputSchema, oip_datatype

__all__ = [
    "EXPORT_MANIFEST",
    "ServedModel",
    "cached_model",
    "load_directory",
    "load_failure",
    "load_version",
]

EXPORT_MANIFEST = "mlops-model.json"


@dataclass
class ServedModel:
    """An estimator ready to predict, with the version it came from."""

    name: str
    version: int
    model: Any
    signature: dict[str, Any]
    schema: InputSchema
    flavor: str = ""
    loaded: float = field(default_factory=time.time)

    @property
    def ref(self) -> str:
        """``name@version``."""
        return f"{self.name}@{self.version}"

    @property
    def has_proba(self) -> bool:
        """Whether the model can output class probabilities."""
        return hasattr(self.model, "predict_proba") and hasattr(self.model, "classes_")

    def predict(self, frame: Any, outputs: tuple[str, ...] = ("predict",)) -> dict[str, Any]:
        """Named output arrays for a validated frame: ``predict`` and ``predict_proba``."""
        result: dict[str, Any] = {}
        try:
            if "predict" in outputs:
                result["predict"] = np.asarray(self.model.predict(frame))
            if "predict_proba" in outputs:
                if not self.has_proba:
                    raise ValidationError(
                        f"Model {self.ref} has no predict_proba; ask for the 'predict' output."
                    )
                result["predict_proba"] = np.asarray(self.model.predict_proba(frame))
        except MlopsError:
            raise
        except (ValueError, TypeError) as exc:
            raise ValidationError(f"The model could not predict on this input: {exc}") from exc
        return result

    def output_metadata(self) -> list[dict[str, Any]]:
        """The outputs as OIP tensor metadata."""
        outputs = (self.signature.get("outputs") or [{}])[0]
        classes = outputs.get("classes")
        dtype = outputs.get("dtype") or "float64"
        meta = [{"name": "predict", "datatype": oip_datatype(dtype), "shape": [-1]}]
        if self.has_proba:
            width = len(classes) if classes else -1
            meta.append({"name": "predict_proba", "datatype": "FP64", "shape": [-1, width]})
        return meta

    def class_labels(self) -> list[Any] | None:
        """The class labels of a classifier, in the order of its probability columns."""
        classes = getattr(self.model, "classes_", None)
        if classes is None:
            return None
        return [c.item() if hasattr(c, "item") else c for c in classes]


FEATURE_NAMES_WARNING = "X does not have valid feature names"


def probe_positional(model: Any, schema: InputSchema) -> bool:
    """Whether an all-numeric model fitted on a DataFrame predicts the same from a plain
    array in signature order (true for estimators that use names only to check them; false
    for pipelines that select columns by name, which keep getting DataFrames)."""
    if schema.ndarray:
        return True
    names = getattr(model, "feature_names_in_", None)
    if names is None or [str(n) for n in names] != schema.names:
        return False
    if any(c.kind not in ("float", "int", "bool") for c in schema.columns):
        return False
    import warnings

    import pandas as pd

    rng = np.random.default_rng(0)
    probe = np.abs(rng.normal(1.0, 0.5, size=(8, len(schema.names)))) + 0.1
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            by_name = np.asarray(model.predict(pd.DataFrame(probe, columns=schema.names)))
            by_position = np.asarray(model.predict(probe))
    except Exception:
        return False
    return by_name.shape == by_position.shape and bool(np.all(by_name == by_position))


def _build(name: str, version: int, model: Any, signature: dict[str, Any], flavor: str) -> Any:
    schema = InputSchema.from_signature(signature, model)
    schema.positional = probe_positional(model, schema)
    return ServedModel(name, version, model, signature, schema, flavor)


def load_failure(mv: Any, exc: Exception) -> MlopsError:
    """The error for a model file that does not rebuild (usually a missing package)."""
    return MlopsError(
        f"Model {mv.ref} failed to load: {type(exc).__name__}: {exc}. Check that the "
        f"packages it needs are installed ({', '.join(mv.requirements) or 'see its card'})."
    )


def load_version(mv: Any, *, trusted: bool | list[str] = False) -> ServedModel:
    """Load a registry ``ModelVersion`` for serving (hash-checked, skops by default)."""
    try:
        model = mv.load(trusted=trusted)
    except MlopsError:
        raise
    except Exception as exc:
        raise load_failure(mv, exc) from exc
    if not hasattr(model, "predict"):
        raise MlopsError(f"Model {mv.ref} ({type(model).__name__}) has no predict method.")
    return _build(mv.name, mv.version, model, mv.signature, mv.flavor or "")


_CACHE: OrderedDict[tuple[str, str, str, str], ServedModel] = OrderedDict()
_CACHE_LOCK = threading.Lock()


def cached_model(mv: Any, *, trusted: bool | list[str] = False) -> ServedModel:
    """``load_version`` remembered per artifact (the last four), for batch scoring and
    monitors that score again and again in one process; a moved alias loads anew."""
    key = (mv.name, str(mv.version), mv.object_hash, repr(trusted))
    with _CACHE_LOCK:
        found = _CACHE.get(key)
        if found is not None:
            _CACHE.move_to_end(key)
            return found
    served = load_version(mv, trusted=trusted)
    with _CACHE_LOCK:
        _CACHE[key] = served
        while len(_CACHE) > 4:
            _CACHE.popitem(last=False)
    return served


def load_directory(path: str | Path, *, trusted: bool | list[str] = False) -> ServedModel:
    """Load a model exported with ``jupyter-mlops export`` (its ``mlops-model.json`` and the
    model file it names)."""
    from ..tracking.modelio import load_model_bytes

    folder = Path(path)
    manifest_path = folder / EXPORT_MANIFEST
    if not manifest_path.is_file():
        raise NotFoundError(
            f"{folder} is not an exported model folder: it has no {EXPORT_MANIFEST}. "
            "Create one with `jupyter-mlops export NAME@ALIAS --format docker OUTDIR`."
        )
    manifest = json.loads(manifest_path.read_text())
    data = (folder / manifest["model_file"]).read_bytes()
    import hashlib

    if hashlib.sha256(data).hexdigest() != manifest["object_hash"]:
        raise MlopsError(
            f"{folder / manifest['model_file']} does not match the hash in {EXPORT_MANIFEST}; "
            "export the model again."
        )
    model = load_model_bytes(data, manifest["format"], trusted=trusted)
    return _build(
        manifest["name"],
        int(manifest["version"]),
        model,
        manifest.get("signature") or {},
        manifest.get("flavor") or "",
    )
