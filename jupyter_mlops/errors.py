"""The one exception hierarchy of jupyter_mlops.

Every error a user can meet is an ``MlopsError`` whose message says what to do.
Each class carries a ``code`` that the REST layer maps to an HTTP status::

    MlopsError                      code "error"      (500)
    ├── StoreError                  code "store"      (500)
    │   ├── StoreVersionError       code "store_version" (409)
    │   ├── StoreLockedError        code "locked"     (503)
    │   └── CorruptObjectError      code "corrupt"    (500)
    ├── UntrustedModelError         code "untrusted"  (403)
    ├── NotFoundError               code "not_found"  (404)
    ├── ValidationError             code "invalid"    (400)
    │   ├── QueryError              code "query"      (400)
    │   └── UnsafeModelError        code "invalid"    (400)
    └── ConflictError               code "conflict"   (409)
"""

from __future__ import annotations

__all__ = [
    "ConflictError",
    "CorruptObjectError",
    "MlopsError",
    "NotFoundError",
    "QueryError",
    "StoreError",
    "StoreLockedError",
    "StoreVersionError",
    "UnsafeModelError",
    "UntrustedModelError",
    "ValidationError",
]


class MlopsError(Exception):
    """Root of every error jupyter_mlops raises on purpose."""

    code = "error"


class StoreError(MlopsError):
    """The store cannot be opened, read or written."""

    code = "store"


class StoreVersionError(StoreError):
    """The store was written by a newer jupyter_mlops than this one."""

    code = "store_version"


class StoreLockedError(StoreError):
    """The metadata database stayed locked past the busy timeout."""

    code = "locked"


class CorruptObjectError(StoreError):
    """An object's bytes no longer match the hash it is stored under."""

    code = "corrupt"


class UntrustedModelError(MlopsError):
    """A model file holds types (or is a pickle) that load only with ``trusted=``."""

    code = "untrusted"


class NotFoundError(MlopsError):
    """A run, experiment, object or reference does not exist."""

    code = "not_found"


class ValidationError(MlopsError):
    """An argument or request is malformed."""

    code = "invalid"


class QueryError(ValidationError):
    """A filter expression cannot be parsed; ``position`` is the 0-based offset."""

    code = "query"

    def __init__(self, message: str, text: str = "", position: int | None = None):
        self.text = text
        self.position = position
        if position is not None and text:
            message = f"{message} (at position {position})\n  {text}\n  {' ' * position}^"
        super().__init__(message)


class UnsafeModelError(ValidationError):
    """A model its flavor cannot save in a format that loads without running code (a
    custom Keras layer, a module ``torch.export`` refuses); ``log_model(model,
    trusted=True)`` saves it pickled instead."""


class ConflictError(MlopsError):
    """The action conflicts with the current state (an existing name, a running job)."""

    code = "conflict"
