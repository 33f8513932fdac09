"""Run the serving app under uvicorn on a socket we bind ourselves, so a port in use is a
clear error before anything starts, port 0 picks a free port, and ``--workers N`` shares
the one socket among N worker processes (uvicorn's own multiprocess supervisor).
"""

from __future__ import annotations

import ipaddress
import os
import socket
import tempfile
from collections.abc import Callable
from typing import Any

from ..errors import ConflictError, ValidationError
from .app import CONFIG_ENV, ServeConfig, create_app
from .memory import limit_malloc_arenas

__all__ = ["bind", "is_loopback", "run"]


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost: the only hosts that need no token."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (0 picks a free port), or a ConflictError saying why."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno in (98, 48):  # EADDRINUSE on Linux / macOS
            raise ConflictError(
                f"Port {port} on {host} is already in use; choose another port= or leave it "
                "out to pick a free one."
            ) from exc
        raise ValidationError(f"Cannot listen on {host}:{port}: {exc.strerror or exc}.") from exc
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def run(
    config: ServeConfig,
    sock: socket.socket,
    *,
    workers: int = 1,
    model: Any = None,
    on_started: Callable[[], None] | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM; on a clean stop the inference log is flushed."""
    import uvicorn

    limit_malloc_arenas()
    import gc

    gc.collect()
    gc.freeze()  # the loaded stack is permanent: full collections never walk it (p99)
    import sys

    # the inference log's writer holds the GIL in Python code for a few ms per flush; a
    # request waiting for it gets it back after 1 ms instead of the default 5 ms
    sys.setswitchinterval(0.001)
    options: dict[str, Any] = {
        "log_level": "warning",
        "access_log": False,
        "http": "httptools",
        "loop": "uvloop" if os.name != "nt" else "asyncio",
        "timeout_graceful_shutdown": 10,
        "lifespan": "on",
    }
    if workers <= 1:
        app = create_app(config, model=model)
        server = uvicorn.Server(uvicorn.Config(app, **options))
        if on_started is not None:
            _notify_when_started(server, on_started)
        try:
            server.run(sockets=[sock])
        except KeyboardInterrupt:  # uvicorn re-raises Ctrl-C after its graceful shutdown
            pass
        return
    os.environ[CONFIG_ENV] = config.to_json()
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="mlops-metrics-")
    from uvicorn.supervisors import Multiprocess

    cfg = uvicorn.Config(
        "jupyter_mlops.serving.app:app_from_env", factory=True, workers=workers, **options
    )
    if on_started is not None:
        on_started()
    try:
        Multiprocess(cfg, sockets=[sock]).run()
    except KeyboardInterrupt:
        pass


def _notify_when_started(server: Any, callback: Callable[[], None]) -> None:
    """Call ``callback`` once uvicorn has finished startup (the model is loaded)."""
    original = server.startup

    async def startup(sockets: Any = None) -> None:
        await original(sockets=sockets)
        if server.started:
            callback()

    server.startup = startup
