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
from collections.abc import Callable
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
    "read_manifest",
]

EXPORT_MANIFEST = "mlops-model.json"


class PredictError(ValidationError):
    """The model refused a validated input (HTTP 400); counted as ``model_error``."""

    reason = "model_error"


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
    # the model flavor's step from a validated request frame to what the model takes
    # (pandas Categoricals for a LightGBM or XGBoost model trained on them), or None
    prepare: Callable[[Any], Any] | None = None

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
        if self.schema.checks_finite:
            from sklearn import config_context

            # every value was checked finite (or NaN where the model takes it) already:
            # scikit-learn's own pass over the input would only repeat that
            with config_context(assume_finite=True):
                return self._predict(frame, outputs)
        return self._predict(frame, outputs)

    def _predict(self, frame: Any, outputs: tuple[str, ...]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        if self.prepare is not None:
            frame = self.prepare(frame)
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
            raise PredictError(f"The model could not predict on this input: {exc}") from exc
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


def _build(
    name: str,
    version: int,
    model: Any,
    signature: dict[str, Any],
    flavor: str,
    trained_with: Any = (),
) -> Any:
    from ..tracking.flavors import flavor_for

    kind = flavor_for(model)
    prepare = kind.input_adapter(signature) if kind is not None else None
    # the schema reads the model as fitted (its flavor says whether it takes missing values)
    schema = InputSchema.from_signature(signature, model, trained_with)
    if kind is not None:
        model = kind.servable(model)  # an object with predict (an XGBoost Booster's is not)
    schema.positional = prepare is None and probe_positional(model, schema)
    return ServedModel(name, version, model, signature, schema, flavor, prepare=prepare)


def training_stats(mv: Any) -> dict[str, dict[str, Any]]:
    """{column: statistics} of the training data recorded on a model version (the data
    version holding its input columns), or {} when none was recorded or it is gone."""
    from ..data.versions import resolve

    features = [str(i["name"]) for i in mv.signature.get("inputs") or []]
    recorded = [d for d in mv.data or [] if d.get("ref")]
    recorded.sort(key=lambda d: list(d.get("shape") or [])[1:] != [len(features)])
    for item in recorded:
        try:
            stats = resolve(item["ref"], mv._store).stats
        except Exception:
            continue
        if features and all(c in stats for c in features):
            return stats
    return {}


def _trained_with(mv: Any) -> set[str]:
    """For versions registered before signatures recorded ``trained_with_missing``: the
    input columns their training data version's statistics count nulls in."""
    if "trained_with_missing" in mv.signature:
        return set()
    try:
        stats = training_stats(mv)
    except Exception:
        return set()
    return {name for name, s in stats.items() if (s.get("nulls") or 0) > 0}


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
    return _build(mv.name, mv.version, model, mv.signature, mv.flavor or "", _trained_with(mv))


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


def _manifest_error(manifest_path: Path, problem: str) -> ValidationError:
    return ValidationError(
        f"{manifest_path} {problem}; this folder cannot be served as it is. Export the model "
        "again (`jupyter-mlops export NAME@ALIAS --format docker OUTDIR`) rather than "
        "editing the manifest."
    )


def read_manifest(folder: str | Path) -> dict[str, Any]:
    """The manifest of an exported model folder, checked as untrusted input: a JSON object
    with the fields ``load_directory`` reads, whose ``model_file`` is a file directly inside
    the folder (no ``..``, no absolute path, no link leading out). Returns it with
    ``model_path``, the model file's resolved path, added."""
    folder = Path(folder)
    manifest_path = folder / EXPORT_MANIFEST
    if not manifest_path.is_file():
        raise NotFoundError(
            f"{folder} is not an exported model folder: it has no {EXPORT_MANIFEST}. "
            "Create one with `jupyter-mlops export NAME@ALIAS --format docker OUTDIR`."
        )
    try:
        manifest = json.loads(manifest_path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise _manifest_error(manifest_path, f"is not valid JSON ({exc})") from exc
    if not isinstance(manifest, dict):
        raise _manifest_error(manifest_path, "is not a JSON object")
    for key in ("name", "model_file", "object_hash", "format"):
        if not isinstance(manifest.get(key), str):
            raise _manifest_error(manifest_path, f"has no {key!r} string")
    version = manifest.get("version")
    if type(version) is not int and not (isinstance(version, str) and version.isdigit()):
        raise _manifest_error(manifest_path, f"has version {version!r}, not a version number")
    if not isinstance(manifest.get("signature") or {}, dict):
        raise _manifest_error(manifest_path, "has a signature that is not a JSON object")
    name = manifest["model_file"]
    root = folder.resolve()
    target = (folder / name).resolve()
    if (
        not name
        or name in (".", "..")
        or "/" in name
        or "\\" in name
        or Path(name).is_absolute()
        or target.parent != root
    ):
        raise _manifest_error(
            manifest_path,
            f"names the model file {name!r}, but model_file must be a file name inside "
            f"{folder} (no '..', no absolute path, no link leading out of the folder)",
        )
    return {**manifest, "version": int(version), "model_path": target}


def load_directory(path: str | Path, *, trusted: bool | list[str] = False) -> ServedModel:
    """Load a model exported with ``jupyter-mlops export`` (its ``mlops-model.json`` and the
    model file it names, which must lie inside the folder and match the manifest's hash)."""
    import hashlib

    from ..tracking.modelio import load_model_bytes

    manifest = read_manifest(path)
    model_path = manifest["model_path"]
    try:
        data = model_path.read_bytes()
    except OSError as exc:
        raise NotFoundError(
            f"{model_path} (the model file {EXPORT_MANIFEST} names) cannot be read: "
            f"{exc.strerror or exc}. Export the model again."
        ) from exc
    if hashlib.sha256(data).hexdigest() != manifest["object_hash"]:
        raise MlopsError(
            f"{model_path} does not match the hash in {EXPORT_MANIFEST}; export the model again."
        )
    model = load_model_bytes(data, manifest["format"], trusted=trusted)
    return _build(
        manifest["name"],
        manifest["version"],
        model,
        manifest.get("signature") or {},
        manifest.get("flavor") or "",
    )
