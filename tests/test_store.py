"""The store: resolution rule, migrations, version refusal, corruption, concurrency, reaping."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

import jupyter_mlops as mlops
from jupyter_mlops.errors import CorruptObjectError, StoreVersionError
from jupyter_mlops.store import Store, resolve_location, schema
from jupyter_mlops.store.migrations import LATEST_VERSION, migrate

from .conftest import cli

REPO = Path(__file__).resolve().parents[1]


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLOPS_")}
    env["MLOPS_HOME"] = str(home)
    env["PYTHONPATH"] = str(REPO)
    return env


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- resolution rule ----------------------------------------------------------------------
def test_resolution_prefers_mlops_home(tmp_path, monkeypatch):
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path / "home"))
    loc = resolve_location(cwd=tmp_path)
    assert loc.home == (tmp_path / "home").resolve() and loc.reason == "MLOPS_HOME"
    assert loc.db_url.endswith("home/mlops.db") and loc.embedded


def test_resolution_walks_up_then_defaults_to_cwd(tmp_path, monkeypatch):
    monkeypatch.delenv("MLOPS_HOME", raising=False)
    monkeypatch.delenv("MLOPS_DB_URL", raising=False)
    (tmp_path / "project" / ".mlops").mkdir(parents=True)
    deep = tmp_path / "project" / "notebooks" / "sub"
    deep.mkdir(parents=True)
    assert resolve_location(cwd=deep).home == (tmp_path / "project" / ".mlops").resolve()
    other = tmp_path / "elsewhere"
    other.mkdir()
    loc = resolve_location(cwd=other)
    assert loc.home == (other / ".mlops").resolve() and "created on first write" in loc.reason
    assert not (other / ".mlops").exists()


def test_team_mode_urls(tmp_path, monkeypatch):
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path / "h"))
    monkeypatch.setenv("MLOPS_DB_URL", f"sqlite:///{tmp_path}/team.db")
    monkeypatch.setenv("MLOPS_ARTIFACTS_URL", f"file://{tmp_path}/bucket")
    loc = resolve_location()
    assert not loc.embedded and loc.artifacts_url.endswith("bucket")
    store = Store(loc)
    with mlops.track("t", capture=False, store=store) as run:
        run.log_artifact(b"payload", name="blob")
    assert (tmp_path / "team.db").exists()
    assert any((tmp_path / "bucket").rglob("*"))


def test_read_of_missing_store_creates_nothing(store_dir):
    assert mlops.runs().empty
    assert not store_dir.exists()


# -- schema versions --------------------------------------------------------------------------
def _make_v1_store(home: Path) -> None:
    """A store as the first release (schema 1) wrote it, with one complete run."""
    home.mkdir(parents=True)
    engine = sa.create_engine(f"sqlite:///{home / 'mlops.db'}")
    with engine.begin() as conn:
        migrate(conn, str(home), target=1)
        conn.execute(sa.text("INSERT INTO experiments (name, created) VALUES ('old', 1.0)"))
        conn.execute(
            sa.text(
                "INSERT INTO runs (run_id, experiment_id, name, status, start_time, end_time,"
                " duration_s) VALUES ('a' || printf('%031d', 1), 1, 'legacy', 'finished', 10.0,"
                " 12.5, 2.5)"
            )
        )
        rid = "a" + "0" * 30 + "1"
        conn.execute(
            sa.text(
                "INSERT INTO params (run_id, key, value, num, vtype) VALUES (:r, 'C', '0.5', 0.5, 'float')"
            ),
            {"r": rid},
        )
        for step, value in enumerate([0.5, 0.7, 0.9]):
            conn.execute(
                sa.text(
                    "INSERT INTO metrics (run_id, key, value, step, timestamp) VALUES (:r, 'acc', :v, :s, 11.0)"
                ),
                {"r": rid, "v": value, "s": step},
            )
        conn.execute(
            sa.text(
                "INSERT INTO latest_metrics (run_id, key, value, step, timestamp) VALUES (:r, 'acc', 0.9, 2, 11.0)"
            ),
            {"r": rid},
        )
    engine.dispose()


def test_older_store_is_migrated_in_place_with_data_intact(store_dir):
    _make_v1_store(store_dir)
    frame = mlops.runs(experiment="*")  # the old run is in experiment 'old'
    assert list(frame.name) == ["legacy"]
    assert frame["params.C"][0] == 0.5 and frame["metrics.acc"][0] == 0.9
    run = mlops.get_run(frame.run_id[0])
    assert list(run.metric_history("acc").value) == [0.5, 0.7, 0.9]
    engine = sa.create_engine(f"sqlite:///{store_dir / 'mlops.db'}")
    with engine.connect() as conn:
        versions = [r[0] for r in conn.execute(sa.text("SELECT version FROM mlops_schema"))]
    engine.dispose()
    assert versions == list(range(1, LATEST_VERSION + 1))
    with mlops.track("new", capture=False) as new:  # the migrated store takes new runs
        new.log_metric("acc", 0.95)
    mixed = mlops.runs(
        experiment="*", order_by="name"
    )  # one run with a summary row, one read the old way
    assert list(mixed.name) == ["legacy", "new"]
    assert mixed["params.C"][0] == 0.5 and list(mixed["metrics.acc"]) == [0.9, 0.95]


def test_newer_store_is_refused_and_left_untouched(store_dir, ip):
    with mlops.track("keep", capture=False) as run:
        run.log_param("p", 1)
    from jupyter_mlops.store import reset_current_store

    reset_current_store()
    db = store_dir / "mlops.db"
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        conn.execute(
            schema.schema_version.insert().values(version=99, applied_at=0.0, package_version="9.0")
        )
    engine.dispose()
    before = _digest(db)
    with pytest.raises(StoreVersionError) as info:
        mlops.runs()
    message = str(info.value)
    assert "99" in message and f"up to {LATEST_VERSION}" in message and "pip install -U" in message
    # a tracked cell still runs, with a warning, and the store is not changed
    with pytest.warns(UserWarning, match="newer"):
        result = ip.run_cell("%%track\nz = 5", store_history=True)
    assert result.success and ip.user_ns["z"] == 5
    assert _digest(db) == before


# -- objects -----------------------------------------------------------------------------------
def test_objects_are_content_addressed_and_atomic(store_dir):
    store = mlops.open_store(store_dir)
    digest = store.objects.put(b"hello")
    assert digest == hashlib.sha256(b"hello").hexdigest()
    assert store.objects.put(b"hello") == digest
    assert store.objects.get(digest) == b"hello"
    assert list(store.objects) == [digest]
    leftovers = [p for p in (store_dir / "objects").rglob(".tmp-*")]
    assert leftovers == []


def test_corrupt_object_is_reported_by_doctor_and_reads(store_dir, ip):
    ip.run_cell(
        "from sklearn.linear_model import LinearRegression\nimport numpy as np\n"
        "X = np.arange(20.0).reshape(10, 2); y = X.sum(axis=1)",
        store_history=True,
    )
    assert ip.run_cell("%%track\nreg = LinearRegression().fit(X, y)", store_history=True).success
    run = mlops.get_run(mlops.runs().run_id[0])
    digest = run.models[0]["object_hash"]
    path = store_dir / "objects" / digest[:2] / digest[2:]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptObjectError, match="doctor"):
        run.load_model()
    out = cli(store_dir, "doctor")
    assert out.returncode == 1, out.stdout + out.stderr
    assert f"object {digest} is corrupt" in out.stdout
    path.unlink()
    out = cli(store_dir, "doctor")
    assert out.returncode == 1 and "is missing" in out.stdout


def test_doctor_ok_on_healthy_store(store_dir):
    with mlops.track("fine", capture=False) as run:
        run.log_artifact({"a": 1}, name="config.json")
    out = cli(store_dir, "doctor")
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"schema version: {LATEST_VERSION}" in out.stdout and out.stdout.strip().endswith("ok")


# -- processes ----------------------------------------------------------------------------------
WRITER = textwrap.dedent(
    """
    import sys, warnings
    warnings.simplefilter("error")
    import jupyter_mlops as mlops
    worker = int(sys.argv[1])
    for i in range(100):
        with mlops.track(f"w{worker}-{i}", experiment="load", capture=False) as run:
            run.log_params({"worker": worker, "i": i})
            run.log_metrics({"acc": i / 100, "loss": 1 - i / 100})
        assert run.run_id is not None
    print("done")
    """
)


def test_four_processes_write_400_runs_at_once(store_dir):
    script = store_dir.parent / "writer.py"
    script.write_text(WRITER)
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(w)],
            env=_env(store_dir),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(4)
    ]
    outputs = [p.communicate(timeout=300) for p in procs]
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
        assert out.strip() == "done" and err.strip() == ""
    frame = mlops.runs(experiment="load")
    assert len(frame) == 400
    assert set(frame.status) == {"finished"}
    assert frame["metrics.acc"].notna().all() and frame["params.worker"].notna().all()
    assert sorted(frame.groupby("params.worker").size()) == [100] * 4


KILLED = textwrap.dedent(
    """
    import os, signal
    import jupyter_mlops as mlops
    with mlops.track("doomed", capture=False) as run:
        run.log_param("a", 1)
        print(run.run_id, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """
)


def test_run_of_killed_process_is_marked_killed_on_next_open(store_dir):
    proc = subprocess.run(
        [sys.executable, "-c", KILLED],
        env=_env(store_dir),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == -9
    run_id = proc.stdout.strip()
    engine = sa.create_engine(f"sqlite:///{store_dir / 'mlops.db'}")
    with engine.connect() as conn:
        raw = conn.execute(
            sa.text("SELECT status FROM runs WHERE run_id = :r"), {"r": run_id}
        ).scalar()
    engine.dispose()
    assert raw == "running"
    time.sleep(0.05)
    run = mlops.get_run(run_id)  # opening the store reaps it
    assert run.status == "killed" and "died" in run.error


def _describe(engine: sa.Engine) -> dict:
    inspector = sa.inspect(engine)
    out = {}
    for table in sorted(inspector.get_table_names()):
        columns = {
            c["name"]: (str(c["type"]), c["nullable"], bool(c.get("primary_key")))
            for c in inspector.get_columns(table)
        }
        indexes = sorted(
            (i["name"], tuple(i["column_names"]), bool(i["unique"]))
            for i in inspector.get_indexes(table)
        )
        uniques = sorted(tuple(u["column_names"]) for u in inspector.get_unique_constraints(table))
        out[table] = (columns, indexes, uniques)
    return out


def test_new_store_schema_equals_the_migration_chain(tmp_path):
    fresh = sa.create_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    with fresh.begin() as conn:
        migrate(conn, "fresh")
    chained = sa.create_engine(f"sqlite:///{tmp_path / 'chain.db'}")
    with chained.begin() as conn:
        migrate(conn, "chain", target=1)
    with chained.begin() as conn:
        migrate(conn, "chain")
    assert _describe(fresh) == _describe(chained)
    fresh.dispose()
    chained.dispose()
