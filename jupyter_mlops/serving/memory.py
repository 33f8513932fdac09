"""The serving process's memory: Arrow on malloc, one malloc arena for all its threads,
and free heap pages handed back to the OS after the inference log's writer has freed a
batch.

A long-running server's RSS is what a deployment costs its host; glibc keeps freed
memory for reuse, per thread arena, so without this a server under load grows by tens of
MB that it never uses again. Both are no-ops where glibc is not the C library.
"""

from __future__ import annotations

import functools
import sys
from typing import Any

__all__ = ["limit_malloc_arenas", "release_memory", "use_system_allocator"]

_M_ARENA_MAX = -8  # glibc's mallopt parameter


@functools.cache
def _libc() -> Any:
    import ctypes
    import ctypes.util

    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        if not (hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt")):
            return None  # glibc only (musl has neither)
    except OSError:
        return None
    return libc


def limit_malloc_arenas(arenas: int = 1) -> None:
    """Let every thread of the serving process allocate from ``arenas`` malloc arenas.

    glibc gives each new thread (the log writer, the thread pool) an arena of its own,
    up to 8 per core, and an arena's free memory rarely goes back to the OS: a server
    under load grows by tens of MB for nothing. The GIL serializes most allocations
    anyway, so one arena costs no speed. Called before the server starts its threads."""
    libc = _libc()
    if libc is not None:
        libc.mallopt(_M_ARENA_MAX, arenas)


def release_memory() -> None:
    """Give the heap's free pages back to the OS (``malloc_trim``); the GIL is released
    while it runs. The inference log writer calls it after a flush, when the request
    buffers it just wrote are freed."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


def use_system_allocator() -> None:
    """Make Arrow allocate with malloc, before anything in the process allocates with
    Arrow (loading a model does, through pandas): its default pool (mimalloc) reserves
    1 GiB, keeps what it freed, and is not returned by ``malloc_trim``. Arrow's C++ code
    (the Parquet writer) reads ``ARROW_DEFAULT_MEMORY_POOL`` once, when pyarrow loads, so
    the serving process and the launcher set that first; this covers the Python side."""
    import pyarrow as pa

    if pa.default_memory_pool().backend_name != "system":
        pa.set_memory_pool(pa.system_memory_pool())
