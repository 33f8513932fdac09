"""Shared fixtures: an isolated store per test and a real IPython shell."""

from __future__ import annotations

import os
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


def run_cell(ip, code: str):
    """Run a cell as a notebook would (stored in history) and return the result."""
    return ip.run_cell(code, store_history=True)


os.environ.setdefault("PYTHONHASHSEED", "0")
