"""Model artifacts: scikit-learn models saved with skops (loading runs no code), pickle only
when skops cannot save a model, and loading a pickle only with ``trusted=True``.

A skops file loads without ``trusted=`` only when every name in it is trusted by skops
itself or listed one by one in ``trusted_types`` (classes anywhere, a few pure functions
only as values). Everything read from a store or a folder is untrusted input.
"""

from __future__ import annotations

import io
import json
import pickle
import warnings
import zipfile
from collections.abc import Iterator
from typing import Any

from ..errors import MlopsError, UntrustedModelError, ValidationError
from .trusted_types import TRUSTED_CLASSES, TRUSTED_FUNCTIONS

__all__ = ["dump_model", "load_model_bytes", "refused_types"]

Trusted = bool | list[str] | tuple[str, ...] | frozenset[str] | set[str]


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
    import skops.io as sio

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


def load_model_bytes(data: bytes, format: str, trusted: Trusted = False) -> Any:
    """Rebuild a model from stored bytes.

    A skops file loads when every name in it is trusted by skops or by this package's
    explicit lists; any other type needs ``trusted=[<its name>, …]`` (or ``trusted=True``,
    which trusts the whole file). A pickle needs ``trusted=True``.
    """
    if format == "skops":
        import skops.io as sio

        if trusted is True:
            allowed = sio.get_untrusted_types(data=data)
        else:
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
    if format == "pickle":
        if trusted is not True:
            raise UntrustedModelError(
                "This model was saved with pickle, which can run arbitrary code when loaded. "
                "Load it with trusted=True only if you trust whoever wrote this store."
            )
        return pickle.loads(data)
    raise MlopsError(f"Unknown model format {format!r}; upgrade jupyter_mlops to read it.")
