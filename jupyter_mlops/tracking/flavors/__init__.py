"""Model flavors, one module per framework, found by lookup: by the classes of a model
(the first class in its MRO whose top-level module has a flavor that takes it) or by the
format of a stored model file.

Looking a model up imports nothing new: a flavor module is imported only for an object
whose class comes from that framework (so the framework is loaded already), and a
flavor's framework only when one of its files is loaded. A new framework is a new module
and one line in each table below.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

from .base import Flavor, Training

__all__ = [
    "Flavor",
    "Training",
    "flavor_for",
    "flavor_for_format",
    "flavor_named",
    "is_model",
    "register_skl2onnx",
]

# top-level module of a model's class → the flavor module that knows it
# (a Keras model on the PyTorch backend is a torch.nn.Module too: its Keras classes come
# first in its MRO, so the Keras flavor takes it)
_BY_PACKAGE = {
    "xgboost": "xgboost",
    "lightgbm": "lightgbm",
    "catboost": "catboost",
    "sklearn": "sklearn",
    "keras": "keras",
}
# stored format → flavor module
_BY_FORMAT = {
    "skops": "sklearn",
    "xgboost-ubj": "xgboost",
    "lightgbm-txt": "lightgbm",
    "catboost-cbm": "catboost",
    "keras": "keras",
    "keras-trusted": "keras",
}
_LOADED: dict[str, Flavor] = {}


def flavor_named(name: str) -> Flavor:
    """The flavor ``name`` (its module imported on first use)."""
    found = _LOADED.get(name)
    if found is None:
        found = importlib.import_module(f"{__name__}.{name}").FLAVOR
        _LOADED[name] = found
    return found


def flavor_for(obj: Any) -> Flavor | None:
    """The flavor of a model object, or None when no flavor takes it."""
    if isinstance(obj, type):
        return None
    try:
        mro = type(obj).__mro__
    except Exception:
        return None
    for cls in mro:
        root = (getattr(cls, "__module__", "") or "").partition(".")[0]
        name = _BY_PACKAGE.get(root)
        if name is None or root not in sys.modules:
            continue
        flavor = flavor_named(name)
        try:
            if flavor.handles(obj):
                return flavor
        except Exception:
            continue
    return None


def flavor_for_format(format: str) -> Flavor | None:
    """The flavor that reads stored ``format``, or None for a format no flavor reads."""
    name = _BY_FORMAT.get(format)
    return flavor_named(name) if name is not None else None


def is_model(obj: Any) -> bool:
    """A fitted model of any flavor (a scikit-learn estimator, an XGBoost, LightGBM or
    CatBoost model or booster, a trained Keras model)."""
    flavor = flavor_for(obj)
    if flavor is None:
        return False
    try:
        return bool(flavor.is_fitted(obj))
    except Exception:
        return False


def register_skl2onnx() -> None:
    """Register, in skl2onnx, the estimators of every flavor whose framework is imported
    (a scikit-learn pipeline holding one imported it when it was loaded)."""
    for package, name in _BY_PACKAGE.items():
        if name != "sklearn" and package in sys.modules:
            flavor_named(name).register_skl2onnx()
