"""What every model flavor provides, and the container a flavor's model file is stored in.

A flavor is one framework's knowledge: which objects are its fitted models, what their
training left behind (per-round evaluation curves, best iteration, feature importances,
the booster params of a training function), how to save them in a format that runs no
code when loaded, and how to load them back. Services look a flavor up (by the model's
class or by the stored format); they never branch on frameworks themselves.

A flavor's file (every format but skops and pickle) is a zip archive holding the
framework's own model file, unchanged (``model.ubj``, ``model.txt``, …), and
``flavor.json``: the format, the class to rebuild and its scikit-learn params. Reading it
parses JSON and hands the model file to the framework's own loader, which takes data,
never code.
"""

from __future__ import annotations

import ast
import io
import json
import math
import pickle
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...errors import MlopsError
from ..values import is_scalar_param

__all__ = [
    "FLAVOR_FILE",
    "Flavor",
    "MlflowFlavor",
    "OnnxInputs",
    "Training",
    "call_arg",
    "call_value",
    "categorical_adapter",
    "json_params",
    "mark_categorical",
    "model_error",
    "pack",
    "unpack",
]

FLAVOR_FILE = "flavor.json"
_MAX_MEMBER = 4 << 30  # 4 GiB: far above any tree ensemble, far below a zip bomb's claim


@dataclass
class Training:
    """What a fitted model's training left behind, as the run records it."""

    # "validation_0.logloss" → one value per boosting round (step = round, from 0)
    curves: dict[str, list[float]] = field(default_factory=dict)
    start: int = 0  # the step of each curve's first value (the last round: final values)
    source: str = ""  # where the curves were read (shown with the metric)
    best_iteration: int | None = None  # the round kept (a step of the curves)
    best_score: float | None = None
    importance: dict[str, float] | None = None  # feature → gain
    importance_type: str = "gain"
    params: dict[str, Any] = field(default_factory=dict)  # a training function's params
    # the keys of ``params`` the framework chose itself (folded with the defaults)
    defaults: list[str] = field(default_factory=list)


@dataclass
class OnnxInputs:
    """The inputs an ONNX export takes: one float tensor ``input`` of shape
    ``[None, len(columns)]`` (``single``), or one ``[None, 1]`` tensor per column, named as
    the column, of ``kind`` ``"float"`` or ``"string"``."""

    columns: list[tuple[str, str]]  # (name, "float" | "string")
    single: bool = True
    opset: int = 15  # the newest the ONNX converters for boosted trees support
    ml_opset: int = 3  # of the ai.onnx.ml domain (tree ensembles)


@dataclass
class MlflowFlavor:
    """What a flavor wrote into an MLflow model folder: the ``MLmodel`` flavors (MLflow's
    own flavor for the framework and ``python_function``, without its env and python
    version, which the export adds), the distributions the folder needs beyond the model
    version's pins, and those it does not."""

    flavors: dict[str, dict[str, Any]]
    model_file: str
    extra_requirements: list[str] = field(default_factory=list)
    drop_requirements: list[str] = field(default_factory=list)


class Flavor:
    """One framework's models. Subclasses set the names and override what applies."""

    name = ""  # the flavor's name: "sklearn", "xgboost", "lightgbm", "catboost"
    package = ""  # the top-level module its models' classes live in
    formats: tuple[str, ...] = ()  # the stored formats it reads
    missing_values: bool | None = None  # takes missing values (None: scikit-learn's tags say)

    def handles(self, obj: Any) -> bool:
        """Whether ``obj`` is a model of this flavor (fitted or not)."""
        return False

    def is_fitted(self, obj: Any) -> bool:
        """Whether the model has been trained."""
        return True

    def dump(self, model: Any) -> tuple[bytes, str]:
        """The model as (bytes, format)."""
        raise NotImplementedError

    def load(self, data: bytes, format: str, trusted: Any = False) -> Any:
        """The model from bytes ``dump`` wrote; malformed bytes raise ``MlopsError``."""
        raise NotImplementedError

    def training(self, model: Any, call: ast.Call | None, ns: Mapping[str, Any]) -> Training | None:
        """Curves, best iteration, importances and params of a fitted model; ``call`` is
        the call that returned it (``bst = xgb.train(...)``), read without running it."""
        return None

    def fit_params(self, model: Any, call: ast.Call, ns: Mapping[str, Any]) -> dict[str, Any]:
        """Params the cell's ``model.fit(...)`` call names (``epochs=3``), read without
        running it; logged as ``<model>.<key>``."""
        return {}

    def dump_trusted(self, model: Any) -> tuple[bytes, str]:
        """The model as (bytes, format) when ``dump`` raised ``UnsafeModelError`` and the
        user trusted it (``log_model(model, trusted=True)``): a pickle, unless the flavor
        knows a better container. Loading it needs ``trusted=True``."""
        return pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL), "pickle"

    def signature(self, model: Any, x: Any, y: Any, frames: list[Any]) -> dict[str, Any]:
        """The input columns and outputs of the model (see ``estimators.signature``)."""
        from ..estimators import signature

        return signature(model, x, y, frames)

    def servable(self, model: Any) -> Any:
        """An object with ``predict`` (and ``predict_proba``/``classes_`` for classifiers)
        that serves the model; most models serve as they are."""
        return model

    def scorable(self, model: Any) -> Any:
        """The model as scikit-learn's scorers take it (a gate scores this): an
        estimator with ``predict`` (and ``classes_``/``predict_proba`` for a classifier).
        Most models are one already; a booster whose output is a probability is not."""
        return self.servable(model)

    def takes_missing(self, model: Any) -> bool | None:
        """Whether the model predicts on missing values (None: ask scikit-learn's tags)."""
        return self.missing_values

    def refuses_missing(self, model: Any, names: list[str]) -> set[str]:
        """The input columns (of ``names``, the signature's) where the model refuses missing
        values even though it takes them elsewhere; empty for most flavors."""
        return set()

    def input_adapter(self, signature: Mapping[str, Any]) -> Callable[[Any], Any] | None:
        """A step that turns a validated request frame into what the model takes, or None."""
        return None

    def requires(self, model: Any) -> list[str]:
        """Top-level modules the model needs to load, beyond its class's own package (a
        Keras model's backend); pinned in a model version's requirements."""
        return []

    # -- export ---------------------------------------------------------------------------
    def to_onnx(self, model: Any, inputs: OnnxInputs) -> Any:
        """The model as an ONNX ``ModelProto`` (classifiers: outputs ``label`` then
        ``probabilities`` as a tensor; regressors: one output). Raises when no converter
        takes the model; the exporter turns that into an error naming the step."""
        raise NotImplementedError(f"no ONNX converter for {self.name or 'this'} models")

    def register_skl2onnx(self) -> None:
        """Teach skl2onnx this flavor's estimators, so a scikit-learn pipeline ending in
        one converts. Flavors whose models never sit in a pipeline do nothing."""

    def export_mlflow(self, model: Any, folder: Path) -> MlflowFlavor | None:
        """Write the model into ``folder`` as MLflow's own flavor for the framework saves
        it, or None when MLflow has no flavor that loads it without pickle."""
        return None

    def version(self) -> str | None:
        """The framework's installed version."""
        import sys

        module = sys.modules.get(self.package)
        return getattr(module, "__version__", None)


# -- the container --------------------------------------------------------------------------


def model_error(format: str, problem: str) -> MlopsError:
    """The error for a model file that does not read as ``format``."""
    return MlopsError(
        f"This model file is not a readable {format} model ({problem}); nothing was loaded. "
        "Register or export the model again."
    )


def pack(format: str, files: Mapping[str, bytes], info: Mapping[str, Any]) -> bytes:
    """A flavor file: ``flavor.json`` (``info`` with the format) and the model files.
    Text compresses (deflate, fast level); binary model files are stored as they are."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        doc = {"format": format, "format_version": 1, **info}
        archive.writestr(FLAVOR_FILE, json.dumps(doc, default=str), zipfile.ZIP_DEFLATED)
        for name, data in files.items():
            text = name.endswith((".txt", ".json"))
            method = zipfile.ZIP_DEFLATED if text else zipfile.ZIP_STORED
            archive.writestr(zipfile.ZipInfo(name), data, method, compresslevel=1)
    return buf.getvalue()


def unpack(data: bytes, format: str, names: tuple[str, ...]) -> tuple[dict[str, bytes], dict]:
    """The model files ``names`` and the ``flavor.json`` of a flavor file, checked as
    untrusted input: a zip holding exactly those members, sizes within bounds, JSON whose
    format is ``format``."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise model_error(format, f"not a {format} archive: {type(exc).__name__}") from exc
    with archive:
        members = {i.filename: i for i in archive.infolist()}
        wanted = {FLAVOR_FILE, *names}
        if set(members) != wanted:
            raise model_error(format, f"it holds {sorted(members)[:10]}, not {sorted(wanted)}")
        for info in members.values():
            if info.file_size > _MAX_MEMBER:
                raise model_error(format, f"{info.filename} claims {info.file_size} bytes")
        try:
            raw = {name: archive.read(name) for name in wanted}
        except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
            raise model_error(format, f"a damaged member: {exc}") from exc
        except Exception as exc:  # zlib errors, unsupported compression
            raise model_error(format, f"{type(exc).__name__}: {exc}") from exc
    try:
        doc = json.loads(raw.pop(FLAVOR_FILE))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise model_error(format, f"{FLAVOR_FILE} is not JSON") from exc
    if not isinstance(doc, dict) or doc.get("format") != format:
        found = doc.get("format") if isinstance(doc, dict) else None
        raise model_error(format, f"{FLAVOR_FILE} names the format {found!r}")
    return raw, doc


# -- params -----------------------------------------------------------------------------------


def _json_safe(value: Any) -> bool:
    if isinstance(value, float) and not math.isfinite(value):
        return True  # NaN (xgboost's `missing`) is written as NaN; json reads it back
    if isinstance(value, dict):
        return len(value) <= 1000 and all(
            isinstance(k, str) and is_scalar_param(v) for k, v in value.items()
        )
    return is_scalar_param(value)


def json_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """The params of a model that rebuild it: plain values only (a callback, a custom
    objective function or any other object is left out; the model file holds its effect)."""
    out = {}
    for key, value in params.items():
        if hasattr(value, "item") and getattr(value, "shape", None) == ():
            value = value.item()
        if isinstance(key, str) and _json_safe(value):
            out[key] = list(value) if isinstance(value, tuple) else value
    return out


def lookup(node: ast.expr, ns: Mapping[str, Any]) -> Any:
    """The object a name or dotted attribute refers to (attributes read, nothing called)."""
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


def call_value(node: ast.expr | None, ns: Mapping[str, Any], depth: int = 0) -> Any:
    """The value of an argument of a call in the cell, read without running code: names and
    attributes looked up, literals, and lists, tuples and dicts of those. None otherwise."""
    if node is None or depth > 6:
        return None
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name | ast.Attribute):
        return lookup(node, ns)
    if isinstance(node, ast.List | ast.Tuple):
        items = [call_value(e, ns, depth + 1) for e in node.elts[:1000]]
        return items if isinstance(node, ast.List) else tuple(items)
    if isinstance(node, ast.Dict):
        out = {}
        for k, v in zip(node.keys, node.values, strict=True):
            if k is None:  # `{**base, "eta": 0.1}`
                base = call_value(v, ns, depth + 1)
                if isinstance(base, Mapping):
                    out.update(base)
                continue
            key = call_value(k, ns, depth + 1)
            if isinstance(key, str):
                out[key] = call_value(v, ns, depth + 1)
        return out
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = call_value(node.operand, ns, depth + 1)
        return -inner if isinstance(inner, int | float) else None
    return None


def call_arg(call: ast.Call | None, index: int | None, name: str) -> ast.expr | None:
    """Argument ``name`` of a call, by keyword or at position ``index``."""
    if call is None:
        return None
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value
    if index is not None and len(call.args) > index:
        arg = call.args[index]
        return None if isinstance(arg, ast.Starred) else arg
    return None


# -- categorical inputs -----------------------------------------------------------------------


def _categories(values: Any) -> list[Any] | None:
    try:
        items = [v.item() if hasattr(v, "item") else v for v in list(values)[:1001]]
    except Exception:
        return None
    if len(items) > 1000 or not all(isinstance(v, str | int | float | bool) for v in items):
        return None
    return items


def mark_categorical(
    signature: dict[str, Any],
    categorical: Mapping[str, Any],
    frames: list[Any],
) -> dict[str, Any]:
    """Record the model's categorical features in ``signature``: each such input gets
    ``categorical: true`` and, when the model took it as a pandas Categorical (the server
    then makes the column one again), ``pandas_category: true`` and its ``categories``
    (up to 1,000). ``categorical`` maps column → known categories (or None); the dtype of a
    column of text categories is ``category``."""
    if not categorical:
        return signature
    import pandas as pd

    seen: dict[str, Any] = {}
    for frame in frames:
        if isinstance(frame, pd.DataFrame):
            for col in frame.columns:
                if str(col) in categorical and str(col) not in seen:
                    seen[str(col)] = frame[col].dtype
    for item in signature.get("inputs", []):
        name = item.get("name")
        if name not in categorical:
            continue
        item["categorical"] = True
        known = categorical[name]
        dtype = seen.get(name)
        if isinstance(dtype, pd.CategoricalDtype):
            known = known if known is not None else list(dtype.categories)
        if known is None and not isinstance(dtype, pd.CategoricalDtype):
            continue  # integer codes the model takes as categories: numbers as they are
        item["pandas_category"] = True
        cats = _categories(known) if known is not None else None
        if cats is not None:
            item["categories"] = cats
            if not all(isinstance(c, int | float) and not isinstance(c, bool) for c in cats):
                item["dtype"] = "category"
        elif dtype is not None and dtype.categories.dtype.kind not in "iuf":
            item["dtype"] = "category"
    signature["categorical"] = [
        i["name"] for i in signature.get("inputs", []) if i.get("categorical")
    ]
    return signature


def categorical_adapter(signature: Mapping[str, Any]) -> Callable[[Any], Any] | None:
    """For a model that took pandas Categoricals: a step that makes those request columns
    Categoricals again (the framework maps the values onto the categories it was trained
    with). None when the model has no such columns."""
    columns = [
        str(i["name"])
        for i in signature.get("inputs") or []
        if isinstance(i, Mapping) and i.get("pandas_category")
    ]
    if not columns:
        return None
    cats = {
        str(i["name"]): i.get("categories")
        for i in signature.get("inputs") or []
        if isinstance(i, Mapping) and i.get("pandas_category")
    }

    def adapt(frame: Any) -> Any:
        import pandas as pd

        if not isinstance(frame, pd.DataFrame):
            return frame
        changed = {}
        for col in columns:
            if col in frame.columns and not isinstance(frame[col].dtype, pd.CategoricalDtype):
                known = cats.get(col)
                if isinstance(known, list):
                    changed[col] = pd.Categorical(frame[col], categories=known)
                else:
                    changed[col] = frame[col].astype("category")
        return frame.assign(**changed) if changed else frame

    return adapt
