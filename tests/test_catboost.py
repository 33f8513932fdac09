"""CatBoost through every stage, as a data scientist meets it: ``%%track`` cells in a real
IPython shell (``CatBoostClassifier``/``CatBoostRegressor`` on frames and on a ``Pool``,
and ``catboost.train``), the curves of the learn and eval sets, best iteration,
importances, categorical features in the signature, registration, the cbm model loaded
back with identical predictions, a real deployment answering over HTTP (text categories
and missing numbers included), batch scoring and a monitor check; and cbm files that are
untrusted input."""

from __future__ import annotations

import io
import json
import pickle
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import jupyter_mlops as mlops
from jupyter_mlops.errors import MlopsError
from jupyter_mlops.serving.launcher import stop_launcher
from jupyter_mlops.store import current_store

from .conftest import run_cell
from .serving_helpers import Client, processes_mentioning
from .test_model_safety import _plant

cb = pytest.importorskip("catboost")

REPO = Path(__file__).resolve().parents[1]

SETUP = """
import numpy as np
import pandas as pd
import catboost
from catboost import CatBoostClassifier, CatBoostRegressor, Pool
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from tests.serving_helpers import training_frame
X, y = training_frame()
X = X.assign(segment=np.where(X.area > 700, "large", np.where(X.area > 450, "mid", "small")))
X_train, X_rest, y_train, y_rest = train_test_split(X, y, test_size=0.4, random_state=0)
X_valid, X_test, y_valid, y_test = train_test_split(X_rest, y_rest, test_size=0.5, random_state=0)
label = {0: "malignant", 1: "benign"}
t_train, t_valid, t_test = y_train.map(label), y_valid.map(label), y_test.map(label)
"""

CB_CELL = """%%track cb-baseline --register churn
model = CatBoostClassifier(iterations=80, depth=4, learning_rate=0.3, eval_metric="AUC",
                           early_stopping_rounds=15, cat_features=["segment"], thread_count=1,
                           verbose=False, allow_writing_files=False)
model.fit(X_train, t_train, eval_set=(X_valid, t_valid))
auc = roc_auc_score(t_test == "benign", model.predict_proba(X_test)[:, 0])
"""

POOL_CELL = """%%track cb-pool --register texture
features = ["radius", "perimeter", "area", "smoothness", "segment"]
train_pool = Pool(X_train[features], X_train["texture"], cat_features=["segment"])
valid_pool = Pool(X_valid[features], X_valid["texture"], cat_features=["segment"])
reg = CatBoostRegressor(iterations=25, depth=3, thread_count=1, verbose=False,
                        allow_writing_files=False)
reg.fit(train_pool, eval_set=valid_pool)
"""

TRAIN_CELL = """%%track cb-train --register churn-raw
params = {"loss_function": "Logloss", "iterations": 20, "depth": 3, "thread_count": 1,
          "allow_writing_files": False, "verbose": False}
bst = catboost.train(Pool(X_train, y_train, cat_features=["segment"]), params,
                     eval_set=Pool(X_valid, y_valid, cat_features=["segment"]))
"""


def only_run(name: str):
    frame = mlops.runs(experiment="*")
    found = frame[frame["name"] == name]
    assert len(found) == 1, frame
    return mlops.get_run(found.run_id.iloc[0])


def assert_curve(run, key: str, values: list[float], start: int = 0) -> None:
    """The stepped metric ``key`` holds exactly ``values`` at steps start, start+1, …"""
    history = run.metric_history(key)
    assert history["step"].tolist() == list(range(start, start + len(values)))
    assert history["value"].tolist() == [float(v) for v in values]
    assert run.metrics[key] == float(values[-1])


def track(ip, *cells: str) -> None:
    for cell in cells:
        result = run_cell(ip, cell)
        assert result.success, result.error_in_exec or result.error_before_exec


def test_classifier_cell_captures_curves_best_round_importance_and_model(ip, store_dir):
    track(ip, SETUP, CB_CELL)
    model = ip.user_ns["model"]
    assert 0.9 < ip.user_ns["auc"] <= 1

    run = only_run("cb-baseline")
    assert run.status == "finished"
    assert run.params["model.iterations"] == 80 and run.params["model.depth"] == 4
    assert run.params["model.eval_metric"] == "AUC"
    # what CatBoost chose itself is recorded too, folded with the defaults
    assert run.params["model.loss_function"] == "Logloss"
    assert run.params["model.l2_leaf_reg"] == model.get_all_params()["l2_leaf_reg"]
    defaults = run.default_params
    assert "model.loss_function" in defaults and "model.depth" not in defaults
    # one point per iteration for the learn set and the eval set, steps from 0
    evals = model.get_evals_result()
    auc_curve = evals["validation"]["AUC"]
    assert len(auc_curve) < 80  # early stopping ended it
    assert_curve(run, "validation.AUC", auc_curve)
    assert_curve(run, "validation.Logloss", evals["validation"]["Logloss"])
    assert_curve(run, "learn.Logloss", evals["learn"]["Logloss"])
    assert run.metrics["best_iteration"] == model.get_best_iteration() == int(np.argmax(auc_curve))
    assert run.metrics["best_score"] == max(auc_curve)
    assert model.tree_count_ == model.get_best_iteration() + 1  # the best model was kept
    # importances, one per feature
    doc = json.loads(run.artifact_bytes("model.importance.json"))
    assert doc["importance_type"] == "PredictionValuesChange"
    values = model.get_feature_importance(type="PredictionValuesChange")
    assert doc["importance"] == pytest.approx(dict(zip(model.feature_names_, values, strict=True)))

    # registered: cbm in the flavor file, categorical features in the signature
    mv = mlops.get_model_version("churn@1")
    assert mv.format == "catboost-cbm" and mv.flavor == "catboost.core.CatBoostClassifier"
    assert [i["name"] for i in mv.signature["inputs"]] == list(ip.user_ns["X"].columns)
    assert mv.signature["categorical"] == ["segment"]
    assert mv.signature["categorical_indices"] == [5]
    assert mv.signature["inputs"][5]["categorical"] is True
    assert mv.signature["outputs"][0]["classes"] == ["benign", "malignant"]
    assert any(r.startswith("catboost==") for r in mv.requirements)

    # loaded back into the same class: same labels, probabilities, params and best round
    mlops.set_alias("churn", "production", 1)
    loaded = mlops.load_model("churn@production")
    assert type(loaded) is cb.CatBoostClassifier
    x_test = ip.user_ns["X_test"]
    assert np.array_equal(loaded.predict_proba(x_test), model.predict_proba(x_test))
    assert np.array_equal(loaded.predict(x_test), model.predict(x_test))
    assert list(loaded.classes_) == ["benign", "malignant"]
    assert loaded.get_params() == model.get_params()
    assert loaded.get_cat_feature_indices() == [5]
    # the cbm inside is CatBoost's own file: CatBoost reads it without us
    with zipfile.ZipFile(io.BytesIO(current_store().objects.get(mv.object_hash))) as archive:
        raw = archive.read("model.cbm")
    assert raw[:4] == b"CBM1"
    plain = cb.CatBoostClassifier()
    plain.load_model(blob=raw, format="cbm")
    assert np.array_equal(plain.predict_proba(x_test), model.predict_proba(x_test))
    # neither the capture nor the load wrote CatBoost's training folder here
    assert not (store_dir.parent / "catboost_info").exists()


def test_a_pool_fit_records_its_columns_and_categorical_features(ip, store_dir):
    track(ip, SETUP, POOL_CELL)
    reg = ip.user_ns["reg"]
    run = only_run("cb-pool")
    evals = reg.get_evals_result()
    assert_curve(run, "learn.RMSE", evals["learn"]["RMSE"])
    assert_curve(run, "validation.RMSE", evals["validation"]["RMSE"])
    assert run.metrics["best_iteration"] == reg.get_best_iteration()
    assert run.metrics["best_score"] == reg.get_best_score()["validation"]["RMSE"]
    assert [m["name"] for m in run.models] == ["reg"]  # the model; not the Pools

    mv = mlops.get_model_version("texture@1")
    sig = mv.signature
    assert [i["name"] for i in sig["inputs"]] == ip.user_ns["features"]
    # the dtypes of the frame the Pool was built from (it is in scope)
    assert sig["inputs"][0]["dtype"] == "float64"
    assert sig["categorical"] == ["segment"] and sig["inputs"][4]["categorical"] is True
    assert sig["inputs"][4]["dtype"] != "float64"
    loaded = mlops.load_model("texture@1")
    assert type(loaded) is cb.CatBoostRegressor
    rows = ip.user_ns["X_test"][ip.user_ns["features"]]
    assert np.array_equal(loaded.predict(rows), reg.predict(rows))
    assert not (store_dir.parent / "catboost_info").exists()


def test_catboost_train_records_params_curves_and_the_model(ip):
    track(ip, SETUP, TRAIN_CELL)
    bst = ip.user_ns["bst"]
    run = only_run("cb-train")
    assert run.params["bst.depth"] == 3 and run.params["bst.iterations"] == 20
    assert run.params["bst.loss_function"] == "Logloss"
    evals = bst.get_evals_result()
    assert len(evals["validation"]["Logloss"]) == 20
    assert_curve(run, "validation.Logloss", evals["validation"]["Logloss"])
    assert [m["name"] for m in run.models] == ["bst"]

    mv = mlops.get_model_version("churn-raw@1")
    assert mv.signature["categorical"] == ["segment"]
    loaded = mlops.load_model("churn-raw@1")
    assert type(loaded) is cb.CatBoost
    x_test = ip.user_ns["X_test"]
    assert np.array_equal(loaded.predict(x_test), bst.predict(x_test))
    scored = mlops.predict_batch("churn-raw@1", x_test, log=False)
    assert np.allclose(scored["prediction"].to_numpy(), bst.predict(x_test), rtol=1e-12, atol=0)


def test_multiclass_and_integer_labels_round_trip(store_dir):
    """Labels of any type come back as they were fitted (CatBoost keeps them in the cbm),
    and a served multiclass model answers one label per row."""
    rng = np.random.default_rng(0)
    x = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300)})
    cases = {
        "three": np.where(x.a > 0.5, 2, np.where(x.a > -0.5, 1, 0)),
        "flags": (x.a > 0).to_numpy(),
        "words": np.where(x.a > 0.4, "hi", np.where(x.a > -0.4, "mid", "lo")),
    }
    for name, labels in cases.items():
        with mlops.track(name) as run:
            model = cb.CatBoostClassifier(
                iterations=10, thread_count=1, verbose=False, allow_writing_files=False
            ).fit(x, labels)
        mlops.register(run.run_id, name)
        loaded = mlops.load_model(f"{name}@1")
        assert list(loaded.classes_) == list(model.classes_)
        assert loaded.classes_.dtype == model.classes_.dtype
        assert np.array_equal(loaded.predict(x), model.predict(x))
        scored = mlops.predict_batch(f"{name}@1", x, proba=True, log=False)
        assert scored["prediction"].tolist() == np.ravel(model.predict(x)).tolist()
        assert np.array_equal(
            scored[[f"proba_{c}" for c in model.classes_]].to_numpy(), model.predict_proba(x)
        )
    assert not (store_dir.parent / "catboost_info").exists()


def test_predict_batch_and_check_score_the_catboost_model(ip):
    track(ip, SETUP, CB_CELL)
    model, x_test = ip.user_ns["model"], ip.user_ns["X_test"]
    scored = mlops.predict_batch("churn@1", x_test, proba=True)
    assert scored["prediction"].tolist() == model.predict(x_test).tolist()
    assert np.array_equal(
        scored[["proba_benign", "proba_malignant"]].to_numpy(), model.predict_proba(x_test)
    )
    # missing numbers take CatBoost's own path; a missing category is refused by row
    holed = x_test.iloc[:5].copy()
    holed["radius"] = np.nan
    again = mlops.predict_batch("churn@1", holed, log=False)
    assert again["prediction"].tolist() == model.predict(holed).tolist()
    no_segment = x_test.iloc[:5].copy()
    no_segment.loc[no_segment.index[1], "segment"] = None
    with pytest.raises(MlopsError, match="segment"):
        mlops.predict_batch("churn@1", no_segment, log=False)

    mlops.set_monitor("churn@1", min_rows=50)
    outcome = mlops.check("churn@1", current=x_test)
    assert outcome.rows == len(x_test) and outcome.report is not None
    assert {c.column for c in outcome.report.columns} == set(x_test.columns)
    assert outcome.report.prediction is not None


@pytest.fixture
def served(ip, store_dir):
    track(ip, SETUP, CB_CELL, TRAIN_CELL)
    yield ip
    for d in mlops.deployments().itertuples():  # never leave a server behind
        mlops.undeploy(d.deployment_id)
    stop_launcher(store_dir)
    assert processes_mentioning(str(store_dir)) == []


def _column(name: str, values: pd.Series) -> dict:
    if values.dtype.kind not in "fiub":
        return {"name": name, "shape": [len(values)], "datatype": "BYTES", "data": list(values)}
    return {"name": name, "shape": [len(values)], "datatype": "FP64", "data": values.tolist()}


@pytest.mark.slow
def test_deployed_catboost_models_answer_oip_and_invocations_like_the_notebook(served):
    ns = served.user_ns
    rows, model, bst = ns["X_test"].iloc[:20], ns["model"], ns["bst"]
    d = mlops.deploy("churn@1")
    assert d.status == "running", d
    client = Client(int(d.url.rsplit(":", 1)[1]))
    body = {
        "inputs": [_column(c, rows[c]) for c in rows.columns],
        "outputs": [{"name": "predict"}, {"name": "predict_proba"}],
    }
    status, _, out = client.post("/v2/models/churn/infer", body)
    assert status == 200, out
    got = {o["name"]: o["data"] for o in out["outputs"]}
    assert got["predict"] == model.predict(rows).tolist()
    proba = np.asarray(got["predict_proba"], dtype=float).reshape(len(rows), -1)
    assert np.allclose(proba, model.predict_proba(rows), rtol=1e-12, atol=0)
    records = json.loads(rows.to_json(orient="records"))  # the segment as text
    status, _, body = client.post("/invocations", {"dataframe_records": records})
    assert status == 200 and body["predictions"] == model.predict(rows).tolist(), body
    # an unseen category is CatBoost's to score; a missing number takes its NaN path
    odd = [{**records[0], "segment": "enormous"}, {**records[1], "radius": None}]
    status, _, body = client.post("/invocations", {"dataframe_records": odd})
    assert status == 200, body
    frame = pd.DataFrame(odd).astype({"radius": float})
    assert body["predictions"] == model.predict(frame).tolist()
    # a missing category is refused naming the row; a number where text goes too
    status, _, body = client.post(
        "/invocations", {"dataframe_records": [records[0], {**records[1], "segment": None}]}
    )
    assert status == 422 and "segment" in json.dumps(body), body
    status, _, body = client.post(
        "/invocations", {"dataframe_records": [{**records[0], "segment": 3}]}
    )
    assert status == 422 and "segment" in json.dumps(body), body
    client.close()
    mlops.undeploy("churn@1")

    # the model catboost.train returned: its own raw output, as bst.predict gives it
    d = mlops.deploy("churn-raw@1")
    client = Client(int(d.url.rsplit(":", 1)[1]))
    status, _, body = client.post("/invocations", {"dataframe_records": records})
    assert status == 200, body
    assert np.allclose(body["predictions"], bst.predict(rows), rtol=1e-12, atol=0)
    client.close()


# -- model files are untrusted input ----------------------------------------------------------


class _Touch:
    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


def _flavor_file(format: str, files: dict[str, bytes], info: dict) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("flavor.json", json.dumps({**info, "format": format}))
        for name, data in files.items():
            archive.writestr(name, data)
    return buf.getvalue()


def lying_cbm(raw: bytes) -> tuple[bytes, bytes]:
    """Two cbm files that are well-formed FlatBuffers but lie: a tree split naming a binary
    feature far past the model's, and a CTR hash bucket pointing far past its values."""
    from jupyter_mlops.tracking.flavors.catboost_check import _BUCKET, _Buffer

    size = struct.unpack_from("<I", raw, 4)[0]
    trees = _Buffer(raw[8 : 8 + size], "core").root().table(1, "trees")
    splits_at, _ = trees.vector(1, 4)
    far_split = bytearray(raw)
    struct.pack_into("<i", far_split, 8 + splits_at, 10**6)
    at = 8 + size + 4  # the CTR tables: their count, then each one's size and FlatBuffer
    table_size = struct.unpack_from("<I", raw, at)[0]
    table = _Buffer(raw[at + 4 : at + 4 + table_size], "ctr").root()
    buckets_at, count = table.vector(1, 1)
    far_bucket = bytearray(raw)
    for i in range(count // _BUCKET):
        pos = at + 4 + buckets_at + i * _BUCKET
        if struct.unpack_from("<Q", raw, pos)[0] != 2**64 - 1:  # a bucket in use
            struct.pack_into("<I", far_bucket, pos + 8, 10**6)
            break
    return bytes(far_split), bytes(far_bucket)


def test_crafted_cbm_files_are_refused_and_run_nothing(ip, tmp_path):
    track(ip, SETUP, CB_CELL)
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_Touch(str(marker)))
    before = mlops.get_model_version("churn@1")
    stored = current_store().objects.get(before.object_hash)
    with zipfile.ZipFile(io.BytesIO(stored)) as z:
        raw, info = z.read("model.cbm"), json.loads(z.read("flavor.json"))

    def cbm_file(model: bytes, name: str = "CatBoostClassifier") -> bytes:
        return _flavor_file("catboost-cbm", {"model.cbm": model}, {**info, "class": name})

    huge = raw[:4] + (2**31).to_bytes(4, "little") + raw[8:]
    far_split, far_bucket = lying_cbm(raw)
    cases = [
        (payload, "not a catboost-cbm archive"),  # a pickle that claims the format
        (b"\x00garbage" * 50, "not a catboost-cbm archive"),
        (cbm_file(payload), "does not start with CatBoost's 'CBM1'"),  # a pickle inside
        (cbm_file(raw[: len(raw) // 2]), "not a CatBoost cbm model"),  # cut short
        (cbm_file(huge), "claims 2147483648 bytes"),
        (cbm_file(b"CBM1"), "not a CatBoost cbm model"),
        (cbm_file(raw + b"\0" * 8), "8 bytes follow the model"),
        # well-formed files that lie: CatBoost's own reader would read past its arrays
        (cbm_file(far_split), "splits on a binary feature outside its"),
        (cbm_file(far_bucket), "bucket points past its"),
        (cbm_file(raw, "os.system"), "os.system"),
        (cbm_file(raw, "CatBoostClassifier.__init__"), "not a CatBoost model"),
        (_flavor_file("xgboost-ubj", {"model.cbm": raw}, info), "format 'xgboost-ubj'"),
        (_flavor_file("catboost-cbm", {"model.cbm": raw, "run.py": b""}, info), "run.py"),
        (_flavor_file("catboost-cbm", {"model.ubj": raw}, info), "model.ubj"),
    ]
    for data, message in cases:
        _plant("churn@1", data, "catboost-cbm")
        with pytest.raises(MlopsError, match=message.replace("(", r"\(").replace(")", r"\)")):
            mlops.load_model("churn@1")
        with pytest.raises(MlopsError):
            mlops.predict_batch("churn@1", ip.user_ns["X_test"], log=False)
        assert not marker.exists()
    # the true file back: the version is as it was and predicts the same
    _plant("churn@1", stored, before.format)
    assert mlops.get_model_version("churn@1").signature == before.signature
    x_test = ip.user_ns["X_test"]
    assert np.array_equal(
        mlops.load_model("churn@1").predict_proba(x_test), ip.user_ns["model"].predict_proba(x_test)
    )


def test_thousands_of_crafted_cbm_files_never_crash_the_loader():
    """Cut, flipped and lying cbm files (indices past a tree's splits, features or CTR
    tables) load in a separate process, which must survive."""
    out = subprocess.run(
        [sys.executable, "-m", "tests.fuzz_models", "catboost", "1000"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert sum(seen.values()) == 1000 and seen["refused"] > 500


def test_a_missing_catboost_costs_nothing_and_its_models_say_what_to_install(store_dir):
    code = """
import sys
sys.modules["catboost"] = None  # as if it were not installed
import jupyter_mlops as mlops
from jupyter_mlops.errors import MlopsError
try:
    mlops.load_model("cb@1")
except MlopsError as exc:
    print("ERROR:", exc)
"""
    x = np.random.default_rng(0).normal(size=(60, 3))
    with mlops.track("cb") as run:
        model = cb.CatBoostRegressor(
            iterations=3, thread_count=1, verbose=False, allow_writing_files=False
        ).fit(x, x[:, 0])
    mlops.register(run.run_id, "cb")
    assert np.array_equal(mlops.load_model("cb@1").predict(x), model.predict(x))
    env = {"MLOPS_HOME": str(store_dir), "PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert "catboost is not installed here: pip install 'jupyter_mlops[catboost]'" in out.stdout


def test_grown_trees_round_trip_and_text_features_need_trust(store_dir):
    """Non-symmetric trees (Lossguide, Depthwise) save as cbm and load the same; a model
    with text features (whose processing the check does not read) is kept as a pickle,
    which loads only with trusted=True."""
    from jupyter_mlops.errors import UntrustedModelError

    rng = np.random.default_rng(0)
    x = pd.DataFrame({"a": rng.normal(size=300), "seg": rng.choice(list("pqr"), 300)})
    y = x.a * 2 + (x.seg == "p")
    kw = {"iterations": 8, "thread_count": 1, "verbose": False, "allow_writing_files": False}
    for policy in ("Lossguide", "Depthwise"):
        with mlops.track(policy) as run:
            model = cb.CatBoostRegressor(grow_policy=policy, cat_features=["seg"], **kw).fit(x, y)
        mv = mlops.register(run.run_id, policy.lower())
        assert mv.format == "catboost-cbm"
        assert np.array_equal(mlops.load_model(f"{policy.lower()}@1").predict(x), model.predict(x))

    words = x.assign(note=np.where(x.a > 0, "good day", "bad day so so"))
    with mlops.track("text") as run:
        model = cb.CatBoostClassifier(text_features=["note"], cat_features=["seg"], **kw).fit(
            words, (x.a > 0).astype(int)
        )
    mv = mlops.register(run.run_id, "text")
    assert mv.format == "pickle"
    with pytest.raises(UntrustedModelError, match="trusted=True"):
        mlops.load_model("text@1")
    loaded = mlops.load_model("text@1", trusted=True)
    assert np.array_equal(loaded.predict_proba(words), model.predict_proba(words))


@pytest.mark.filterwarnings("ignore:jupyter_mlops. input 'arr' was not versioned")
def test_arrays_and_integer_categories_serve_from_json_columns(store_dir, tmp_path):
    """A model fitted on an object array (numbers and text mixed) takes numbers and text
    columns ``x0…``; integer codes given as ``cat_features`` take whole numbers (a JSON
    client sends 1.0); a docker export serves the same from its folder."""
    from jupyter_mlops.serving.model import load_directory

    rng = np.random.default_rng(0)
    arr = np.empty((300, 3), dtype=object)
    arr[:, 0], arr[:, 1] = rng.normal(size=300), rng.normal(size=300)
    arr[:, 2] = rng.choice(list("xyz"), 300)
    labels = ((arr[:, 0].astype(float) + (arr[:, 2] == "x")) > 0.3).astype(int)
    kw = {"iterations": 8, "thread_count": 1, "verbose": False, "allow_writing_files": False}
    with mlops.track("array") as run:
        model = cb.CatBoostClassifier(cat_features=[2], **kw).fit(arr, labels)
    mv = mlops.register(run.run_id, "array")
    assert [(i["name"], i["dtype"]) for i in mv.signature["inputs"]] == [
        ("x0", "float64"),
        ("x1", "float64"),
        ("x2", "object"),
    ]
    folder = mlops.export_model("array@1", "docker", tmp_path / "array")
    served = load_directory(folder / "model")
    columns = {"x0": arr[:20, 0].tolist(), "x1": arr[:20, 1].tolist(), "x2": arr[:20, 2].tolist()}
    out = served.predict(served.schema.frame(columns), ("predict", "predict_proba"))
    assert out["predict"].tolist() == model.predict(arr[:20]).tolist()
    assert np.array_equal(out["predict_proba"], model.predict_proba(arr[:20]))

    x = pd.DataFrame({"a": rng.normal(size=300), "code": rng.integers(0, 4, 300)})
    with mlops.track("codes") as run:
        coded = cb.CatBoostClassifier(cat_features=["code"], **kw).fit(
            x, ((x.a + (x.code == 1)) > 0.3).astype(int)
        )
    mv = mlops.register(run.run_id, "codes")
    assert mv.signature["inputs"][1] == {"name": "code", "dtype": "int64", "categorical": True}
    served = load_directory(mlops.export_model("codes@1", "docker", tmp_path / "codes") / "model")
    frame = served.schema.frame({"a": x.a.tolist(), "code": [float(c) for c in x.code]})
    assert served.predict(frame)["predict"].tolist() == coded.predict(x).tolist()
