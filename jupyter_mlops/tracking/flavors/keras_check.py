"""Checks a ``.keras`` archive as untrusted input before Keras reads any of it.

A ``.keras`` file is a zip of ``config.json`` (the model's layers, optimizer and loss, by
module and class name), ``metadata.json`` and ``model.weights.h5``. Keras' ``safe_mode``
refuses Python lambdas, yet the config still names what Keras imports and builds; this
check is a second, stricter line, run first: every object the config names must be a
Keras built-in (module ``keras`` or ``keras.…``), never a Lambda layer (marshalled
bytecode), a wrapped ``torch.nn.Module`` (a pickle), a class registered by the process
that loads it, or a function outside Keras' activations, losses and metrics; the weights
file must hold plain numeric datasets and no links to other files. Nothing here imports
Keras: the checks read JSON and HDF5 only.
"""

from __future__ import annotations

import builtins
import io
import json
import re
import zipfile
from typing import Any

__all__ = [
    "CONFIG_FILE",
    "WEIGHTS_FILE",
    "KerasCheckError",
    "check_archive",
    "check_config",
    "custom_objects_named",
]

CONFIG_FILE = "config.json"
METADATA_FILE = "metadata.json"
WEIGHTS_FILE = "model.weights.h5"
_MAX_CONFIG = 64 << 20  # far above any layer graph's JSON
_MAX_MEMBER = 4 << 30
_MAX_DEPTH = 200
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MODULE = re.compile(r"^keras(\.[A-Za-z_][A-Za-z0-9_]*)*$")
# data, not code: what Keras' deserializer builds from these is a tensor, an array, bytes
_DATA = frozenset(
    {"__keras_tensor__", "__tensor__", "__numpy__", "__bytes__", "__ellipsis__", "__slice__"}
)
# classes of Keras itself that run code the file carries
_REFUSED_CLASSES = {
    "Lambda": "a Lambda layer (Python bytecode stored in the file)",
    "TorchModuleWrapper": "a wrapped torch.nn.Module (a pickle stored in the file)",
    "TFSMLayer": "a TensorFlow SavedModel layer (a program read from another path)",
}
# where a function the config names by name may come from
_FUNCTION_MODULES = (
    "keras.activations",
    "keras.losses",
    "keras.metrics",
    "keras.ops",
    "keras.src.activations",
    "keras.src.losses",
    "keras.src.metrics",
    "keras.src.ops",
)
# modules of Keras whose functions are not parts of a model
_REFUSED_MODULES = ("keras.utils", "keras.saving", "keras.config", "keras.backend", "keras.models")


class KerasCheckError(ValueError):
    """The archive is not a plain Keras model; the message says what it holds."""


def _is_under(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(f"{p}.") for p in prefixes)


def _check_object(node: dict[str, Any], path: str) -> None:
    name = node.get("class_name")
    if not isinstance(name, str):
        raise KerasCheckError(f"{path} has a class_name that is not a string")
    if name == "__lambda__":
        raise KerasCheckError(f"{path} holds a Python lambda (marshalled bytecode)")
    if name in _DATA:
        return
    if name.startswith("__"):
        raise KerasCheckError(f"{path} names the special object {name!r}")
    module = node.get("module")
    registered = node.get("registered_name")
    if name == "function":
        fn = node.get("config")
        if not isinstance(fn, str) or not _NAME.match(fn):
            raise KerasCheckError(f"{path} names a function that is not a plain name: {fn!r}")
        if module == "builtins":
            if hasattr(builtins, fn):
                raise KerasCheckError(f"{path} names the Python built-in builtins.{fn}")
            return  # Keras looks the name up among its own activations, losses, metrics
        if not isinstance(module, str) or not _is_under(module, _FUNCTION_MODULES):
            raise KerasCheckError(
                f"{path} names the function {module}.{fn}, not a Keras activation, loss or metric"
            )
        return
    if not _NAME.match(name):
        raise KerasCheckError(f"{path} names the class {name[:80]!r}")
    if not isinstance(module, str) or not _MODULE.match(module):
        where = f"{module}.{name}" if module else name
        raise KerasCheckError(
            f"{path} names the class {where!r}, which is not part of Keras (a custom class)"
        )
    if _is_under(module, _REFUSED_MODULES) and name[0].islower():
        raise KerasCheckError(f"{path} names {module}.{name}, which is not part of a model")
    if name in _REFUSED_CLASSES:
        raise KerasCheckError(f"{path} holds {_REFUSED_CLASSES[name]}")
    if registered is not None and registered != name:
        raise KerasCheckError(f"{path} names the registered custom object {str(registered)[:80]!r}")


def _walk(node: Any, path: str, depth: int, count: list[int]) -> None:
    if depth > _MAX_DEPTH:
        raise KerasCheckError(f"the config nests deeper than {_MAX_DEPTH} levels")
    count[0] += 1
    if count[0] > 5_000_000:
        raise KerasCheckError("the config holds too many values")
    if isinstance(node, dict):
        if "class_name" in node:
            _check_object(node, path)
        for key, value in node.items():
            _walk(value, f"{path}.{key}", depth + 1, count)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            _walk(value, f"{path}[{i}]", depth + 1, count)


def check_config(doc: Any) -> None:
    """Raise ``KerasCheckError`` unless ``doc`` (a parsed ``config.json``) describes a
    model built from Keras' own classes only."""
    if not isinstance(doc, dict) or not isinstance(doc.get("class_name"), str):
        raise KerasCheckError("config.json does not describe a Keras object")
    _walk(doc, "model", 0, [0])
    module = str(doc.get("module"))
    if module not in ("keras", "keras.models") and not module.startswith("keras.src.models"):
        raise KerasCheckError(f"config.json describes {doc['class_name']!r}, not a Keras model")


def custom_objects_named(doc: Any) -> list[str]:
    """The names of the objects in a parsed config that are not Keras built-ins (what a
    trusted load must be given as custom objects)."""
    found: list[str] = []

    def walk(node: Any, depth: int) -> None:
        if depth > _MAX_DEPTH:
            return
        if isinstance(node, dict):
            name = node.get("class_name")
            module = node.get("module")
            if isinstance(name, str) and not name.startswith("__") and name != "function":
                if not (isinstance(module, str) and _MODULE.match(module)):
                    found.append(str(node.get("registered_name") or name))
            for value in node.values():
                walk(value, depth + 1)
        elif isinstance(node, list):
            for value in node:
                walk(value, depth + 1)

    walk(doc, 0)
    return sorted(set(found))


def _check_weights(data: bytes) -> None:
    """Plain numeric datasets in groups, hard links only (an external link would make
    HDF5 read another file on this machine)."""
    import h5py

    try:
        handle = h5py.File(io.BytesIO(data), "r")
    except Exception as exc:
        raise KerasCheckError(f"{WEIGHTS_FILE} is not HDF5 ({type(exc).__name__})") from exc
    problems: list[str] = []
    with handle:

        def visit(name: str, link: Any) -> None:
            if problems:
                return
            if not isinstance(link, h5py.HardLink):
                problems.append(f"{WEIGHTS_FILE} holds a {type(link).__name__} at {name!r}")
                return
            obj = handle.get(name)
            if isinstance(obj, h5py.Dataset):
                kind = obj.dtype.kind
                if kind not in "biuf" or obj.dtype.fields is not None:
                    problems.append(f"{WEIGHTS_FILE} holds a {obj.dtype} dataset at {name!r}")
                elif obj.size * max(obj.dtype.itemsize, 1) > _MAX_MEMBER:
                    problems.append(f"{WEIGHTS_FILE} claims a dataset of {obj.size} values")
            elif not isinstance(obj, h5py.Group):
                problems.append(f"{WEIGHTS_FILE} holds a {type(obj).__name__} at {name!r}")

        try:
            handle.visit_links(lambda name: visit(name, handle.get(name, getlink=True)))
        except KerasCheckError:
            raise
        except Exception as exc:
            raise KerasCheckError(f"{WEIGHTS_FILE} cannot be read: {type(exc).__name__}") from exc
    if problems:
        raise KerasCheckError(problems[0])


def check_archive(data: bytes) -> dict[str, Any]:
    """Check a ``.keras`` archive's members, config and weights; returns the parsed
    config. Raises ``KerasCheckError`` naming the first problem."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise KerasCheckError(
            f"the .keras file is not a zip archive ({type(exc).__name__})"
        ) from exc
    with archive:
        infos = archive.infolist()
        names = [i.filename for i in infos]
        for info in infos:
            name = info.filename
            if name in (CONFIG_FILE, METADATA_FILE, WEIGHTS_FILE):
                pass
            elif not (
                name.startswith("assets/")
                and ".." not in name.split("/")
                and "\\" not in name
                and ":" not in name
            ):
                raise KerasCheckError(f"the .keras file holds {name[:80]!r}")
            if info.file_size > _MAX_MEMBER:
                raise KerasCheckError(f"{name[:80]!r} claims {info.file_size} bytes")
        if CONFIG_FILE not in names or WEIGHTS_FILE not in names:
            raise KerasCheckError(f"the .keras file lacks {CONFIG_FILE} or {WEIGHTS_FILE}")
        if len(names) != len(set(names)):
            raise KerasCheckError("the .keras file holds a member twice")
        if archive.getinfo(CONFIG_FILE).file_size > _MAX_CONFIG:
            raise KerasCheckError(f"{CONFIG_FILE} is larger than {_MAX_CONFIG} bytes")
        try:
            config_bytes = archive.read(CONFIG_FILE)
            weights = archive.read(WEIGHTS_FILE)
        except Exception as exc:  # bad CRC, zlib errors, unsupported compression
            raise KerasCheckError(f"a damaged member ({type(exc).__name__})") from exc
    try:
        doc = json.loads(config_bytes)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise KerasCheckError(f"{CONFIG_FILE} is not JSON") from exc
    check_config(doc)
    _check_weights(weights)
    return doc
