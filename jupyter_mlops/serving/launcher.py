"""A warm launcher for deployments and retraining jobs: one process per store that has
already imported the serving stack (pandas, scikit-learn, skops, uvicorn) and forks a
deployment, or the runner of a model's retraining jobs, on request.

A fresh Python process needs 2–3 s just to import scikit-learn and skops; a fork of the
launcher starts serving in a fraction of a second. The launcher is single-threaded, so
forking it is safe; each deployment calls ``setsid`` and becomes its own session and
process group, outliving both the kernel and the launcher (a SIGTERM to the launcher
stops the launcher only). It listens on a Unix socket in the store
(``serving/launcher.sock``).

At most one per store: the starter takes an exclusive ``flock`` on
``serving/launcher.lock`` and hands the locked file to the launcher it spawns, which
holds it for its whole life; a starter that finds the lock taken starts nothing and
connects to the launcher that holds it once it listens.

It exits once its store has had, for ``MLOPS_LAUNCHER_IDLE_S`` seconds (90 by default),
no request, no live deployment or job runner and no live kernel using it. Who uses it is
kept as leases, one small file per process in ``serving/leases/``: the deployments and
runners it forked (and deployments started without it), and the kernels that asked for
it (a kernel's lease lasts while its process lives).
"""

from __future__ import annotations

import contextlib
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
from ..store.process import _host, _proc_start, is_alive, spawn_detached, store_env

__all__ = [
    "IDLE_ENV",
    "add_lease",
    "ensure_launcher",
    "idle_exit_seconds",
    "launch",
    "launch_runner",
    "launcher_info",
    "launcher_usable",
    "launchers",
    "socket_path",
    "spawn_detached",
    "stop_launcher",
    "store_env",
]

IDLE_ENV = "MLOPS_LAUNCHER_IDLE_S"
DEFAULT_IDLE_S = 90.0
_COMM = "mlops-launcher"  # the launcher's name in ps/top (its forks rename themselves)
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


def idle_exit_seconds(environ: Any = None) -> float:
    """How long a launcher stays without requests, deployments or kernels before it exits:
    ``MLOPS_LAUNCHER_IDLE_S`` (seconds), else 90."""
    text = (os.environ if environ is None else environ).get(IDLE_ENV, "")
    try:
        value = float(text) if text.strip() else DEFAULT_IDLE_S
    except ValueError:
        return DEFAULT_IDLE_S
    return value if value > 0 else DEFAULT_IDLE_S


def _ask(path: Path, request: dict[str, Any], timeout: float) -> dict[str, Any]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(timeout)
        conn.connect(str(path))
        conn.sendall(json.dumps(request).encode() + b"\n")
        return json.loads(conn.makefile("rb").readline() or b"{}")


def socket_path(home: Path) -> Path:
    """Where the launcher of the store at ``home`` listens."""
    return Path(home) / "serving" / "launcher.sock"


def _lock_path(home: Path) -> Path:
    return Path(home) / "serving" / "launcher.lock"


def _lease_dir(home: Path) -> Path:
    return Path(home) / "serving" / "leases"


def _usable(path: Path) -> bool:
    return len(os.fsencode(str(path))) < 100 and os.name == "posix"


def launcher_usable(home: Path) -> bool:
    """Whether a launcher can serve this store (POSIX, and a Unix socket path short enough)."""
    return _usable(socket_path(home))


# ---- leases: who uses the launcher (files, so a launcher started later sees them too)


def add_lease(home: Path, pid: int, kind: str, what: str | None = None) -> None:
    """Record that process ``pid`` (a ``kernel``, a ``deployment`` or a ``runner``) uses
    the store's launcher while it lives; a lease ends with its process."""
    folder = _lease_dir(home)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        body = {"pid": pid, "start": _proc_start(pid), "kind": kind, "what": what}
        tmp = folder / f".{kind}-{pid}.tmp"
        tmp.write_text(json.dumps(body))
        os.replace(tmp, folder / f"{kind}-{pid}.json")
    except OSError:
        pass  # a read-only store: the launcher goes by requests and its own forks


_KERNEL_LEASES: set[str] = set()


def _in_a_kernel() -> bool:
    """Whether this process is a running Jupyter kernel (its kernel app initialized; a
    process that merely imported ipykernel is not one). Nothing is imported here."""
    app = sys.modules.get("ipykernel.kernelapp")
    try:
        return bool(app is not None and app.IPKernelApp.initialized())
    except Exception:
        return False


def _lease_this_kernel(home: Path) -> None:
    """A kernel (a Jupyter kernel process) that uses the launcher keeps it while it lives;
    other clients (a script, the CLI, the server extension) count as activity only."""
    key = str(home)
    if key in _KERNEL_LEASES or not _in_a_kernel():
        return
    _KERNEL_LEASES.add(key)
    add_lease(home, os.getpid(), "kernel")


def _live_leases(home: Path) -> list[dict[str, Any]]:
    """The leases whose process still runs; those of ended processes are removed."""
    folder = _lease_dir(home)
    live = []
    try:
        entries = list(folder.glob("*.json"))
    except OSError:
        return []
    for entry in entries:
        try:
            lease = json.loads(entry.read_text())
            alive = is_alive(_host(), int(lease["pid"]), lease.get("start") or None)
        except (OSError, ValueError, KeyError, TypeError):
            alive = False
            lease = None
        if alive and lease is not None:
            live.append(lease)
        else:
            with contextlib.suppress(OSError):
                entry.unlink()
    return live


# ---- the client side


def _fork(home: Path, request: dict[str, Any]) -> int | None:
    """Send a fork request; the child's pid, or None when no launcher (of this package
    version) answers."""
    path = socket_path(home)
    if not _usable(path) or not path.exists():
        return None
    _lease_this_kernel(home)
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


def launcher_info(home: Path, timeout: float = 2.0) -> dict[str, Any] | None:
    """What the store's launcher says about itself (pid, version, idle since, live
    deployments and kernels), or None when none listens. Asking does not count as use."""
    path = socket_path(home)
    if not _usable(path) or not path.exists():
        return None
    try:
        reply = _ask(path, {"info": True}, timeout)
    except (OSError, ValueError):
        return None
    return reply if reply.get("pid") else None


def _pid_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.02)
    return False


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
        _pid_gone(int(pid), 5.0)
    return pid


def _take_lock(home: Path) -> int | None:
    """The store's launcher lock, taken (an open descriptor), or None when a launcher
    (running or starting) holds it."""
    import fcntl

    path = _lock_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def launcher_running(home: Path) -> bool:
    """Whether a launcher of this store runs or is starting (it holds the store's lock)."""
    fd = _take_lock(home)
    if fd is None:
        return True
    os.close(fd)  # closing releases it
    return False


def ensure_launcher(home: Path, env: dict[str, str]) -> subprocess.Popen[bytes] | None:
    """Start the store's launcher in the background unless one runs or is starting already
    (then this caller uses that one); returns the new process, else None."""
    path = socket_path(home)
    if not _usable(path):
        return None
    _lease_this_kernel(home)
    if path.exists():
        try:
            reply = _ask(path, {"ping": True}, 1.0)
            if reply.get("version") == STAMP:
                return None
            if reply.get("pid"):  # older code: replace it (its deployments keep running)
                os.kill(int(reply["pid"]), signal.SIGTERM)
                _pid_gone(int(reply["pid"]), 10.0)
        except (OSError, ValueError):
            pass
    fd = _take_lock(home)
    if fd is None:
        return None  # another starter won: its launcher answers once it has imported
    try:
        command = [sys.executable, "-m", "jupyter_mlops.serving.launcher", str(home)]
        command += ["--lock-fd", str(fd)]
        return spawn_detached(command, str(path.parent / "launcher.log"), env, pass_fds=(fd,))
    finally:
        os.close(fd)  # the launcher holds the lock from here on


def wait_for_launcher(home: Path, started: Any, timeout: float, ask: Any) -> Any:
    """Call ``ask()`` until it returns something (the launcher answers) or no launcher
    can: the one started exited, or none holds the store's lock; None then."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = ask()
        if answer is not None:
            return answer
        if started is not None and started.poll() is not None:
            return None  # it could not start (see serving/launcher.log)
        if started is None and not launcher_running(home):
            return None
        time.sleep(0.05)
    return None


def _launcher_processes() -> list[tuple[int, str]]:
    """(pid, store folder) of every launcher of this user on this machine (Linux)."""
    found = []
    if not os.path.isdir("/proc"):
        return found
    uid = os.getuid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.stat(f"/proc/{entry}").st_uid != uid:
                continue
            with open(f"/proc/{entry}/comm") as fh:
                if fh.read().strip() != _COMM:
                    continue
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                argv = fh.read().decode(errors="replace").split("\0")
        except OSError:
            continue
        if "jupyter_mlops.serving.launcher" in argv:
            at = argv.index("jupyter_mlops.serving.launcher")
            if at + 1 < len(argv):
                found.append((int(entry), argv[at + 1]))
    return found


def launchers(home: Path | None = None) -> list[dict[str, Any]]:
    """The launchers on this machine (of this user), or the one of the store at ``home``:
    pid, store, status (``ready`` or ``starting``: still importing), idle since (None
    while in use), the deployments it forked that still run, and the kernels using it."""
    out = []
    for pid, folder in sorted(_launcher_processes()):
        if home is not None and Path(folder) != Path(home):
            continue
        info = launcher_info(Path(folder), 1.0) or {}
        ready = info.get("pid") == pid
        out.append(
            {
                "pid": pid,
                "store": folder,
                "status": "ready" if ready else "starting",
                "idle_since": info.get("idle_since") if ready else None,
                "idle_exit_s": info.get("idle_exit_s") if ready else None,
                "deployments": info.get("deployments", []) if ready else [],
                "kernels": info.get("kernels", 0) if ready else 0,
            }
        )
    return out


# ---- the launcher process


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


def _name_process(name: str) -> None:
    """How the process shows in ps/top and in ``launchers()`` (Linux)."""
    try:
        with open("/proc/self/comm", "w") as comm:
            comm.write(name[:15])
    except OSError:
        pass


def _terminate(signum: int, frame: Any) -> None:
    raise SystemExit(0)  # leave through serve_forever's cleanup; the forks are not touched


def _hold_lock(home: Path, lock_fd: int | None) -> int | None:
    """The store's lock for this launcher: handed over by its starter (``lock_fd``,
    already locked) or taken now; None when another launcher holds it."""
    import fcntl

    if lock_fd is None:
        return _take_lock(home)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # ours already: a no-op
    except OSError:
        os.close(lock_fd)
        return None
    return lock_fd


def serve_forever(home: Path, lock_fd: int | None = None) -> None:
    """The launcher's loop: hold the store's lock (before anything else, so a store never
    has two), preload, listen, fork on request, exit when idle."""
    home = Path(home)
    _name_process(_COMM)
    lock = _hold_lock(home, lock_fd)
    if lock is None:
        print("another launcher serves this store; exiting", flush=True)
        return
    os.set_inheritable(lock, False)
    signal.signal(signal.SIGTERM, _terminate)
    idle_s = idle_exit_seconds()
    tick = max(0.1, min(5.0, idle_s / 4))
    path = socket_path(home)
    server = None
    try:
        # Arrow picks its allocator when it loads: malloc, whose free pages a deployment
        # hands back to the OS (see serving.memory), not mimalloc, which keeps them
        os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
        _preload(_PRELOAD)
        _settle()
        signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped automatically
        if path.exists():
            path.unlink()  # stale: its launcher no longer holds the lock
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o077)  # only this user may ask for deployments
        try:
            server.bind(str(path))
        finally:
            os.umask(old_umask)
        server.listen(16)
        server.settimeout(tick)
        print(f"launcher {os.getpid()} ready on {path} (exits after {idle_s:g} s idle)", flush=True)
        _serve(home, server, lock, idle_s, tick)
    finally:
        if server is not None:
            server.close()
            with contextlib.suppress(OSError):
                path.unlink()
        os.close(lock)


def _serve(home: Path, server: socket.socket, lock: int, idle_s: float, tick: float) -> None:
    runner_ready = False
    children: set[int] = set()  # also tracked without leases (a read-only store)
    last_use = time.monotonic()
    last_use_wall = time.time()
    last_check = 0.0

    def usage() -> tuple[list[dict[str, Any]], bool]:
        nonlocal children, last_use, last_use_wall
        leases = _live_leases(home)
        children = _children_alive(children)
        used = bool(children) or bool(leases)
        if used:
            last_use, last_use_wall = time.monotonic(), time.time()
        return leases, used

    while True:
        try:
            conn, _ = server.accept()
        except TimeoutError:
            conn = None
        request: dict[str, Any] = {}
        if conn is not None:
            with conn:
                try:
                    conn.settimeout(5.0)
                    request = json.loads(conn.makefile("rb").readline() or b"{}")
                except (OSError, ValueError):
                    request = {}
                reply: dict[str, Any] = {"version": STAMP, "pid": os.getpid()}
                if request.get("info"):
                    leases, used = usage()
                    reply.update(
                        idle_since=None if used else last_use_wall,
                        idle_exit_s=idle_s,
                        deployments=sorted(
                            str(x.get("what") or x["pid"])
                            for x in leases
                            if x.get("kind") == "deployment"
                        ),
                        runners=sum(1 for x in leases if x.get("kind") == "runner"),
                        kernels=sum(1 for x in leases if x.get("kind") == "kernel"),
                    )
                elif request:
                    last_use, last_use_wall = time.monotonic(), time.time()
                if request.get("stop"):
                    with contextlib.suppress(OSError):
                        conn.sendall(json.dumps(reply).encode() + b"\n")
                    return
                wanted = "deployment" in request or "job_model" in request
                if wanted and request.get("version") == STAMP:
                    pid = os.fork()
                    if pid == 0:
                        server.close()
                        conn.close()
                        os.close(lock)  # a deployment never holds the store's lock
                        _child(request)
                    children.add(pid)
                    reply["launched"] = pid
                    job = "job_model" in request
                    add_lease(
                        home,
                        pid,
                        "runner" if job else "deployment",
                        request.get("job_model") if job else request.get("deployment"),
                    )
                    what = request.get("deployment") or (
                        f"retraining runner of {request['job_model']}"
                    )
                    print(f"launched {what} (pid {pid})", flush=True)
                with contextlib.suppress(OSError):
                    conn.sendall(json.dumps(reply).encode() + b"\n")
            if "job_model" in request and "launched" in reply and not runner_ready:
                runner_ready = True  # the next runners start without these imports
                _preload_runner()
        now = time.monotonic()
        if now - last_check >= tick:
            last_check = now
            _, used = usage()
            if not used and time.monotonic() - last_use > idle_s:
                print(f"launcher {os.getpid()}: idle for {idle_s:g} s, exiting", flush=True)
                return


def _main(argv: list[str]) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m jupyter_mlops.serving.launcher")
    parser.add_argument("home")
    parser.add_argument("--lock-fd", type=int, default=None)
    args = parser.parse_args(argv)
    serve_forever(Path(args.home), args.lock_fd)


if __name__ == "__main__":
    _main(sys.argv[1:])
