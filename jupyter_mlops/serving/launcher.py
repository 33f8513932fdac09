"""A warm launcher for deployments and retraining jobs: one process per store that has
already imported the serving stack (pandas, scikit-learn, skops, uvicorn) and forks a
deployment, or the runner of a model's retraining jobs, on request.

A fresh Python process needs 2–3 s just to import scikit-learn and skops; a fork of the
launcher starts serving in a fraction of a second. The launcher is single-threaded, so
forking it is safe; each deployment calls ``setsid`` and becomes its own process group,
outliving both the kernel and the launcher. The launcher reaps its children, listens on a
Unix socket in the store (``serving/launcher.sock``) and exits after ``IDLE_EXIT_S``
without requests and without live deployments. When it is absent, ``deploy`` starts a
plain process instead and starts the launcher for next time.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .._version import __version__
from ..store.process import spawn_detached, store_env

__all__ = [
    "ensure_launcher",
    "launch",
    "launch_runner",
    "launcher_usable",
    "socket_path",
    "spawn_detached",
    "stop_launcher",
    "store_env",
]

IDLE_EXIT_S = 1800.0
_PRELOAD = (
    "numpy",
    "pandas",
    "sklearn.base",
    "sklearn.linear_model",
    "sklearn.ensemble",
    "sklearn.pipeline",
    "sklearn.preprocessing",
    "skops.io",
    "sqlalchemy",
    "starlette.applications",
    "uvicorn",
    "uvicorn.protocols.http.httptools_impl",
    "uvloop",
    "prometheus_client",
    "jupyter_mlops.serving.__main__",
    "jupyter_mlops.serving.app",
    "jupyter_mlops.serving.server",
    "jupyter_mlops.serving.follow",
    "jupyter_mlops.registry.service",
    "jupyter_mlops.tracking.modelio",
)
# what a retraining runner needs on top: imported (with the environment a replayed run
# records) once the store asks for its first runner, so deployments forked before stay
# lean; the first runner imports them itself
_RUNNER_PRELOAD = (
    "sklearn.metrics",
    "sklearn.model_selection",
    "jupyter_mlops.retraining.runner",
    "jupyter_mlops.tracking.replay",
    "jupyter_mlops.tracking.session",
)


def _code_stamp() -> str:
    """The package version plus the newest mtime of the serving code, so a launcher that
    runs older code (an upgrade, an edit in a development install) is replaced."""
    folder = Path(__file__).parent
    newest = max((f.stat().st_mtime for f in folder.glob("*.py")), default=0.0)
    return f"{__version__}-{newest:.0f}"


STAMP = _code_stamp()


def _ask(path: Path, request: dict[str, Any], timeout: float) -> dict[str, Any]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(timeout)
        conn.connect(str(path))
        conn.sendall(json.dumps(request).encode() + b"\n")
        return json.loads(conn.makefile("rb").readline() or b"{}")


def socket_path(home: Path) -> Path:
    """Where the launcher of the store at ``home`` listens."""
    return home / "serving" / "launcher.sock"


def _usable(path: Path) -> bool:
    return len(os.fsencode(str(path))) < 100 and os.name == "posix"


def launcher_usable(home: Path) -> bool:
    """Whether a launcher can serve this store (POSIX, and a Unix socket path short enough)."""
    return _usable(socket_path(home))


def _fork(home: Path, request: dict[str, Any]) -> int | None:
    """Send a fork request; the child's pid, or None when no launcher (of this package
    version) answers."""
    path = socket_path(home)
    if not _usable(path) or not path.exists():
        return None
    try:
        reply = _ask(path, {**request, "version": STAMP}, 5.0)
    except (OSError, ValueError):
        return None
    if reply.get("version") != STAMP or not reply.get("launched"):
        return None
    return int(reply["launched"])


def launch(
    home: Path,
    deployment_id: str,
    port: int,
    env: dict[str, str],
    log_path: str,
    *,
    trusted: bool = False,
) -> int | None:
    """Ask the launcher to fork deployment ``deployment_id``; its pid, or None."""
    request = {"deployment": deployment_id, "port": port, "env": env, "log": log_path}
    return _fork(home, {**request, "trusted": trusted is True})


def launch_runner(home: Path, model: str, env: dict[str, str], log_path: str) -> int | None:
    """Ask the launcher to fork the runner of ``model``'s retraining jobs (no 2–3 s of
    imports); its pid, or None."""
    return _fork(home, {"job_model": model, "env": env, "log": log_path})


def stop_launcher(home: Path) -> int | None:
    """Stop the store's launcher (deployments it started keep running); its pid or None."""
    path = socket_path(home)
    if not _usable(path) or not path.exists():
        return None
    try:
        reply = _ask(path, {"stop": True}, 5.0)
    except (OSError, ValueError):
        return None
    pid = reply.get("pid")
    if pid:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                os.kill(int(pid), 0)
            except ProcessLookupError:
                break
            time.sleep(0.02)
    return pid


def ensure_launcher(home: Path, env: dict[str, str]) -> subprocess.Popen[bytes] | None:
    """Start the store's launcher in the background unless one is listening already;
    returns the new process (None when one already runs or none can)."""
    path = socket_path(home)
    if not _usable(path):
        return None
    if path.exists():
        try:
            reply = _ask(path, {"ping": True}, 1.0)
            if reply.get("version") == STAMP:
                return None
            if reply.get("pid"):
                os.kill(int(reply["pid"]), signal.SIGTERM)
        except (OSError, ValueError):
            pass
    path.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "jupyter_mlops.serving.launcher", str(home)]
    return spawn_detached(command, str(path.parent / "launcher.log"), env)


def _child(request: dict[str, Any]) -> None:
    """In the forked child: become a deployment process (or a job runner) and never
    return."""
    code = 1
    job_model = request.get("job_model")
    try:
        os.setsid()
        try:  # show up as the deployment in ps/top (the command line stays the launcher's)
            with open("/proc/self/comm", "w") as comm:
                comm.write((request.get("deployment") or "mlops-retrain")[:15])
        except OSError:
            pass
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        fd = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.environ.clear()  # the caller's environment, not the launcher's
        os.environ.update(request["env"])
        from ..store import reset_current_store

        reset_current_store()
        if job_model is not None:
            from ..retraining.__main__ import main as run_jobs

            code = run_jobs(["--model", job_model])
        else:
            from .__main__ import main

            trust = ["--trusted"] if request.get("trusted") is True else []
            code = main(
                ["--deployment", request["deployment"], "--port", str(request["port"]), *trust]
            )
    except BaseException as exc:  # report, then leave without running the launcher's code
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _children_alive(children: set[int]) -> set[int]:
    alive = set()
    for pid in children:
        try:
            os.kill(pid, 0)
            alive.add(pid)
        except ProcessLookupError:
            pass
    return alive


def _preload(modules: tuple[str, ...]) -> None:
    import importlib

    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError:
            pass


def _preload_runner() -> None:
    _preload(_RUNNER_PRELOAD)
    try:  # what a replayed run records about its environment, computed once here
        from ..tracking import environment

        environment._module_to_dists()
    except Exception:
        pass
    _settle()


def _settle() -> None:
    """Before forking: collect import garbage, hand free heap pages back to the OS (a
    fork's RSS counts every page the launcher holds), and freeze what is left so the
    forks' garbage collector never walks (or writes to) the preloaded objects."""
    import gc

    from .memory import release_memory

    gc.collect()
    release_memory()
    gc.freeze()


def serve_forever(home: Path) -> None:
    """The launcher's loop: preload, listen, fork on request, exit when idle."""
    # Arrow picks its allocator when it loads: malloc, whose free pages a deployment
    # hands back to the OS (see serving.memory), not mimalloc, which keeps them
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
    _preload(_PRELOAD)
    _settle()
    runner_ready = False
    import fcntl

    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped automatically
    path = socket_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = open(path.parent / "launcher.lock", "w")  # noqa: SIM115 (held for its whole life)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        print("another launcher serves this store; exiting", flush=True)
        return
    if path.exists():
        path.unlink()  # stale: its launcher no longer holds the lock
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o077)  # only this user may ask for deployments
    try:
        server.bind(str(path))
    finally:
        os.umask(old_umask)
    server.listen(16)
    server.settimeout(30.0)
    children: set[int] = set()
    last = time.monotonic()
    print(f"launcher {os.getpid()} ready on {path}", flush=True)
    try:
        while True:
            try:
                conn, _ = server.accept()
            except TimeoutError:
                children = _children_alive(children)
                if not children and time.monotonic() - last > IDLE_EXIT_S:
                    break
                continue
            with conn:
                last = time.monotonic()
                try:
                    conn.settimeout(5.0)
                    request = json.loads(conn.makefile("rb").readline() or b"{}")
                except (OSError, ValueError):
                    continue
                reply: dict[str, Any] = {"version": STAMP, "pid": os.getpid()}
                if request.get("stop"):
                    conn.sendall(json.dumps(reply).encode() + b"\n")
                    break
                wanted = "deployment" in request or "job_model" in request
                if wanted and request.get("version") == STAMP:
                    pid = os.fork()
                    if pid == 0:
                        server.close()
                        conn.close()
                        lock.close()
                        _child(request)
                    children.add(pid)
                    reply["launched"] = pid
                    what = (
                        request.get("deployment") or f"retraining runner of {request['job_model']}"
                    )
                    print(f"launched {what} (pid {pid})", flush=True)
                try:
                    conn.sendall(json.dumps(reply).encode() + b"\n")
                except OSError:
                    pass
            if "job_model" in request and "launched" in reply and not runner_ready:
                runner_ready = True  # the next runners start without these imports
                _preload_runner()
    finally:
        server.close()
        try:
            path.unlink()
        except OSError:
            pass
        lock.close()


if __name__ == "__main__":
    serve_forever(Path(sys.argv[1]))
