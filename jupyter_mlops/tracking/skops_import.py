"""Import skops without importing PyTorch, CuPy or Dask.

``import skops.io`` lists every scikit-learn estimator (``sklearn.utils.all_estimators``),
which walks all of scikit-learn's packages, and walking a package imports it: among them
scikit-learn's vendored array API shims for torch, cupy and dask, each of which imports its
library when installed. With PyTorch installed that is about 2 s and 300 MB in every
kernel and serving process that saves or loads a scikit-learn model, and a background
import of torch racing the user's own. The walk skips what fails to import, and
scikit-learn ignores those modules anyway, so while skops is first imported those three
shims are refused; nothing is cached, so a later real use imports them as usual.
"""

from __future__ import annotations

import sys
import threading
from types import ModuleType
from typing import Any

__all__ = ["skops_io"]

_SHIMS = frozenset(
    f"sklearn.externals.array_api_compat.{name}" for name in ("torch", "cupy", "dask")
)
_LOCK = threading.Lock()


class _RefuseShims:
    """A meta path finder that refuses the array API shims (an ImportError, which
    ``pkgutil.walk_packages`` skips)."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name in _SHIMS:
            raise ImportError(f"{name} is not imported while skops lists estimators")
        return None


def skops_io() -> ModuleType:
    """``skops.io``, imported without the heavy array libraries on first use."""
    module = sys.modules.get("skops.io")
    if module is not None:
        return module
    with _LOCK:
        finder = _RefuseShims()
        sys.meta_path.insert(0, finder)
        try:
            import skops.io as module
        finally:
            sys.meta_path.remove(finder)
    return module
