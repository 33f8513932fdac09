"""Data versioning through the Python API, the magics and %%track."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

import jupyter_mlops as mlops
from jupyter_mlops.errors import MlopsError, NotFoundError, ValidationError

from .conftest import cli as run_cli
from .conftest import run_cell

REPO = Path(__file__).resolve().parents[1]


def frame(n: int = 1000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "id": np.arange(n),
            "x": rng.normal(size=n),
            "city": pd.Categorical(rng.choice(["paris", "oslo", "rome"], size=n)),
            "when": pd.date_range("2026-01-01", periods=n, freq="h", tz="UTC"),
            "label": pd.array(rng.integers(0, 2, size=n), dtype="Int64"),
        }
    )


def object_count(store_dir: Path) -> int:
    return sum(1 for p in (store_dir / "objects").rglob("*") if p.is_file())


def test_snapshot_load_and_references(store_dir):
    df = frame()
    v1 = mlops.snapshot(df, "customers")
    assert v1.ref == "customers@v1" and v1.shape == (1000, 5) and len(v1.content_hash) == 64
    assert "customers@v1" in repr(v1) and "customers@v1" in v1._repr_html_()
    df2 = df.assign(x=df.x + 1)
    v2 = mlops.snapshot(df2, "customers", description="shifted")
    assert v2.version == 2
    for ref in (
        "customers@v1",
        "customers@1",
        f"#{v1.content_hash[:8]}",
        f"customers#{v1.content_hash[:6]}",
    ):
        pd.testing.assert_frame_equal(mlops.load_data(ref), df)
    for ref in ("customers@latest", "customers", "customers@V2"):
        pd.testing.assert_frame_equal(mlops.load_data(ref), df2)
    assert v1.stats["x"]["mean"] == pytest.approx(df.x.mean())


def test_unchanged_snapshot_writes_nothing(store_dir):
    df = frame()
    first = mlops.snapshot(df, "d")
    before = object_count(store_dir)
    again = mlops.snapshot(df.copy(), "d")
    assert again.version == first.version == 1 and object_count(store_dir) == before
    other = mlops.snapshot(df.copy(), "elsewhere")  # same data, other dataset: no new bytes
    assert other.version == 1 and other.new_bytes == 0 and object_count(store_dir) == before


def test_bad_references_and_inputs(store_dir):
    mlops.snapshot(frame(), "customers")
    with pytest.raises(NotFoundError, match="customers"):
        mlops.load_data("custmers@v1")
    with pytest.raises(NotFoundError, match="has v1"):
        mlops.load_data("customers@v7")
    with pytest.raises(NotFoundError, match="starting with"):
        mlops.load_data("#abcdef0123")
    with pytest.raises(ValidationError, match="6\\+ hex"):
        mlops.load_data("#abc")
    with pytest.raises(ValidationError, match="not a version"):
        mlops.load_data("customers@vX")
    with pytest.raises(MlopsError, match="DataFrame, a pandas Series or a numpy ndarray"):
        mlops.snapshot((i for i in range(3)), "gen")
    with open(__file__) as fh, pytest.raises(MlopsError, match="snapshot takes"):
        mlops.snapshot(fh, "file")
    with pytest.raises(ValidationError, match="not a valid dataset name"):
        mlops.snapshot(frame(), "bad@name")
    assert list(mlops.data_history("customers").version) == [1]


def test_ambiguous_hash_prefix_lists_matches(store_dir):
    v = mlops.snapshot(frame(), "a")
    engine = sa.create_engine(f"sqlite:///{store_dir / 'mlops.db'}")
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO data_versions (dataset_id, version, content_hash, manifest_hash, kind,"
                " n_rows, n_columns, size_bytes, new_bytes, created) SELECT dataset_id, 2,"
                " 'abcdef' || substr(content_hash, 7), manifest_hash, kind, n_rows, n_columns,"
                " size_bytes, 0, created FROM data_versions WHERE version = 1"
            )
        )
        conn.execute(
            sa.text(
                "UPDATE data_versions SET content_hash = 'abcdef' || substr(content_hash, 7) || 'x'"
                " WHERE version = 1"
            )
        )
    engine.dispose()
    with pytest.raises(ValidationError, match="ambiguous") as info:
        mlops.load_data("#abcdef")
    assert "a@v1" in str(info.value) and "a@v2" in str(info.value)
    del v


def test_snapshot_magic(ip):
    run_cell(ip, "import pandas as pd\ncustomers = pd.DataFrame({'a': [1, 2, 3]})")
    result = run_cell(ip, "%snapshot customers")
    assert result.success and result.result.ref == "customers@v1"
    result = run_cell(ip, "%snapshot customers --name churn_train -d 'first cut'")
    assert result.result.ref == "churn_train@v1"
    result = run_cell(ip, "%snapshot nothing_here")
    assert "No variable named 'nothing_here'" in str(result.error_in_exec)
    run_cell(ip, "gen = (i for i in range(3))")
    result = run_cell(ip, "%snapshot gen")
    assert "snapshot takes" in str(result.error_in_exec)


def test_track_versions_inputs_and_outputs_with_lineage(ip):
    run_cell(ip, "import jupyter_mlops as mlops\nimport pandas as pd\nimport numpy as np")
    run_cell(ip, "raw = pd.DataFrame({'a': np.arange(100), 'b': np.arange(100) * 2.0})")
    run_cell(ip, "%snapshot raw --name sales")
    run_cell(ip, "sales = mlops.load_data('sales@latest')")
    assert run_cell(
        ip, "%%track prep -e shop\nclean = sales[sales.a % 2 == 0]\nraw_copy = raw"
    ).success
    run = mlops.get_run(mlops.runs(experiment="shop").run_id[0])
    inputs = {i["name"]: i for i in run.inputs}
    assert set(inputs) == {"sales", "raw", "clean"}
    assert inputs["clean"]["role"] == "output"
    history = mlops.data_history("sales")
    assert list(history.version) == [1] and history.used_by_runs[0] == [run.run_id]
    # `raw` was snapshotted as "sales": same content, same dataset, no new version
    assert inputs["raw"]["content_hash"] == inputs["sales"]["content_hash"]
    out = mlops.data_history("shop/clean")
    assert out.created_by_run[0] == run.run_id and out.rows[0] == 50
    # the same cell again: no new versions
    assert run_cell(
        ip, "%%track prep -e shop\nclean = sales[sales.a % 2 == 0]\nraw_copy = raw"
    ).success
    assert len(mlops.data_history("shop/clean")) == 1 and len(mlops.data_history("sales")) == 1
    # --no-data records nothing
    assert run_cell(ip, "%%track -e shop --no-data\nz = sales.a.sum()").success
    assert mlops.get_run(mlops.runs(experiment="shop").run_id[0]).inputs == []


def test_data_diff_rows_schema_and_stats(store_dir):
    df = frame(2000)
    mlops.snapshot(df, "t")
    edited = df.drop(index=[5, 6]).copy()
    edited.loc[10, "x"] = 99.0
    edited = pd.concat(
        [
            edited,
            frame(3, seed=9).assign(id=[5000, 5001, 5002]).set_index(pd.Index([5000, 5001, 5002])),
        ]
    )
    edited["extra"] = 1.5
    mlops.snapshot(edited, "t")
    diff = mlops.data_diff("t@v1", "t@v2")
    d = diff.to_dict()
    assert d["rows"]["added"] == 3 and d["rows"]["removed"] == 2 and d["rows"]["changed"] == 1
    assert d["schema"]["added"] == [["extra", "float64"]]
    assert "x" in d["stats"] and "max" in d["stats"]["x"]
    assert len(diff.samples["added"]) == 3
    assert "t@v1 → t@v2" in diff._repr_html_()
    keyed = mlops.data_diff("t@v1", "t@v2", key="id")
    assert keyed.rows["added"] == 3 and keyed.rows["removed"] == 2
    same = mlops.data_diff("t@v1", "t@1")
    assert same.identical and same.rows["changed"] == 0


def test_diff_skips_identical_chunks(store_dir):
    big = frame(200_000)
    mlops.snapshot(big, "big")
    edited = big.copy()
    edited.loc[100_000, "x"] = -1.0
    mlops.snapshot(edited, "big")
    diff = mlops.data_diff("big@v1", "big@v2")
    assert diff.rows["changed"] == 1 and diff.rows["added"] == diff.rows["removed"] == 0
    assert diff.chunks["skipped"] > diff.chunks["decoded"]


TRAIN_SETUP = """
import pandas as pd
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split
df = load_breast_cancer(as_frame=True).frame
features = df.columns[:-1]
df[features] = (df[features] - df[features].mean()) / df[features].std()
SEED = 7
"""
TRAIN = """%%track train
X_train, X_test, y_train, y_test = train_test_split(df.drop(columns="target"), df.target, random_state=SEED)
model = LogisticRegression(C=C).fit(X_train, y_train)
accuracy = accuracy_score(y_test, model.predict(X_test))
"""


def test_replay_reproduces_metrics_and_runs_on_new_data(ip):
    run_cell(ip, TRAIN_SETUP)
    run_cell(ip, "C = 100.0")
    run_cell(ip, "C = 0.3")  # edited and re-run: the slice holds what ran last
    assert run_cell(ip, TRAIN).success
    parent = mlops.get_run(mlops.runs().run_id[0])
    run_cell(ip, "df = df.head(10)\nC = 5.0")  # later, out-of-order edits in the kernel
    child = mlops.replay(parent.run_id)
    assert child.parent_run_id == parent.run_id and child.tags["replay_of"] == parent.run_id
    assert child.metrics["accuracy"] == parent.metrics["accuracy"]
    assert child.params["model.C"] == 0.3
    # new data: half the rows
    half = ip.user_ns["load_breast_cancer"](as_frame=True).frame.sample(frac=0.5, random_state=1)
    feats = half.columns[:-1]
    half[feats] = (half[feats] - half[feats].mean()) / half[feats].std()
    mlops.snapshot(half, "cancer_half")
    other = mlops.replay(parent.run_id, data={"df": "cancer_half@latest"})
    assert other.status == "finished" and other.tags["data"] == "snapshots"
    bound = next(i for i in other.inputs if i["name"] == "df")
    assert bound["shape"] == (len(half), 31)
    assert bound["content_hash"] == mlops.data_history("cancer_half").content_hash[0]
    assert 0.8 < other.metrics["accuracy"] <= 1.0


def test_replay_in_a_fresh_process(ip, store_dir):
    run_cell(ip, TRAIN_SETUP)
    run_cell(ip, "C = 0.3")
    assert run_cell(ip, TRAIN).success
    parent = mlops.get_run(mlops.runs().run_id[0])
    code = textwrap.dedent(
        f"""
        import jupyter_mlops as mlops
        child = mlops.replay("{parent.run_id}")
        print(child.metrics["accuracy"])
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLOPS_")}
    env.update(MLOPS_HOME=str(store_dir), PYTHONPATH=str(REPO))
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    assert float(out.stdout.strip()) == parent.metrics["accuracy"]


def test_replay_names_what_it_cannot_resolve(ip):
    run_cell(ip, "import jupyter_mlops as mlops")
    assert run_cell(ip, "%%track uses_helper\nresult = helper(3)").success is False
    run_cell(ip, "def helper(x):\n    return x * 2")
    assert run_cell(ip, "%%track ok\nresult = helper(3)").success
    good = mlops.runs(filter="name = 'ok'").run_id[0]
    assert mlops.replay(good).params["result"] == 6
    bad = mlops.runs(filter="name = 'uses_helper'").run_id[0]
    with pytest.raises(MlopsError, match=r"'helper'.*tracked cell"):
        mlops.replay(bad)


def test_interrupted_snapshot_leaves_no_version_and_gc_cleans(store_dir, monkeypatch):
    from jupyter_mlops.store.objects import ObjectStore

    store = mlops.open_store(store_dir)
    mlops.snapshot(frame(10), "keep")
    clean_count = object_count(store_dir)
    real_write = ObjectStore.write
    calls = {"n": 0}

    def flaky(self, data):
        calls["n"] += 1
        if calls["n"] > 3:
            raise KeyboardInterrupt
        return real_write(self, data)

    monkeypatch.setattr(ObjectStore, "write", flaky)
    with pytest.raises(KeyboardInterrupt):
        mlops.snapshot(frame(300_000, seed=3), "big")
    monkeypatch.setattr(ObjectStore, "write", real_write)
    with pytest.raises(NotFoundError):
        mlops.load_data("big")

    def cli(*args):
        return run_cli(store_dir, *args)

    doctor = cli("doctor")
    assert doctor.returncode == 0, doctor.stdout
    leftovers = object_count(store_dir) - clean_count
    assert leftovers > 0
    assert cli("gc").stdout.startswith("removed 0")  # too recent: may be a snapshot in flight
    gc = cli("gc", "--grace", "0")
    assert gc.returncode == 0 and f"removed {leftovers} " in gc.stdout, gc.stdout
    assert object_count(store_dir) == clean_count
    pd.testing.assert_frame_equal(mlops.load_data("keep"), frame(10))
    assert cli("doctor").returncode == 0
    del store


def test_object_columns_never_share_a_hash_by_accident(store_dir):
    ones = pd.DataFrame({"x": pd.Series(["1", 1, None], dtype=object)})
    other = pd.DataFrame({"x": pd.Series([1, "1", np.nan], dtype=object)})
    v1 = mlops.snapshot(ones, "mixed")
    v2 = mlops.snapshot(other, "mixed")
    assert v1.content_hash != v2.content_hash and v2.version == 2
    back = mlops.load_data("mixed@v1")
    assert [type(v) for v in back.x] == [str, int, type(None)]
    assert [type(v) for v in mlops.load_data("mixed@v2").x][:2] == [int, str]
    with pytest.raises(ValidationError, match="x"):
        mlops.snapshot(pd.DataFrame({"x": [[1, 2], [3]]}), "lists")
    assert list(mlops.data_history("mixed").version) == [2, 1]


def test_replay_uses_snapshots_not_the_files_they_came_from(ip, tmp_path):
    csv = tmp_path / "sales.csv"
    pd.DataFrame({"units": [1, 2, 3, 4], "price": [10.0, 11.0, 9.5, 12.0]}).to_csv(csv, index=False)
    run_cell(ip, f"import pandas as pd\nsales = pd.read_csv({str(csv)!r})\nFACTOR = 2")
    assert run_cell(
        ip, "%%track revenue\nrevenue = float((sales.units * sales.price).sum() * FACTOR)"
    ).success
    parent = mlops.get_run(mlops.runs().run_id[0])
    csv.unlink()  # the source is gone: replay must not need it
    child = mlops.replay(parent.run_id)
    assert child.params["revenue"] == parent.params["revenue"] == 217.0
    with pytest.raises(MlopsError, match="In\\[2\\]"):
        mlops.replay(parent.run_id, data="live")  # live re-reads the file, which is gone


def test_replay_warns_about_package_versions(ip, store_dir):
    run_cell(ip, "import pandas as pd\nframe = pd.DataFrame({'a': [1, 2]})")
    assert run_cell(ip, "%%track\ntotal = float(frame.a.sum())").success
    run_id = mlops.runs().run_id[0]
    engine = sa.create_engine(f"sqlite:///{store_dir / 'mlops.db'}")
    with engine.begin() as conn:
        env = conn.execute(
            sa.text("SELECT environment FROM runs WHERE run_id = :r"), {"r": run_id}
        ).scalar()
        conn.execute(
            sa.text("UPDATE runs SET environment = :e WHERE run_id = :r"),
            {"e": env.replace(f'"pandas": "{pd.__version__}"', '"pandas": "0.1.0"'), "r": run_id},
        )
    engine.dispose()
    with pytest.warns(UserWarning, match=r"pandas 0\.1\.0 → " + pd.__version__):
        mlops.replay(run_id)


def test_unversionable_input_is_skipped_with_a_note(ip):
    run_cell(ip, "import pandas as pd\nodd = pd.DataFrame({'x': [[1, 2], [3]]})")
    with pytest.warns(UserWarning, match="'odd' was not versioned"):
        result = run_cell(ip, "%%track\nn = len(odd)")
    assert result.success and ip.user_ns["n"] == 2
    run = mlops.get_run(mlops.runs().run_id[0])
    assert run.params["n"] == 2 and run.inputs[0]["name"] == "odd"


def test_diff_with_a_reset_index_matches_rows_by_content(store_dir):
    big = frame(300_000)
    mlops.snapshot(big, "reset")
    shorter = big.drop(index=range(150_000, 153_000)).reset_index(drop=True)
    shorter.loc[10, "x"] = 123.0
    mlops.snapshot(shorter, "reset")
    diff = mlops.data_diff("reset@v1", "reset@v2")
    assert diff.match == "content"
    assert (diff.rows["removed"], diff.rows["added"], diff.rows["changed"]) == (3001, 1, 0)
    assert diff.samples["added"].x.tolist() == [123.0]


def test_review_regressions(ip, store_dir):
    run_cell(ip, "import jupyter_mlops as mlops\nimport pandas as pd\nimport numpy as np")
    run_cell(ip, "raw = pd.DataFrame({'x': np.arange(10.0)})")
    # one new frame under two names: the run is saved, lineage written once
    assert run_cell(ip, "%%track dup\nclean = raw * 2\nalias = clean").success
    assert mlops.runs().status[0] == "finished"
    # a slice statement that reads a bound input, and IPython syntax in the tracked cell
    run_cell(ip, "n = len(raw)")
    assert run_cell(ip, "%%track uses_n\n%time total = float(raw.x.sum()) / n").success
    parent = mlops.get_run(mlops.runs(filter="name = 'uses_n'").run_id[0])
    child = mlops.replay(parent.run_id)
    assert child.params["total"] == parent.params["total"] == 4.5
    # the content hash sees the columns' name
    named = ip.user_ns["raw"].copy()
    named.columns.name = "cols"
    v1, v2 = mlops.snapshot(ip.user_ns["raw"], "named"), mlops.snapshot(named, "named")
    assert v1.content_hash != v2.content_hash and mlops.load_data("named@v2").columns.name == "cols"
    # ordering by a text param
    for solver in ("lbfgs", "adam", "saga"):
        with mlops.track("s", experiment="order", capture=False) as run:
            run.log_param("solver", solver)
    assert list(mlops.runs(experiment="order", order_by="params.solver")["params.solver"]) == [
        "adam",
        "lbfgs",
        "saga",
    ]


def test_gc_refuses_when_a_manifest_is_unreadable(store_dir):
    from jupyter_mlops.errors import StoreError
    from jupyter_mlops.maintenance import collect_garbage

    store = mlops.open_store(store_dir)
    version = mlops.snapshot(frame(100), "g")
    path = store_dir / "objects" / version.manifest_hash[:2] / version.manifest_hash[2:]
    original = path.read_bytes()
    path.write_bytes(original[:-1] + b"!")
    before = object_count(store_dir)
    with pytest.raises(StoreError, match="doctor"):
        collect_garbage(store, grace_s=0)
    assert object_count(store_dir) == before
    path.write_bytes(original)
    pd.testing.assert_frame_equal(mlops.load_data("g@v1"), frame(100))


def test_mlops_data_magic(ip):
    run_cell(
        ip, "import pandas as pd\na = pd.DataFrame({'x': [1, 2, 3]})\nb = a.assign(x=[1, 2, 4])"
    )
    run_cell(ip, "%snapshot a --name t")
    run_cell(ip, "%snapshot b --name t")
    listing = run_cell(ip, "%mlops data").result
    assert list(listing.name) == ["t"] and listing.latest[0] == "t@v2" and listing.versions[0] == 2
    page = run_cell(ip, "%mlops data t").result.data
    assert "t: 2 version(s)" in page and "t@v1 → t@v2" in page and "1 changed" in page
    assert "Unknown" not in str(run_cell(ip, "%mlops data nope").error_in_exec or "")
    assert "No dataset 'nope'" in str(run_cell(ip, "%mlops data nope").error_in_exec)


# --- row-chunk sizes follow the frame's size (issue 14, item 18) -------------------------

CITIES = np.array(["Lyon", "Paris", "Nantes", "Lille", "Bordeaux", "Toulouse", "Nice", "Brest"])


def customers_frame(n: int, start: int = 0, seed: int = 0) -> pd.DataFrame:
    """A notebook-sized customer table: ids, ints, rounded and raw floats, text, a category."""
    rng = np.random.default_rng(seed)
    monthly = np.round(rng.normal(70, 20, n), 2)
    tenure = rng.integers(1, 72, n)
    return pd.DataFrame(
        {
            "customer_id": np.arange(start, start + n) + 10_000,
            "age": rng.integers(18, 90, n),
            "tenure": tenure,
            "monthly": monthly,
            "total": np.round(monthly * tenure + rng.normal(0, 5, n), 2),
            "score": rng.random(n),
            "city": CITIES[rng.integers(0, len(CITIES), n)].astype(str),
            "plan": pd.Categorical(rng.choice(["basic", "plus", "pro", "team"], n)),
        }
    )


def with_appended(df: pd.DataFrame, share: float = 0.01) -> pd.DataFrame:
    """``df`` and ``share`` of its length in new customers after it (a fresh RangeIndex)."""
    k = max(1, int(len(df) * share))
    return pd.concat([df, customers_frame(k, start=len(df), seed=len(df))], ignore_index=True)


def objects_bytes(store_dir: Path) -> int:
    return sum(p.stat().st_size for p in (store_dir / "objects").rglob("*") if p.is_file())


def chunking(version) -> dict:
    from jupyter_mlops.data.versions import load_manifest
    from jupyter_mlops.store import current_store

    return load_manifest(version, current_store())["chunking"]


def assert_loads_exactly(ref: str, want: pd.DataFrame) -> None:
    back = mlops.load_data(ref)
    pd.testing.assert_frame_equal(back, want, check_exact=True)
    assert list(back.dtypes) == list(want.dtypes)


@pytest.mark.parametrize("n", [2_000, 20_000, 200_000])
def test_appending_one_percent_stores_a_small_share_at_any_size(store_dir, n):
    df = customers_frame(n)
    v1 = mlops.snapshot(df, "customers")
    before = objects_bytes(store_dir)
    grown = with_appended(df)
    v2 = mlops.snapshot(grown, "customers")
    added = objects_bytes(store_dir) - before
    assert added == v2.new_bytes  # what the version reports is what reached the disk
    assert added <= 0.15 * v1.size_bytes, (
        f"{n} rows + 1%: {added:,} of {v1.size_bytes:,} bytes "
        f"({added / v1.size_bytes:.1%}), chunking {chunking(v1)['target_rows']}"
    )
    assert chunking(v2)["target_rows"] == chunking(v1)["target_rows"]
    assert_loads_exactly("customers@v1", df)
    assert_loads_exactly("customers@v2", grown)


def test_an_append_across_a_size_bucket_keeps_the_previous_chunking(store_dir):
    from jupyter_mlops.data.chunks.cdc import target_for

    # the first size from 20,000 rows whose 1% append asks for another target on its own
    n = next(n for n in range(20_000, 60_000, 10) if target_for(n * 101 // 100) != target_for(n))
    df = customers_frame(n)
    v1 = mlops.snapshot(df, "growing")
    grown = with_appended(df)
    v2 = mlops.snapshot(grown, "growing")
    assert chunking(v2)["target_rows"] == chunking(v1)["target_rows"] == target_for(n)
    assert v2.new_bytes <= 0.15 * v1.size_bytes
    # the same rows as a first version elsewhere are cut for their own size: all new chunks
    alone = mlops.snapshot(grown.copy(), "fresh")
    assert alone.new_bytes == 0 and alone.content_hash == v2.content_hash  # same content
    # ...and a version that shrinks well below the bucket gets the target its size asks for
    small = df.iloc[: n // 5].reset_index(drop=True)
    v3 = mlops.snapshot(small, "growing")
    assert chunking(v3)["target_rows"] == target_for(len(small)) < chunking(v2)["target_rows"]
    for ref, want in (("growing@v1", df), ("growing@v2", grown), ("growing@v3", small)):
        assert_loads_exactly(ref, want)


def _snapshot_as_before_adaptive_chunks(store, df: pd.DataFrame, name: str):
    """Store ``df`` as version 1 of ``name`` as jupyter_mlops did before chunk sizes
    adapted: every frame cut with a 65,536-row target (so a 20,000-row frame is one chunk)."""
    import json
    import time

    from jupyter_mlops.data.chunks.codec import encode
    from jupyter_mlops.data.chunks.manifest import chunk_hashes
    from jupyter_mlops.data.fingerprint import fingerprint
    from jupyter_mlops.data.stats import column_stats
    from jupyter_mlops.store import schema

    fp = fingerprint(df)
    manifest = encode(df, store.objects.put, target_rows=65_536)
    manifest["content_hash"] = fp.content_hash
    document = json.dumps(manifest, sort_keys=True).encode()
    size = sum(store.objects.size(h) for h in chunk_hashes(manifest)) + len(document)
    with store.write() as conn:
        dataset_id = conn.execute(
            schema.datasets.insert().values(name=name, created=time.time())
        ).inserted_primary_key[0]
        conn.execute(
            schema.data_versions.insert().values(
                dataset_id=dataset_id,
                version=1,
                content_hash=fp.content_hash,
                manifest_hash=store.objects.put(document),
                kind="dataframe",
                n_rows=len(df),
                n_columns=df.shape[1],
                schema=json.dumps(fp.columns or []),
                stats=json.dumps(column_stats(df)),
                size_bytes=size,
                new_bytes=size,
                created=time.time(),
            )
        )
    from jupyter_mlops.data.versions import resolve

    return resolve(f"{name}@v1", store)


def test_versions_cut_before_chunk_sizes_adapted_still_read_and_keep_their_identity(
    store_dir, tmp_path
):
    store = mlops.open_store(store_dir)
    df = customers_frame(20_000)
    old = _snapshot_as_before_adaptive_chunks(store, df, "legacy")
    assert chunking(old)["target_rows"] == 65_536
    assert_loads_exactly("legacy@v1", df)
    grown = with_appended(df)
    v2 = mlops.snapshot(grown, "legacy")  # re-cut once for its size
    assert chunking(v2)["target_rows"] < 65_536
    grown_more = with_appended(grown)
    v3 = mlops.snapshot(grown_more, "legacy")
    assert v3.new_bytes <= 0.15 * v2.size_bytes
    # identity does not depend on chunking: v1's rows again are that version, nothing written
    before = objects_bytes(store_dir)
    again = mlops.snapshot(df.copy(), "legacy")
    assert again.content_hash == old.content_hash and again.manifest_hash == old.manifest_hash
    assert again.new_bytes == 0 and objects_bytes(store_dir) == before
    for ref, want in (("legacy@v1", df), ("legacy@v2", grown), ("legacy@v3", grown_more)):
        assert_loads_exactly(ref, want)
    # a store that never saw the old chunking gives the same content hash, cut differently
    doctor = run_cli(store_dir, "doctor")
    assert doctor.returncode == 0, doctor.stdout
    cut = chunking(v2)["target_rows"]
    mlops.open_store(tmp_path / "other")
    fresh = mlops.snapshot(df, "legacy")
    assert chunking(fresh)["target_rows"] == cut
    assert fresh.content_hash == old.content_hash and fresh.manifest_hash != old.manifest_hash


def test_a_lost_previous_manifest_does_not_stop_the_next_snapshot(store_dir):
    df = customers_frame(5_000)
    v1 = mlops.snapshot(df, "customers")
    lost = store_dir / "objects" / v1.manifest_hash[:2] / v1.manifest_hash[2:]
    lost.unlink()
    grown = with_appended(df)
    v2 = mlops.snapshot(grown, "customers")  # cut for its own size, the same target here
    assert v2.version == 2
    assert_loads_exactly("customers@v2", grown)
    doctor = run_cli(store_dir, "doctor")
    assert doctor.returncode != 0 and "customers@v1" in doctor.stdout, doctor.stdout
