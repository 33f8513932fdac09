"""Who is writing: the host, pid and process start time that let a store tell a live run from a dead one."""

from __future__ import annotations

import os
import socket
from functools import cache

__all__ = ["is_alive", "this_process"]


def _proc_start(pid: int) -> str:
    """The kernel's start time of ``pid`` (Linux), so a reused pid is not mistaken for the writer."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read().decode(errors="replace")
        return stat.rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


@cache
def _host() -> str:
    return socket.gethostname()


def this_process() -> tuple[str, int, str]:
    """(host, pid, start time) of the current process."""
    pid = os.getpid()
    return _host(), pid, _proc_start(pid)


def is_alive(host: str | None, pid: int | None, proc_start: str | None) -> bool | None:
    """Whether the process that wrote a run still runs; None when it ran on another host."""
    if host != _host() or pid is None:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    if proc_start:
        now = _proc_start(pid)
        if now and now != proc_start:
            return False
    return True
