"""Model artifacts: each model saved by its flavor in a format that runs no code when
loaded (skops for scikit-learn, UBJSON for XGBoost, model text for LightGBM, cbm for
CatBoost, ``.keras`` for Keras), pickle only when its flavor cannot save it, and loading a
pickle only with ``trusted=True``. A flavor that refuses a model as unsafe
(``UnsafeModelError``: a custom Keras layer) has it pickled only when the caller trusts it
(``trusted=True``).

Everything read from a store or a folder is untrusted input: the stored format picks the
flavor that reads it, and a file that does not read as that format is an ``MlopsError``.
"""

from __future__ import annotations

import pickle
from typing import Any

from ..errors import MlopsError, UnsafeModelError, UntrustedModelError, ValidationError
from .flavors import flavor_for, flavor_for_format, flavor_named
from .flavors.sklearn import refused_types

__all__ = ["dump_model", "load_model_bytes", "refused_types"]

Trusted = bool | list[str] | tuple[str, ...] | frozenset[str] | set[str]


def dump_model(model: Any, trusted: bool = False) -> tuple[bytes, str]:
    """Serialize a model: (bytes, format), the format of its flavor (skops for anything
    no other flavor takes) or, as a fallback, "pickle". A model its flavor refuses as
    unsafe raises ``UnsafeModelError`` unless ``trusted=True`` (then the flavor's
    ``dump_trusted``: code that runs when it is loaded)."""
    flavor = flavor_for(model) or flavor_named("sklearn")
    try:
        return flavor.dump(model)
    except UnsafeModelError:
        if trusted is not True:
            raise
        return flavor.dump_trusted(model)
    except Exception as safe_error:
        try:
            return pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL), "pickle"
        except Exception as exc:
            raise ValidationError(
                f"Cannot save the {type(model).__name__} model: {flavor.formats[0]} failed "
                f"({safe_error}) and so did pickle ({exc})."
            ) from exc


def load_model_bytes(data: bytes, format: str, trusted: Trusted = False) -> Any:
    """Rebuild a model from stored bytes.

    A skops file loads when every name in it is trusted by skops or by this package's
    explicit lists; any other type needs ``trusted=[<its name>, …]`` (or ``trusted=True``,
    which trusts the whole file). XGBoost, LightGBM and CatBoost files hold data only and
    load once checked. A pickle needs ``trusted=True``.
    """
    if format == "pickle":
        if trusted is not True:
            raise UntrustedModelError(
                "This model was saved with pickle, which can run arbitrary code when loaded. "
                "Load it with trusted=True only if you trust whoever wrote this store."
            )
        return pickle.loads(data)
    flavor = flavor_for_format(format)
    if flavor is None:
        raise MlopsError(f"Unknown model format {format!r}; upgrade jupyter_mlops to read it.")
    return flavor.load(data, format, trusted)
