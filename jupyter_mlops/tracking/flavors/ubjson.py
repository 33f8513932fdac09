"""A strict, bounded reader of Universal Binary JSON (what XGBoost's ``.ubj`` files are),
so a model file can be checked before XGBoost's own parser sees it.

Untrusted input: every length is checked against the bytes that remain before anything
is allocated, nesting is bounded, and typed arrays (``[$d#L…``, how XGBoost writes its
tree arrays) are read with numpy in one step. Anything unexpected raises ``UBJSONError``.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

__all__ = ["UBJSONError", "loads"]

_MAX_DEPTH = 64
_INTS = {"i": ">i1", "U": ">u1", "I": ">i2", "l": ">i4", "L": ">i8"}
_FLOATS = {"d": ">f4", "D": ">f8"}
_NUMBERS = {**_INTS, **_FLOATS}
_STRUCT = {"i": ">b", "U": ">B", "I": ">h", "l": ">i", "L": ">q", "d": ">f", "D": ">d"}


class UBJSONError(ValueError):
    """The bytes are not well-formed UBJSON."""


class _Reader:
    def __init__(self, data: bytes):
        self.data = memoryview(data)
        self.pos = 0

    def take(self, n: int) -> memoryview:
        if n < 0 or self.pos + n > len(self.data):
            raise UBJSONError(f"{n} bytes wanted at offset {self.pos}, past the end")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def marker(self) -> str:
        while True:
            code = chr(self.take(1)[0])
            if code != "N":  # no-op
                return code

    def number(self, code: str) -> int | float:
        fmt = _STRUCT.get(code)
        if fmt is None:
            raise UBJSONError(f"unknown number type {code!r} at offset {self.pos - 1}")
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def length(self) -> int:
        code = self.marker()
        if code not in _INTS:
            raise UBJSONError(f"a length of type {code!r} at offset {self.pos - 1}")
        n = int(self.number(code))
        if n < 0 or n > len(self.data) - self.pos:
            raise UBJSONError(f"a length of {n} at offset {self.pos}, more than the bytes left")
        return n

    def string(self) -> str:
        raw = bytes(self.take(self.length()))
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UBJSONError(f"a string that is not UTF-8 at offset {self.pos}") from exc

    def value(self, code: str, depth: int) -> Any:
        if depth > _MAX_DEPTH:
            raise UBJSONError("nesting deeper than 64 levels")
        if code in _NUMBERS:
            return self.number(code)
        if code == "S" or code == "H":  # H: a high-precision number, kept as text
            return self.string()
        if code == "C":
            return chr(self.take(1)[0])
        if code == "T":
            return True
        if code == "F":
            return False
        if code == "Z":
            return None
        if code == "[":
            return self.array(depth)
        if code == "{":
            return self.object(depth)
        raise UBJSONError(f"unknown type {code!r} at offset {self.pos - 1}")

    def _header(self) -> tuple[str | None, int | None]:
        """The ``$type`` and ``#count`` of an optimized container, when given."""
        kind, count = None, None
        start = self.pos
        code = self.marker()
        if code == "$":
            kind = self.marker()
            code = self.marker()
            if code != "#":
                raise UBJSONError(f"a typed container without a count at offset {start}")
        if code == "#":
            count = self.length()
        else:
            self.pos -= 1
        return kind, count

    def array(self, depth: int) -> Any:
        kind, count = self._header()
        if kind is not None and kind in _NUMBERS:
            dtype = np.dtype(_NUMBERS[kind])
            raw = self.take(count * dtype.itemsize)  # count was checked against the bytes left
            return np.frombuffer(raw, dtype=dtype).astype(dtype.newbyteorder("="))
        out: list[Any] = []
        if count is not None:
            for _ in range(count):
                out.append(self.value(kind or self.marker(), depth + 1))
            return out
        while True:
            code = self.marker()
            if code == "]":
                return out
            out.append(self.value(code, depth + 1))

    def object(self, depth: int) -> dict[str, Any]:
        kind, count = self._header()
        out: dict[str, Any] = {}
        if count is not None:
            for _ in range(count):
                key = self.string()
                out[key] = self.value(kind or self.marker(), depth + 1)
            return out
        while True:
            code = self.marker()
            if code == "}":
                return out
            self.pos -= 1
            key = self.string()
            out[key] = self.value(self.marker(), depth + 1)


def loads(data: bytes) -> Any:
    """The value UBJSON ``data`` holds: dicts, lists, numbers, strings, and numpy arrays for
    typed numeric arrays. Raises ``UBJSONError`` for anything malformed or trailing."""
    reader = _Reader(data)
    try:
        value = reader.value(reader.marker(), 0)
    except (struct.error, IndexError, OverflowError, MemoryError) as exc:
        raise UBJSONError(f"{type(exc).__name__} at offset {reader.pos}") from exc
    if reader.pos != len(reader.data):
        raise UBJSONError(f"{len(reader.data) - reader.pos} bytes after the end of the value")
    return value
