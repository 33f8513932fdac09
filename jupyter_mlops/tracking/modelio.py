"""Model artifacts: scikit-learn models saved with skops (loading runs no code), pickle only
when skops cannot save a model, and loading a pickle only with ``trusted=True``."""

from __future__ import annotations

import io
import pickle
import warnings
from typing import Any

from ..errors import MlopsError, ValidationError

__all__ = ["TRUSTED_MODULES", "dump_model", "load_model_bytes"]

# Types from these packages are rebuilt from data in skops files, not executed. Builtins
# (exec, eval, open, getattr, …) are never trusted implicitly, and neither are numpy's
# file readers.
TRUSTED_MODULES = frozenset({"sklearn", "numpy", "scipy"})
_NEVER = frozenset(
    {"numpy.load", "numpy.loadtxt", "numpy.genfromtxt", "numpy.fromfile", "numpy.memmap"}
)


def dump_model(model: Any) -> tuple[bytes, str]:
    """Serialize a model: (bytes, format) with format "skops" or, as a fallback, "pickle"."""
    try:
        import skops.io as sio

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return sio.dumps(model), "skops"
    except Exception as skops_error:
        try:
            return pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL), "pickle"
        except Exception as exc:
            raise ValidationError(
                f"Cannot save the {type(model).__name__} model: skops failed ({skops_error}) "
                f"and so did pickle ({exc})."
            ) from exc


def load_model_bytes(data: bytes, format: str, trusted: bool | list[str] = False) -> Any:
    """Rebuild a model from stored bytes.

    skops files load when every type in them comes from scikit-learn, numpy or scipy;
    other types, and any pickle, need ``trusted=True`` (or, for skops, a list of type names).
    """
    if format == "skops":
        import skops.io as sio

        untrusted = sio.get_untrusted_types(data=data)
        if trusted is True:
            allowed = list(untrusted)
        else:
            extra = set(trusted) if isinstance(trusted, list) else set()
            blocked = [
                t
                for t in untrusted
                if t not in extra and (t.split(".")[0] not in TRUSTED_MODULES or t in _NEVER)
            ]
            if blocked:
                raise MlopsError(
                    "This model file contains types that are not known to be safe: "
                    f"{', '.join(blocked)}. If you trust where it came from, load it with "
                    "trusted=True (or trusted=[<those type names>])."
                )
            allowed = list(untrusted)
        return sio.load(io.BytesIO(data), trusted=allowed)
    if format == "pickle":
        if trusted is not True:
            raise MlopsError(
                "This model was saved with pickle, which can run arbitrary code when loaded. "
                "Load it with trusted=True only if you trust whoever wrote this store."
            )
        return pickle.loads(data)
    raise MlopsError(f"Unknown model format {format!r}; upgrade jupyter_mlops to read it.")
