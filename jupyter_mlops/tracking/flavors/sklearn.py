"""The scikit-learn flavor: any scikit-learn (compatible) estimator, saved with skops.

A skops file loads without ``trusted=`` only when every name in it is trusted by skops
itself or listed one by one in ``trusted_types`` (classes anywhere, a few pure functions
only as values). Everything read from a store or a folder is untrusted input.
"""

from __future__ import annotations

import io
import json
import warnings
import zipfile
from collections.abc import Iterator
from typing import Any

from ...errors import UntrustedModelError
from ..trusted_types import TRUSTED_CLASSES, TRUSTED_FUNCTIONS
from .base import Flavor, OnnxInputs

__all__ = ["FLAVOR", "SklearnFlavor", "refused_types"]

Trusted = bool | list[str] | tuple[str, ...] | frozenset[str] | set[str]


def _nodes(schema: Any) -> Iterator[tuple[str, str]]:
    """(loader, "module.Class") of every node in a skops schema, walked without recursion."""
    stack = [schema]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            loader, module, name = (item.get(k) for k in ("__loader__", "__module__", "__class__"))
            if isinstance(loader, str) and isinstance(module, str) and isinstance(name, str):
                yield loader, f"{module}.{name}"
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _loaders_by_name(data: bytes) -> dict[str, set[str]]:
    """For each name in a skops file, the loaders that rebuild it (``FunctionNode`` only
    returns the named object; every other loader calls or instantiates it)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            schema = json.loads(archive.read("schema.json"))
    except (zipfile.BadZipFile, KeyError, ValueError, RecursionError) as exc:
        raise UntrustedModelError(
            f"This model file is not a readable skops file ({type(exc).__name__}); "
            "nothing was loaded. Register or export the model again."
        ) from exc
    found: dict[str, set[str]] = {}
    for loader, name in _nodes(schema):
        found.setdefault(name, set()).add(loader)
    return found


def refused_types(data: bytes, trusted: Trusted = ()) -> list[str]:
    """The names in a skops file that would be refused without more ``trusted=`` entries."""
    from ..skops_import import skops_io

    sio = skops_io()

    loaders = _loaders_by_name(data)
    try:
        untrusted = sio.get_untrusted_types(data=data)
    except Exception as exc:  # a crafted file can break skops's own audit
        raise UntrustedModelError(
            f"skops cannot audit this model file ({type(exc).__name__}: {exc}); nothing was "
            "loaded. Register or export the model again."
        ) from exc
    extra = set() if isinstance(trusted, bool) else set(trusted)
    return [
        name
        for name in untrusted
        if name not in extra
        and name not in TRUSTED_CLASSES
        and not (name in TRUSTED_FUNCTIONS and loaders.get(name) == {"FunctionNode"})
    ]


class SklearnFlavor(Flavor):
    """scikit-learn estimators (and any estimator built on ``sklearn.base.BaseEstimator``)."""

    name = "sklearn"
    package = "sklearn"
    formats = ("skops",)

    def handles(self, obj: Any) -> bool:
        from ..estimators import is_estimator

        return is_estimator(obj)

    def is_fitted(self, obj: Any) -> bool:
        from ..estimators import is_fitted

        return is_fitted(obj)

    def dump(self, model: Any) -> tuple[bytes, str]:
        from ..skops_import import skops_io

        sio = skops_io()

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return sio.dumps(model), "skops"

    def load(self, data: bytes, format: str, trusted: Trusted = False) -> Any:
        """A skops file: loads when every name in it is trusted by skops or by this
        package's explicit lists; any other type needs ``trusted=[<its name>, …]`` (or
        ``trusted=True``, which trusts the whole file)."""
        from ..skops_import import skops_io

        sio = skops_io()

        if trusted is not True:
            blocked = refused_types(data, trusted or ())
            if blocked:
                names = ", ".join(blocked)
                raise UntrustedModelError(
                    f"This model file contains types that are not known to be safe: {names}. "
                    "Nothing was loaded. If you trust whoever wrote it, load it with "
                    f"trusted={blocked!r} (or trusted=True to trust the whole file)."
                )
        allowed = sio.get_untrusted_types(data=data)
        return sio.load(io.BytesIO(data), trusted=allowed)

    def to_onnx(self, model: Any, inputs: OnnxInputs) -> Any:
        """skl2onnx, with the estimators of the other installed flavors registered (a
        pipeline ending in an XGBoost or LightGBM model converts too)."""
        from skl2onnx import convert_sklearn
        from skl2onnx.common.data_types import FloatTensorType, StringTensorType

        from . import register_skl2onnx

        register_skl2onnx()
        if inputs.single:
            types = [("input", FloatTensorType([None, len(inputs.columns)]))]
        else:
            types = [
                (
                    name,
                    StringTensorType([None, 1]) if kind == "string" else FloatTensorType([None, 1]),
                )
                for name, kind in inputs.columns
            ]
        final = model.steps[-1][1] if hasattr(model, "steps") else model
        options = {id(final): {"zipmap": False}} if hasattr(final, "predict_proba") else None
        opsets = {"": inputs.opset, "ai.onnx.ml": inputs.ml_opset}
        return convert_sklearn(model, initial_types=types, target_opset=opsets, options=options)


FLAVOR = SklearnFlavor()
