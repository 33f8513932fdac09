"""XGBoost and LightGBM through every stage, as a data scientist meets them: ``%%track``
cells in a real IPython shell (scikit-learn API and ``xgb.train``/``lgb.train``), the
curves of every eval set, best iteration, importances, registration, safe save and load
with identical predictions, a real deployment answering over HTTP, batch scoring and a
monitor check; and model files that are untrusted input."""

from __future__ import annotations

import io
import json
import pickle
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
from jupyter_mlops.tracking.flavors.ubjson import loads as ubjson_loads

from .conftest import run_cell
from .fuzz_models import ubjson
from .serving_helpers import Client, processes_mentioning
from .test_model_safety import _plant

xgb = pytest.importorskip("xgboost")
lgb = pytest.importorskip("lightgbm")

REPO = Path(__file__).resolve().parents[1]
# LightGBM 4.7 prefers eval_X/eval_y; the cells use eval_set, as most code still does
pytestmark = pytest.mark.filterwarnings("ignore:The argument 'eval_set' is deprecated")

SETUP = """
import numpy as np
import pandas as pd
import xgboost as xgb
import lightgbm as lgb
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from tests.serving_helpers import training_frame
X, y = training_frame()
X_train, X_rest, y_train, y_rest = train_test_split(X, y, test_size=0.4, random_state=0)
X_valid, X_test, y_valid, y_test = train_test_split(X_rest, y_rest, test_size=0.5, random_state=0)
"""

# LightGBM's cells: a pandas Categorical column, and text labels
SETUP_CATEGORICAL = """
def with_segment(frame):
    size = np.where(frame.area > 700, "large", np.where(frame.area > 450, "mid", "small"))
    return frame.assign(segment=pd.Categorical(size, categories=["small", "mid", "large"]))
C_train, C_valid, C_test = with_segment(X_train), with_segment(X_valid), with_segment(X_test)
label = {0: "malignant", 1: "benign"}
t_train, t_valid, t_test = y_train.map(label), y_valid.map(label), y_test.map(label)
"""

XGB_CELL = """%%track xgb-baseline --register churn
model = xgb.XGBClassifier(n_estimators=300, max_depth=5, early_stopping_rounds=20, n_jobs=1)
model.fit(X_train, y_train, eval_set=[(X_valid, y_valid)])
auc = roc_auc_score(y_test, model.predict_proba(X_test)[:, 1])
"""

LGB_CELL = """%%track lgbm-baseline --register segments
model = lgb.LGBMClassifier(n_estimators=200, num_leaves=7, n_jobs=1, verbose=-1)
model.fit(C_train, t_train, eval_set=[(C_valid, t_valid)], callbacks=[lgb.early_stopping(10, verbose=False)])
auc = roc_auc_score(t_test == "benign", model.predict_proba(C_test)[:, 1])
"""

XGB_TRAIN_CELL = """%%track xgb-train --register churn-booster
params = {"max_depth": 3, "eta": 0.3, "objective": "binary:logistic",
          "eval_metric": ["logloss", "auc"], "nthread": 1}
dtrain = xgb.DMatrix(X_train, label=y_train)
dvalid = xgb.DMatrix(X_valid, label=y_valid)
history = {}
bst = xgb.train(params, dtrain, num_boost_round=15, evals=[(dtrain, "train"), (dvalid, "valid")],
                evals_result=history, verbose_eval=False)
"""

LGB_TRAIN_CELL = """%%track lgb-train --register segments-booster
train_set = lgb.Dataset(C_train, label=y_train)
valid_set = lgb.Dataset(C_valid, label=y_valid, reference=train_set)
evals = {}
booster = lgb.train({"objective": "binary", "num_leaves": 7, "learning_rate": 0.2,
                     "metric": ["binary_logloss", "auc"], "num_threads": 1, "verbose": -1},
                    train_set, num_boost_round=12, valid_sets=[train_set, valid_set],
                    valid_names=["train", "valid"], callbacks=[lgb.record_evaluation(evals)])
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


def test_xgb_classifier_cell_captures_curves_best_round_importance_and_model(ip, capsys):
    track(ip, SETUP, XGB_CELL)
    model = ip.user_ns["model"]
    assert 0.9 < ip.user_ns["auc"] <= 1
    assert "validation_0-logloss" in capsys.readouterr().out  # xgboost's own output, as ever

    run = only_run("xgb-baseline")
    assert run.status == "finished"
    assert run.params["model.n_estimators"] == 300
    assert run.params["model.max_depth"] == 5
    assert run.params["model.early_stopping_rounds"] == 20
    assert run.metrics["auc"] == ip.user_ns["auc"]
    # one point per boosting round run (early stopping ended it before 300), steps from 0
    logloss = model.evals_result()["validation_0"]["logloss"]
    rounds = model.get_booster().num_boosted_rounds()
    assert len(logloss) == rounds < 300
    assert_curve(run, "validation_0.logloss", logloss)
    assert run.metrics["best_iteration"] == model.best_iteration
    assert run.metrics["best_score"] == model.best_score == min(logloss)
    # gain importances, one per feature
    doc = json.loads(run.artifact_bytes("model.importance.json"))
    gain = model.get_booster().get_score(importance_type="gain")
    assert doc["importance_type"] == "gain"
    assert set(doc["importance"]) == set(X_columns(ip))
    assert all(doc["importance"][k] == pytest.approx(v) for k, v in gain.items())
    # the data the model saw, versioned as ever
    assert {i["name"] for i in run.inputs if i["role"] == "input"} >= {"X_train", "X_valid"}

    # registered: UBJSON, loaded back into the same class with the same predictions
    mv = mlops.get_model_version("churn@1")
    assert mv.format == "xgboost-ubj" and mv.flavor == "xgboost.sklearn.XGBClassifier"
    assert [i["name"] for i in mv.signature["inputs"]] == X_columns(ip)
    assert any(r.startswith("xgboost") for r in mv.requirements)
    loaded = mlops.load_model("churn@1")
    assert type(loaded) is xgb.XGBClassifier
    x_test = ip.user_ns["X_test"]
    assert np.array_equal(loaded.predict_proba(x_test), model.predict_proba(x_test))
    assert np.array_equal(loaded.predict(x_test), model.predict(x_test))
    assert loaded.best_iteration == model.best_iteration
    assert loaded.get_params()["max_depth"] == 5
    # the UBJSON inside is XGBoost's own file: xgboost reads it without us
    with zipfile.ZipFile(io.BytesIO(current_store().objects.get(mv.object_hash))) as archive:
        raw = archive.read("model.ubj")
    plain = xgb.XGBClassifier()
    plain.load_model(bytearray(raw))
    assert np.array_equal(plain.predict_proba(x_test), model.predict_proba(x_test))


def X_columns(ip) -> list[str]:
    return [str(c) for c in ip.user_ns["X"].columns]


def test_lgbm_classifier_cell_records_categorical_features_and_text_classes(ip):
    track(ip, SETUP, SETUP_CATEGORICAL, LGB_CELL)
    model = ip.user_ns["model"]
    run = only_run("lgbm-baseline")
    assert run.params["model.num_leaves"] == 7 and run.params["model.n_estimators"] == 200
    logloss = model.evals_result_["valid_0"]["binary_logloss"]
    # every round run is a point; early stopping kept the best one's trees
    assert len(logloss) > model.best_iteration_ == model.booster_.current_iteration()
    assert_curve(run, "valid_0.binary_logloss", logloss)
    assert run.metrics["best_iteration"] == model.best_iteration_ - 1  # a step of the curve
    assert run.metrics["best_score"] == model.best_score_["valid_0"]["binary_logloss"]
    doc = json.loads(run.artifact_bytes("model.importance.json"))
    booster = model.booster_
    gain = dict(zip(booster.feature_name(), booster.feature_importance("gain"), strict=True))
    assert doc["importance"] == pytest.approx(gain) and doc["importance"]["segment"] > 0

    mv = mlops.get_model_version("segments@1")
    assert mv.format == "lightgbm-txt"
    assert mv.signature["categorical"] == ["segment"]
    segment = mv.signature["inputs"][-1]
    assert segment == {
        "name": "segment",
        "dtype": "category",
        "categorical": True,
        "pandas_category": True,
        "categories": ["small", "mid", "large"],
    }
    assert mv.signature["outputs"][0]["classes"] == ["benign", "malignant"]

    loaded = mlops.load_model("segments@1")
    assert type(loaded) is lgb.LGBMClassifier
    c_test = ip.user_ns["C_test"]
    assert np.array_equal(loaded.predict(c_test), model.predict(c_test))
    assert np.array_equal(loaded.predict_proba(c_test), model.predict_proba(c_test))
    assert list(loaded.classes_) == ["benign", "malignant"]
    assert loaded.get_params() == model.get_params()
    assert list(loaded.feature_names_in_) == list(c_test.columns)
    # the model text inside is LightGBM's own: a Booster reads it as it is
    with zipfile.ZipFile(io.BytesIO(current_store().objects.get(mv.object_hash))) as archive:
        text = archive.read("model.txt").decode()
    assert text.startswith("tree\n") and 'pandas_categorical:[["small", "mid", "large"]]' in text
    plain = lgb.Booster(model_str=text)
    assert np.array_equal(plain.predict(c_test), model.predict_proba(c_test)[:, 1])


def test_xgb_train_records_the_params_dict_and_every_eval_set(ip):
    track(ip, SETUP, XGB_TRAIN_CELL)
    bst, history = ip.user_ns["bst"], ip.user_ns["history"]
    run = only_run("xgb-train")
    assert run.params["bst.max_depth"] == 3 and run.params["bst.eta"] == 0.3
    assert run.params["bst.objective"] == "binary:logistic"
    assert run.params["bst.num_boost_round"] == 15
    for dataset in ("train", "valid"):
        for metric in ("logloss", "auc"):
            assert len(history[dataset][metric]) == 15
            assert_curve(run, f"{dataset}.{metric}", history[dataset][metric])
    assert "best_iteration" not in run.metrics  # no early stopping
    doc = json.loads(run.artifact_bytes("bst.importance.json"))
    assert set(doc["importance"]) == set(X_columns(ip))
    assert [m["name"] for m in run.models] == ["bst"]  # the booster; not the DMatrix objects

    loaded = mlops.load_model("churn-booster@1")
    assert type(loaded) is xgb.Booster
    dtest = xgb.DMatrix(ip.user_ns["X_test"])
    assert np.array_equal(loaded.predict(dtest), bst.predict(dtest))
    assert loaded.feature_names == X_columns(ip)

    # without an evals_result dict the booster keeps no history: the final values, at the
    # last round, computed from the eval sets the call names
    cell = XGB_TRAIN_CELL.replace("xgb-train --register churn-booster", "xgb-final").replace(
        "evals_result=history, ", ""
    )
    track(ip, cell)
    final = only_run("xgb-final")
    for dataset in ("train", "valid"):
        for metric in ("logloss", "auc"):
            assert_curve(final, f"{dataset}.{metric}", [history[dataset][metric][-1]], start=14)


def test_lgb_train_records_params_curves_and_the_booster(ip):
    track(ip, SETUP, SETUP_CATEGORICAL, LGB_TRAIN_CELL)
    booster, evals = ip.user_ns["booster"], ip.user_ns["evals"]
    run = only_run("lgb-train")
    assert run.params["booster.num_leaves"] == 7
    assert run.params["booster.learning_rate"] == 0.2
    assert run.params["booster.num_iterations"] == 12
    for dataset in ("train", "valid"):
        for metric in ("binary_logloss", "auc"):
            assert_curve(run, f"{dataset}.{metric}", evals[dataset][metric])
    assert [m["name"] for m in run.models] == ["booster"]

    mv = mlops.get_model_version("segments-booster@1")
    assert mv.signature["categorical"] == ["segment"]
    loaded = mlops.load_model("segments-booster@1")
    assert type(loaded) is lgb.Booster
    c_test = ip.user_ns["C_test"]
    assert np.array_equal(loaded.predict(c_test), booster.predict(c_test))

    # no record_evaluation: the scores LightGBM kept, at the last round
    cell = LGB_TRAIN_CELL.replace("lgb-train --register segments-booster", "lgb-final").replace(
        ", callbacks=[lgb.record_evaluation(evals)]", ""
    )
    track(ip, cell)
    final = only_run("lgb-final")
    assert_curve(final, "valid.auc", [evals["valid"]["auc"][-1]], start=11)


def test_two_boosted_models_in_one_cell_keep_their_curves_apart(ip):
    cell = """%%track both
a = xgb.XGBClassifier(n_estimators=5, n_jobs=1).fit(X_train, y_train, eval_set=[(X_valid, y_valid)], verbose=False)
b = xgb.XGBClassifier(n_estimators=7, n_jobs=1).fit(X_train, y_train, eval_set=[(X_valid, y_valid)], verbose=False)
"""
    track(ip, SETUP, cell)
    run = only_run("both")
    for name, rounds in (("a", 5), ("b", 7)):
        model = ip.user_ns[name]
        values = model.evals_result()["validation_0"]["logloss"]
        assert len(values) == rounds
        assert_curve(run, f"{name}.validation_0.logloss", values)
    assert "validation_0.logloss" not in run.metrics
    assert {m["name"] for m in run.models} == {"a", "b"}


@pytest.fixture
def served(ip, store_dir):
    track(ip, SETUP, SETUP_CATEGORICAL, XGB_CELL, LGB_CELL, XGB_TRAIN_CELL)
    yield ip
    for d in mlops.deployments().itertuples():  # never leave a server behind
        mlops.undeploy(d.deployment_id)
    stop_launcher(store_dir)
    assert processes_mentioning(str(store_dir)) == []


def _column(name: str, values: pd.Series) -> dict:
    if isinstance(values.dtype, pd.CategoricalDtype) or values.dtype == object:
        return {
            "name": name,
            "shape": [len(values)],
            "datatype": "BYTES",
            "data": [str(v) for v in values],
        }
    return {"name": name, "shape": [len(values)], "datatype": "FP64", "data": values.tolist()}


def _ask(client: Client, name: str, rows: pd.DataFrame, outputs: list[str]) -> dict:
    body = {
        "inputs": [_column(c, rows[c]) for c in rows.columns],
        "outputs": [{"name": o} for o in outputs],
    }
    status, _, out = client.post(f"/v2/models/{name}/infer", body)
    assert status == 200, out
    return {o["name"]: o["data"] for o in out["outputs"]}


@pytest.mark.slow
def test_deployed_boosted_models_answer_oip_and_invocations_like_the_notebook(served):
    ns = served.user_ns
    rows_x, rows_c = ns["X_test"].iloc[:20], ns["C_test"].iloc[:20]
    xgb_model, lgb_model, bst = mlops.load_model("churn@1"), ns["model"], ns["bst"]
    cases = [
        ("churn@1", rows_x, xgb_model, True),
        ("segments@1", rows_c, lgb_model, True),
        ("churn-booster@1", rows_x, None, False),
    ]
    for ref, rows, model, classifier in cases:
        d = mlops.deploy(ref)
        assert d.status == "running", d
        client = Client(int(d.url.rsplit(":", 1)[1]))
        name = ref.split("@")[0]
        if classifier:
            out = _ask(client, name, rows, ["predict", "predict_proba"])
            assert out["predict"] == model.predict(rows).tolist()
            proba = np.asarray(out["predict_proba"], dtype=float).reshape(len(rows), -1)
            assert np.allclose(proba, model.predict_proba(rows), rtol=1e-6, atol=0)
            expected = model.predict(rows).tolist()
        else:  # a Booster from xgb.train: its own output (probabilities here)
            out = _ask(client, name, rows, ["predict"])
            expected = bst.predict(xgb.DMatrix(rows)).tolist()
            assert np.allclose(out["predict"], expected, rtol=1e-6, atol=0)
        records = json.loads(rows.to_json(orient="records"))  # what a client sends
        status, _, body = client.post("/invocations", {"dataframe_records": records})
        assert status == 200, body
        if classifier:
            assert body["predictions"] == expected
        else:
            assert np.allclose(body["predictions"], expected, rtol=1e-6, atol=0)
        # a text value where the model takes numbers is refused clearly, as for any model
        bad = {"dataframe_records": [{**records[0], "radius": "wide"}]}
        status, _, body = client.post("/invocations", bad)
        assert status == 422 and "radius" in json.dumps(body)
        # boosted trees take missing values (each split's default branch), Boosters too
        holed = rows.iloc[:3].copy()
        holed["radius"] = np.nan
        sent = {"dataframe_records": json.loads(holed.to_json(orient="records"))}
        status, _, body = client.post("/invocations", sent)
        assert status == 200, body
        if classifier:
            assert body["predictions"] == model.predict(holed).tolist()
        else:
            local = bst.predict(xgb.DMatrix(holed))
            assert np.allclose(body["predictions"], local, rtol=1e-6, atol=0)
        client.close()
        mlops.undeploy(ref)


def test_predict_batch_and_check_score_boosted_models(ip):
    track(ip, SETUP, SETUP_CATEGORICAL, LGB_CELL)
    model, c_test = ip.user_ns["model"], ip.user_ns["C_test"]
    scored = mlops.predict_batch("segments@1", c_test, proba=True)
    assert scored["prediction"].tolist() == model.predict(c_test).tolist()
    assert np.array_equal(
        scored[["proba_benign", "proba_malignant"]].to_numpy(), model.predict_proba(c_test)
    )
    # the same rows sent with the segment as plain text (as a CSV or a JSON client has it)
    text = c_test.assign(segment=c_test["segment"].astype(str))
    again = mlops.predict_batch("segments@1", text, log=False)
    assert again["prediction"].tolist() == model.predict(c_test).tolist()

    # a monitor check scores the rows with the model: prediction drift is reported
    mlops.set_monitor("segments@1", min_rows=50)
    outcome = mlops.check("segments@1", current=c_test)
    assert outcome.rows == len(c_test) and outcome.report is not None
    assert {c.column for c in outcome.report.columns} == set(c_test.columns)
    assert outcome.report.prediction is not None


def test_a_docker_export_serves_the_boosted_model_from_its_folder(ip, tmp_path):
    from jupyter_mlops.serving.model import load_directory

    track(ip, SETUP, SETUP_CATEGORICAL, LGB_CELL)
    model, c_test = ip.user_ns["model"], ip.user_ns["C_test"]
    folder = mlops.export_model("segments@1", "docker", tmp_path / "image")
    assert (folder / "model" / "model.lightgbm-txt.zip").is_file()
    requirements = (folder / "requirements.txt").read_text().split()
    assert any(r.startswith("lightgbm==") for r in requirements)
    served = load_directory(folder / "model")
    # what a JSON request holds: plain lists, the segment as text
    columns = {c: c_test[c].astype(object if c == "segment" else float).tolist() for c in c_test}
    frame = served.schema.frame(columns)
    out = served.predict(frame, ("predict", "predict_proba"))
    assert out["predict"].tolist() == model.predict(c_test).tolist()
    assert np.array_equal(out["predict_proba"], model.predict_proba(c_test))


# -- model files are untrusted input ----------------------------------------------------------


class _Touch:
    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


def _flavor_file(format: str, files: dict[str, bytes], info: dict) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("flavor.json", json.dumps({"format": format, **info}))
        for name, data in files.items():
            archive.writestr(name, data)
    return buf.getvalue()


def plain(value):
    """A parsed UBJSON document as plain JSON values (numpy arrays as lists)."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def test_crafted_boosted_model_files_are_refused_and_run_nothing(ip, tmp_path):
    track(ip, SETUP, XGB_CELL, SETUP_CATEGORICAL, LGB_CELL)
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_Touch(str(marker)))
    stored = current_store().objects
    with zipfile.ZipFile(
        io.BytesIO(stored.get(mlops.get_model_version("segments@1").object_hash))
    ) as z:
        model_text = z.read("model.txt").decode()
    with zipfile.ZipFile(
        io.BytesIO(stored.get(mlops.get_model_version("churn@1").object_hash))
    ) as z:
        doc = ubjson_loads(z.read("model.ubj"))
    # a tree whose child points past its nodes: XGBoost's own loader would crash on it
    tree = doc["learner"]["gradient_booster"]["model"]["trees"][1]
    tree["left_children"] = [10**6, *tree["left_children"][1:].tolist()]
    far_child = ubjson(plain(doc))
    lines = model_text.split("\n")
    at = next(i for i, line in enumerate(lines) if line.startswith("num_leaves="))
    word_leaves = "\n".join([*lines[:at], "num_leaves=abc", *lines[at + 1 :]])

    def xgb_file(model: bytes, name: str = "XGBClassifier") -> bytes:
        return _flavor_file("xgboost-ubj", {"model.ubj": model}, {"class": name})

    def lgb_file(text: str, name: str = "Booster") -> bytes:
        return _flavor_file("lightgbm-txt", {"model.txt": text.encode()}, {"class": name})

    cases = {
        "xgboost-ubj": [
            (payload, "not a xgboost-ubj archive"),  # a pickle that claims the format
            (b"\x00garbage" * 50, "not a xgboost-ubj archive"),
            (xgb_file(payload), "not UBJSON"),  # a pickle inside the archive
            (xgb_file(far_child), "tree 1 has a child index outside its"),
            (xgb_file(ubjson(plain(doc))[:-40]), "not UBJSON"),
            (xgb_file(b"{}", "os.system"), "os.system"),
            (_flavor_file("lightgbm-txt", {"model.ubj": b"{}"}, {}), "format 'lightgbm-txt'"),
            (_flavor_file("xgboost-ubj", {"model.ubj": b"{}", "extra.py": b""}, {}), "extra.py"),
        ],
        "lightgbm-txt": [
            (payload, "not a lightgbm-txt archive"),
            (lgb_file(payload.decode("latin-1")), "not LightGBM model text"),
            (lgb_file("# a model\n" + model_text), "does not start with 'tree'"),
            (lgb_file(model_text.replace("num_class=1", "num_class=x", 1)), "num_class is 'x'"),
            (lgb_file(model_text[: len(model_text) // 3]), "not LightGBM model text"),
            (lgb_file(word_leaves), "tree 0's num_leaves is 'abc'"),
            (lgb_file(model_text.replace("[num_leaves: ", "[num_leaves ")), "after the trees"),
            (lgb_file(model_text, "LGBMClassifier"), "without its classes"),
        ],
    }
    before = {ref: mlops.get_model_version(ref) for ref in ("churn@1", "segments@1")}
    refs = {"xgboost-ubj": "churn@1", "lightgbm-txt": "segments@1"}
    for format, files in cases.items():
        for data, message in files:
            _plant(refs[format], data, format)
            with pytest.raises(MlopsError, match=message.replace("(", r"\(").replace(")", r"\)")):
                mlops.load_model(refs[format])
            with pytest.raises(MlopsError):
                mlops.predict_batch(refs[format], ip.user_ns["X_test"], log=False)
            assert not marker.exists()
    # putting the true files back: everything else in the store is as it was
    for ref, mv in before.items():
        _plant(ref, current_store().objects.get(mv.object_hash), mv.format)
        assert mlops.get_model_version(ref).signature == mv.signature
    assert np.array_equal(
        mlops.load_model("segments@1").predict(ip.user_ns["C_test"]),
        ip.user_ns["model"].predict(ip.user_ns["C_test"]),
    )


def test_model_text_with_wrong_tree_sizes_loads_as_the_trees_say(ip):
    """LightGBM parses trees in parallel at the offsets ``tree_sizes`` gives, and a wrong
    one aborts the process; the header line is dropped, so the trees are read in turn."""
    track(ip, SETUP, SETUP_CATEGORICAL, LGB_CELL)
    mv = mlops.get_model_version("segments@1")
    data = current_store().objects.get(mv.object_hash)
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        info, text = json.loads(z.read("flavor.json")), z.read("model.txt").decode()
    lines = [("tree_sizes=7 7 7" if x.startswith("tree_sizes=") else x) for x in text.split("\n")]
    _plant(
        "segments@1",
        _flavor_file("lightgbm-txt", {"model.txt": "\n".join(lines).encode()}, info),
        mv.format,
    )
    c_test = ip.user_ns["C_test"]
    assert np.array_equal(
        mlops.load_model("segments@1").predict(c_test), ip.user_ns["model"].predict(c_test)
    )


@pytest.mark.parametrize("framework", ["xgboost", "lightgbm"])
def test_thousands_of_crafted_model_files_never_crash_the_loader(framework):
    """Cut, flipped and lying model files (child indices past a tree, words for numbers,
    repeated lines, junk parameters) load in a separate process, which must survive."""
    out = subprocess.run(
        [sys.executable, "-m", "tests.fuzz_models", framework, "1000"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert sum(seen.values()) == 1000 and seen["refused"] > 500


def test_a_missing_framework_costs_nothing_and_its_models_say_what_to_install(store_dir):
    """In a process where xgboost cannot be imported: scikit-learn runs are tracked as
    ever, and an XGBoost model's load says which package to install."""
    code = """
import sys
sys.modules["xgboost"] = None  # as if it were not installed
import numpy as np
import jupyter_mlops as mlops
from jupyter_mlops.errors import MlopsError
from sklearn.linear_model import LogisticRegression
x = np.random.default_rng(0).normal(size=(50, 3)); y = (x[:, 0] > 0).astype(int)
with mlops.track("sk") as run:
    model = LogisticRegression().fit(x, y)
mlops.register(run.run_id, "plain")
assert (mlops.load_model("plain@1").predict(x) == model.predict(x)).all()
try:
    mlops.load_model("churn@1")
except MlopsError as exc:
    print("ERROR:", exc)
"""
    x = np.random.default_rng(0).normal(size=(60, 3))
    with mlops.track("xgb") as run:
        model = xgb.XGBClassifier(n_estimators=3, n_jobs=1).fit(x, (x[:, 0] > 0).astype(int))
    mlops.register(run.run_id, "churn")
    assert np.array_equal(mlops.load_model("churn@1").predict(x), model.predict(x))
    env = {"MLOPS_HOME": str(store_dir), "PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert "xgboost is not installed here: pip install 'jupyter_mlops[xgboost]'" in out.stdout
