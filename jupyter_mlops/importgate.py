"""Keep two threads from importing scikit-learn at the same time.

The extension's warm-up imports skops (which imports every scikit-learn estimator) in a
background thread. scikit-learn's modules import each other in cycles, and when the
user's cell imports them while that thread does, Python's per-module import locks can
hand one thread a half-initialized module: ``ImportError: cannot import name
'BaseLibSVM' from partially initialized module 'sklearn.svm._base'``. While the gate is
open, an import of a guarded package from any other thread waits for the warm-up to
finish (it would import the same modules anyway), then proceeds.
"""

from __future__ import annotations

import builtins
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["GUARDED", "serialized_imports"]

GUARDED = frozenset({"sklearn", "skops"})
_WAIT_S = 60.0  # a backstop: never wait forever, whatever happens in the warm-up


def _inside_guarded_import(guarded: frozenset[str]) -> bool:
    """Whether this thread already holds the import lock of a guarded module (it started
    importing scikit-learn before the gate opened): waiting then would deadlock."""
    try:
        import importlib._bootstrap as bootstrap

        me = threading.get_ident()
        for module, ref in list(bootstrap._module_locks.items()):
            lock = ref()
            if lock is not None and module.partition(".")[0] in guarded:
                if getattr(lock, "owner", None) == me:
                    return True
    except Exception:
        return True  # cannot tell: do not wait
    return False


@contextmanager
def serialized_imports(guarded: frozenset[str] = GUARDED) -> Iterator[None]:
    """Within this block (entered by the importing thread), other threads wait at their
    outermost import of a ``guarded`` package until the block ends."""
    done = threading.Event()
    owner = threading.get_ident()
    original = builtins.__import__

    local = threading.local()

    def gated(
        name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0
    ) -> Any:
        if (
            level == 0
            and not done.is_set()
            and threading.get_ident() != owner
            and name.partition(".")[0] in guarded
            and not getattr(local, "depth", 0)  # only a thread's outermost import waits
            and not _inside_guarded_import(guarded)
        ):
            done.wait(_WAIT_S)
        local.depth = getattr(local, "depth", 0) + 1
        try:
            return original(name, globals, locals, fromlist, level)
        finally:
            local.depth -= 1

    builtins.__import__ = gated
    try:
        yield
    finally:
        done.set()
        if builtins.__import__ is gated:
            builtins.__import__ = original
