"""Who is writing: the host, pid and process start time that let a store tell a live run
from a dead one; and starting detached processes that resolve the same store."""

from __future__ import annotations

import os
import socket
import subprocess
from functools import cache
from typing import Any

__all__ = ["group_alive", "is_alive", "spawn_detached", "store_env", "this_process"]


def _stat(pid: int | str) -> list[bytes]:
    """The fields of ``/proc/PID/stat`` after the command name (state first), or [] (Linux)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return []


def _proc_start(pid: int) -> str:
    """The kernel's start time of ``pid`` (Linux), so a reused pid is not mistaken for the writer."""
    fields = _stat(pid)
    return fields[19].decode() if len(fields) > 19 else ""


def group_alive(pgid: int) -> bool:
    """Whether a live (not zombie) process is left in process group ``pgid``."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if not os.path.isdir("/proc"):
        return True
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(entry)
            if len(fields) > 2 and int(fields[2]) == pgid and fields[0] != b"Z":
                return True
    return False


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
    fields = _stat(pid)
    if fields and fields[0] == b"Z":  # exited, not yet reaped by its parent
        return False
    if proc_start:
        now = _proc_start(pid)
        if now and now != proc_start:
            return False
    return True


def spawn_detached(
    command: list[str], log_path: str, env: dict[str, str], *, pass_fds: tuple[int, ...] = ()
) -> Any:
    """Start ``command`` in a session of its own (it outlives the caller), with no stdin
    and its output appended to ``log_path``; ``pass_fds`` stay open in it."""
    with open(log_path, "ab") as out:
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            close_fds=True,
            pass_fds=pass_fds,
        )


def store_env(store: Any) -> dict[str, str]:
    """This process's environment with the store's location spelled out, so a serving
    process, job or kernel resolves exactly the same store."""
    loc = store.location
    env = {
        **os.environ,
        "MLOPS_HOME": str(loc.home),
        "MLOPS_DB_URL": loc.db_url,
        "MLOPS_ARTIFACTS_URL": loc.artifacts_url,
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    return env
