"""Credentials in store URLs never reach a user: one function (``redact``) everywhere a
store address or an error is shown (REST ``version``, the server log, the sidebar's
tooltip, ``doctor``, ``%mlops store``, error messages)."""

from __future__ import annotations

from pathlib import Path

import pytest

import jupyter_mlops as mlops
from jupyter_mlops.errors import NotFoundError
from jupyter_mlops.redact import redact
from jupyter_mlops.store import reset_current_store

pytest_plugins = ["pytest_jupyter.jupyter_server"]

SECRET = "Sup3rS3cretValue"


@pytest.mark.parametrize(
    ("url", "kept"),
    [
        (f"postgresql://alice:{SECRET}@db.internal:5432/mlops", "postgresql://alice:***@db.internal:5432/mlops"),
        (f"postgresql+psycopg://alice:{SECRET}@db/mlops?sslmode=require", "postgresql+psycopg://alice:***@db/mlops?sslmode=require"),
        (f"s3://AKIAEXAMPLE:{SECRET}@team-mlops/store", "s3://AKIAEXAMPLE:***@team-mlops/store"),
        (f"s3://team-mlops/store?aws_secret_access_key={SECRET}&region=eu", "s3://team-mlops/store?aws_secret_access_key=***&region=eu"),
        (f"https://b.s3.amazonaws.com/o?X-Amz-Credential=AK%2F1&X-Amz-Signature={SECRET}&X-Amz-Expires=60", "https://b.s3.amazonaws.com/o?X-Amz-Credential=***&X-Amz-Signature=***&X-Amz-Expires=60"),
        (f"abfs://c@acct.dfs.core.windows.net/p?sv=2022&sig={SECRET}", "abfs://c@acct.dfs.core.windows.net/p?sv=2022&sig=***"),
        (f"gcs://bucket/path?token={SECRET}", "gcs://bucket/path?token=***"),
        (f"https://{SECRET}{SECRET}{SECRET}@github.com/org/repo", "https://***@github.com/org/repo"),
        ("sqlite:////home/me/.mlops/mlops.db", "sqlite:////home/me/.mlops/mlops.db"),
        ("/home/me/project/.mlops/objects", "/home/me/project/.mlops/objects"),
    ],
)  # fmt: skip
def test_redact_hides_passwords_and_secret_query_keys(url: str, kept: str):
    assert redact(url) == kept
    assert SECRET not in redact(f"Cannot reach {url}: timed out ('{url}')")


@pytest.fixture
def secret_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An embedded database with an artifacts URL carrying a token in its query string
    (a real, working fsspec URL: the local folder's name holds the query)."""
    home = tmp_path / "store"
    objects = f"file://{tmp_path}/objects?access_token={SECRET}"
    monkeypatch.setenv("MLOPS_HOME", str(home))
    monkeypatch.setenv("MLOPS_ARTIFACTS_URL", objects)
    monkeypatch.delenv("MLOPS_DB_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    reset_current_store()
    mlops.snapshot(__import__("pandas").DataFrame({"a": [1, 2]}), "d")  # the URL really works
    yield home
    reset_current_store()


def test_store_descriptions_and_errors_hide_the_token(secret_store: Path):
    from jupyter_mlops.store import current_store

    assert SECRET not in current_store().describe()
    assert "access_token=***" in current_store().describe()
    with pytest.raises(NotFoundError) as info:
        mlops.get_run("nosuchrun")
    assert SECRET not in str(info.value)


def test_doctor_hides_the_token(secret_store: Path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    doctor = subprocess.run(
        [sys.executable, "-m", "jupyter_mlops.cli", "doctor"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert SECRET not in doctor.stdout + doctor.stderr
    assert "access_token=***" in doctor.stdout


@pytest.fixture
def jp_server_config(secret_store):
    return {
        "ServerApp": {"jpserver_extensions": {"jupyter_mlops": True}},
        "JupyterMlops": {"interval": 0},
    }


async def test_the_version_route_hides_the_token(jp_fetch):
    """The sidebar's store tooltip shows this field; the server's start-up log line is the
    same ``describe()``."""
    import json

    response = await jp_fetch("jupyter-mlops", "api", "version")
    assert SECRET not in response.body.decode()
    assert "access_token=***" in json.loads(response.body)["store"]
