"""Start JupyterLab on 127.0.0.1 for the browser tests (Debian's chromium through
Playwright): a token, a root folder, the store through MLOPS_HOME, no news toasts."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
TOKEN = "mlops-test-token"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running_lab(root: Path, store: Path, log_path: Path, *args: str) -> Iterator[str]:
    """JupyterLab serving ``root`` with the store at ``store``; yields its URL."""
    if not os.path.exists(CHROMIUM):
        pytest.fail(
            "Debian's chromium is missing: `make test` installs it (apt-get install chromium)."
        )
    settings = Path(sys.prefix) / "share" / "jupyter" / "lab" / "settings"
    settings.mkdir(parents=True, exist_ok=True)
    (settings / "overrides.json").write_text(
        json.dumps(
            {
                "@jupyterlab/apputils-extension:notification": {
                    "fetchNews": "false",
                    "checkForUpdates": False,
                }
            }
        )
    )
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLOPS_")}
    env.update(
        MLOPS_HOME=str(store),
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
    )
    log = open(log_path, "w")  # noqa: SIM115 - closed after the server stops
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyter",
            "lab",
            "--no-browser",
            "--allow-root",
            f"--port={port}",
            "--ServerApp.ip=127.0.0.1",
            f"--IdentityProvider.token={TOKEN}",
            f"--ServerApp.root_dir={root}",
            # No layout or settings (theme) carried over from, or left to, other runs.
            f"--LabApp.workspaces_dir={log_path.parent / 'workspaces'}",
            f"--LabApp.user_settings_dir={log_path.parent / 'user-settings'}",
            *args,
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=2)
            break
        except OSError:
            time.sleep(0.5)
    else:
        server.terminate()
        pytest.fail(f"JupyterLab did not start: {log_path.read_text()[-2000:]}")
    try:
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
