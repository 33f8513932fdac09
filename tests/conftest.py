"""Shared fixtures: an isolated store per test and a real IPython shell."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from jupyter_mlops.store import reset_current_store
from jupyter_mlops.tracking.defaults import set_default_experiment


@pytest.fixture
def store_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh store folder, selected through MLOPS_HOME as a user would."""
    home = tmp_path / "store"
    monkeypatch.setenv("MLOPS_HOME", str(home))
    monkeypatch.delenv("MLOPS_DB_URL", raising=False)
    monkeypatch.delenv("MLOPS_ARTIFACTS_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    reset_current_store()
    set_default_experiment(None)
    yield home
    reset_current_store()
    set_default_experiment(None)


@pytest.fixture(scope="session")
def _shell():
    from IPython.testing.globalipapp import start_ipython

    shell = start_ipython()
    shell.run_cell("%load_ext jupyter_mlops", store_history=False)
    return shell


@pytest.fixture
def ip(_shell, store_dir: Path):
    """A real IPython shell with the extension loaded, a clean namespace and history."""
    _shell.reset(new_session=True)
    _shell.run_cell("%load_ext jupyter_mlops", store_history=True)
    yield _shell
    _shell.reset(new_session=True)


def cli(store_dir: Path, *args: str) -> subprocess.CompletedProcess:
    """Run ``jupyter-mlops ARGS`` in a subprocess on the store at ``store_dir``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLOPS_")}
    env["MLOPS_HOME"] = str(store_dir)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    return subprocess.run(
        [sys.executable, "-m", "jupyter_mlops.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def run_cell(ip, code: str):
    """Run a cell as a notebook would (stored in history) and return the result."""
    return ip.run_cell(code, store_history=True)


os.environ.setdefault("PYTHONHASHSEED", "0")
