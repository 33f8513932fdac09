"""The Jupyter server extension: the REST API the JupyterLab sidebar talks to, and the
background loop that health-checks deployments, runs due monitors and due retraining
policies. An interface: it parses requests and calls the services."""

from __future__ import annotations

from typing import Any

__all__ = ["_load_jupyter_server_extension"]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    """Resolve the store from the server's root folder (the rule kernels started there
    follow), add the routes, start the loop."""
    from pathlib import Path

    from ..store import Store, resolve_location
    from .handlers import setup_handlers
    from .loop import AutomationLoop

    config = serverapp.config.get("JupyterMlops", {})
    root = Path(getattr(serverapp, "root_dir", ".") or ".").expanduser()
    store = Store(resolve_location(cwd=root))
    loop = AutomationLoop(store, interval=float(config.get("interval", 30.0)))
    serverapp.web_app.settings["jupyter_mlops"] = {"store": store, "loop": loop}
    setup_handlers(serverapp.web_app)
    from tornado.ioloop import IOLoop

    IOLoop.current().add_callback(loop.start)  # once the server's event loop runs
    serverapp.log.info("jupyter_mlops: REST API at /jupyter-mlops/api/, store %s", store.describe())
