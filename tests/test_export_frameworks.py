"""``export --format onnx`` and ``--format mlflow`` for XGBoost and LightGBM models (and
ONNX for scikit-learn), as a data scientist meets them: models trained in ``%%track`` cells
of a real IPython shell, the export run from the real CLI or the Python API, the ONNX
file run in onnxruntime on held-out rows, the MLflow folder loaded by MLflow itself (in
``.interop-venv``), and models that cannot be converted refused with nothing written."""

from __future__ import annotations

import json
import subprocess
import textwrap

import numpy as np
import pandas as pd
import pytest
import yaml

import jupyter_mlops as mlops
from jupyter_mlops.errors import ValidationError
from jupyter_mlops.serving.export import EXPORT_MARKER

from .conftest import cli
from .test_export import Threshold, churn_frame, clean_env, interop_python
from .test_frameworks import (
    LGB_CELL,
    LGB_TRAIN_CELL,
    SETUP,
    SETUP_CATEGORICAL,
    XGB_CELL,
    XGB_TRAIN_CELL,
    track,
)

xgb = pytest.importorskip("xgboost")
lgb = pytest.importorskip("lightgbm")
ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

pytestmark = pytest.mark.filterwarnings("ignore:The argument 'eval_set' is deprecated")

# A LightGBM classifier with text labels (no categorical column)
LGB_TEXT_CELL = """%%track lgbm-text --register benign
model = lgb.LGBMClassifier(n_estimators=60, num_leaves=7, n_jobs=1, verbose=-1)
model.fit(X_train, t_train)
"""


def session(path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def marker(folder) -> dict:
    return json.loads((folder / EXPORT_MARKER).read_text())


# -- onnx -----------------------------------------------------------------------------------


def test_onnx_export_of_an_xgboost_classifier_from_the_cli_predicts_like_it(
    ip, store_dir, tmp_path
):
    track(ip, SETUP, XGB_CELL)  # early stopping: the model keeps its best round
    model, x_test = ip.user_ns["model"], ip.user_ns["X_test"]
    assert model.best_iteration < 299
    out = tmp_path / "churn-onnx"
    done = cli(store_dir, "export", "churn@1", "--format", "onnx", str(out))
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in out.iterdir()) == [EXPORT_MARKER, "model.onnx"]
    assert "verified in onnxruntime on" in done.stdout
    assert "input: 'input', float32 [N, 5], columns radius, texture" in done.stdout
    check = marker(out)["onnx"]
    assert check["kind"] == "classifier" and check["layout"] == "tensor"
    assert check["rows"] > 50 and check["labels_equal"] == check["rows"]
    assert check["max_abs_diff"] <= check["tolerance"] == 1e-4

    # held-out rows, run by onnxruntime itself: the same labels and probabilities
    runner = session(out / "model.onnx")
    assert [i.name for i in runner.get_inputs()] == ["input"]
    label, proba = runner.run(None, {"input": x_test.to_numpy(np.float32)})
    assert label.tolist() == model.predict(x_test).tolist()
    np.testing.assert_allclose(proba, model.predict_proba(x_test), atol=1e-5)
    meta = {p.key: p.value for p in onnx.load(str(out / "model.onnx")).metadata_props}
    assert meta["model"] == "churn" and meta["version"] == "1"
    assert json.loads(meta["columns"]) == list(x_test.columns)


def test_onnx_export_of_lightgbm_boosters_and_regressors(ip, tmp_path):
    track(ip, SETUP, SETUP_CATEGORICAL, LGB_TEXT_CELL, XGB_TRAIN_CELL)
    ns = ip.user_ns
    x_test = ns["X_test"]
    # a LightGBM classifier with text labels: the labels come back as text
    out = mlops.export_model("benign@1", "onnx", tmp_path / "benign")
    label, proba = session(out / "model.onnx").run(None, {"input": x_test.to_numpy(np.float32)})
    assert label.tolist() == ns["model"].predict(x_test).tolist()
    assert set(label.tolist()) == {"benign", "malignant"}
    np.testing.assert_allclose(proba, ns["model"].predict_proba(x_test), atol=1e-5)
    # an xgb.train Booster with a logistic objective: its probability is the positive class's
    out = mlops.export_model("churn-booster@1", "onnx", tmp_path / "booster")
    outputs = session(out / "model.onnx").run(None, {"input": x_test.to_numpy(np.float32)})
    expected = ns["bst"].predict(xgb.DMatrix(x_test))
    np.testing.assert_allclose(outputs[1][:, 1], expected, atol=1e-5)
    assert marker(out)["onnx"]["kind"] == "regressor"  # a Booster has no classes

    # regressors of both frameworks, on held-out rows
    x_train, y_area = ns["X_train"].drop(columns="area"), ns["X_train"]["area"]
    held = x_test.drop(columns="area")
    for name, model in {
        "area-xgb": xgb.XGBRegressor(n_estimators=80, max_depth=4, n_jobs=1),
        "area-lgb": lgb.LGBMRegressor(n_estimators=80, num_leaves=7, n_jobs=1, verbose=-1),
    }.items():
        with mlops.track(name) as run:
            model.fit(x_train, y_area)
        mlops.register(run.run_id, name)
        out = mlops.export_model(f"{name}@1", "onnx", tmp_path / name)
        (values,) = session(out / "model.onnx").run(None, {"input": held.to_numpy(np.float32)})
        np.testing.assert_allclose(values.ravel(), model.predict(held), rtol=1e-4)
        assert marker(out)["onnx"]["kind"] == "regressor"


def _column_feed(frame: pd.DataFrame) -> dict:
    """One [N, 1] tensor per column: float32 for numbers and booleans, text as strings."""
    feed = {}
    for c in frame.columns:
        numeric = pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_bool_dtype(frame[c])
        column = frame[[c]]
        feed[c] = column.to_numpy(np.float32) if numeric else column.astype(str).to_numpy(object)
    return feed


def test_onnx_export_of_scikit_learn_pipelines_with_text_columns(store_dir, tmp_path):
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    x, y = churn_frame(600)
    train, test = x.iloc[:400], x.iloc[400:]
    pipelines = {
        "churn-lr": make_pipeline(
            make_column_transformer(
                (OneHotEncoder(handle_unknown="ignore"), ["plan"]), remainder=StandardScaler()
            ),
            LogisticRegression(),
        ),
        # a pipeline ending in XGBoost converts too (its converter is registered in skl2onnx)
        "churn-xgb": make_pipeline(
            make_column_transformer(
                (OneHotEncoder(handle_unknown="ignore"), ["plan"]), remainder="passthrough"
            ),
            xgb.XGBClassifier(n_estimators=40, max_depth=3, n_jobs=1),
        ),
    }
    for name, model in pipelines.items():
        with mlops.track(name) as run:
            model.fit(train, y.iloc[:400])
        mlops.register(run.run_id, name)
        # a pipeline holding XGBoost is a skops file naming xgboost's classes: trusted=True
        out = mlops.export_model(f"{name}@1", "onnx", tmp_path / name, trusted=name != "churn-lr")
        check = marker(out)["onnx"]
        assert check["layout"] == "columns"
        assert [(i["name"], i["type"]) for i in check["inputs"]] == [
            ("tenure", "float"),
            ("calls", "float"),
            ("plan", "string"),
            ("paperless", "float"),
        ]
        runner = session(out / "model.onnx")
        assert [i.name for i in runner.get_inputs()] == list(x.columns)
        label, proba = runner.run(None, _column_feed(test))
        assert label.tolist() == model.predict(test).tolist()
        np.testing.assert_allclose(proba, model.predict_proba(test), atol=1e-5)


def test_onnx_refuses_what_does_not_convert_or_agree_and_writes_nothing(ip, store_dir, tmp_path):
    from sklearn.neighbors import NearestCentroid
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    track(ip, SETUP, SETUP_CATEGORICAL, LGB_CELL, LGB_TRAIN_CELL)
    # a previous export in the folder stays as it was
    previous = mlops.export_model("segments@1", "mlflow", tmp_path / "segments")
    before = {p.name: p.read_bytes() for p in previous.iterdir()}
    for ref in ("segments@1", "segments-booster@1"):
        with pytest.raises(ValidationError, match="cannot be converted to ONNX") as info:
            mlops.export_model(ref, "onnx", previous)
        assert "pandas Categorical features (segment)" in str(info.value)
        assert "Nothing was written" in str(info.value) and "--format docker" in str(info.value)
    assert {p.name: p.read_bytes() for p in previous.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir() if "export-" in p.name] == []
    # the command line says the same and exits 2
    done = cli(store_dir, "export", "segments@1", "--format", "onnx", str(tmp_path / "cli"))
    assert done.returncode == 2 and "pandas Categorical features (segment)" in done.stderr
    assert not (tmp_path / "cli").exists()
    # a model of no flavor (a pickle, trusted) has no converter
    with mlops.track("rule", capture=False) as run:
        mlops.log_model(Threshold(12.0), "rule")
    mlops.register(run.run_id, "rule")
    with pytest.raises(ValidationError, match="which no ONNX converter takes"):
        mlops.export_model("rule@1", "onnx", tmp_path / "rule", trusted=True)
    assert not (tmp_path / "rule").exists()

    x, y = ip.user_ns["X_train"], ip.user_ns["y_train"]
    # a step no converter takes is named
    with mlops.track("centroid") as run:
        centroid = make_pipeline(StandardScaler(), NearestCentroid()).fit(x, y)
    mlops.register(run.run_id, "centroid")
    with pytest.raises(ValidationError, match="cannot be converted to ONNX") as info:
        mlops.export_model("centroid@1", "onnx", tmp_path / "centroid")
    assert "no ONNX converter for the step sklearn.neighbors._nearest_centroid.NearestCentroid" in (
        str(info.value)
    )
    assert not (tmp_path / "centroid").exists()
    # the registered model is as it was
    assert mlops.load_model("centroid@1").predict(x).tolist() == centroid.predict(x).tolist()
    # a conversion that runs but does not agree: the scaler computes in float32 in ONNX,
    # which moves rows across the trees' splits
    with mlops.track("scaled") as run:
        scaled = make_pipeline(StandardScaler(), xgb.XGBClassifier(n_estimators=20, n_jobs=1))
        scaled.fit(x, y)
    mlops.register(run.run_id, "scaled")
    with pytest.raises(ValidationError, match="does not give the original's predictions") as info:
        mlops.export_model("scaled@1", "onnx", tmp_path / "scaled", trusted=True)
    assert "probabilities differ by up to" in str(info.value) and "float32" in str(info.value)
    assert not (tmp_path / "scaled").exists()
    assert [p.name for p in tmp_path.iterdir() if "export-" in p.name] == []


# -- mlflow ---------------------------------------------------------------------------------

MLFLOW_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import mlflow.pyfunc
    import pandas as pd

    out = {}
    for case in json.load(sys.stdin):
        frame = pd.DataFrame(case["columns"])
        for column, categories in case["categories"].items():
            frame[column] = pd.Categorical(frame[column], categories=categories)
        model = mlflow.pyfunc.load_model(case["path"])
        raw = model.get_raw_model()
        predicted = model.predict(frame)
        out[case["name"]] = {
            "predictions": [v.item() if hasattr(v, "item") else v for v in predicted],
            "class": f"{type(raw).__module__}.{type(raw).__qualname__}",
        }
    print(json.dumps(out))
    """
)


def _case(name: str, path, frame: pd.DataFrame) -> dict:
    categories = {
        c: frame[c].cat.categories.tolist()
        for c in frame.columns
        if isinstance(frame[c].dtype, pd.CategoricalDtype)
    }
    columns = {c: frame[c].astype(object if c in categories else frame[c].dtype).tolist()
               for c in frame.columns}  # fmt: skip
    return {"name": name, "path": str(path), "columns": columns, "categories": categories}


def test_mlflow_export_of_boosted_models_loads_in_mlflow_with_its_own_flavors(ip, tmp_path):
    track(ip, SETUP, SETUP_CATEGORICAL, XGB_CELL)
    ns = ip.user_ns
    x_test, c_test = ns["X_test"], ns["C_test"]
    xgb_model = ns["model"]
    track(ip, LGB_CELL, XGB_TRAIN_CELL, LGB_TRAIN_CELL)  # LightGBM: a Categorical, text labels
    expected = {
        "churn": xgb_model.predict(x_test).tolist(),
        "churn-booster": ns["bst"].predict(xgb.DMatrix(x_test)).tolist(),
        "segments": ns["model"].predict(c_test).tolist(),
        "segments-booster": ns["booster"].predict(c_test).tolist(),
    }
    layout = {
        "churn": ("xgboost", "model.ubj", "xgboost.sklearn.XGBClassifier", x_test),
        "churn-booster": ("xgboost", "model.ubj", "xgboost.core.Booster", x_test),
        "segments": ("lightgbm", "model.skops", "lightgbm.sklearn.LGBMClassifier", c_test),
        "segments-booster": ("lightgbm", "model.lgb", "lightgbm.basic.Booster", c_test),
    }
    cases = []
    for name, (flavor, model_file, model_class, rows) in layout.items():
        out = mlops.export_model(f"{name}@1", "mlflow", tmp_path / name)
        names = {p.name for p in out.iterdir()}
        assert {"MLmodel", model_file, "requirements.txt", "conda.yaml"} <= names
        assert "model.pkl" not in names  # no pickle anywhere
        mlmodel = yaml.safe_load((out / "MLmodel").read_text())
        pyfunc = mlmodel["flavors"]["python_function"]
        assert pyfunc["loader_module"] == f"mlflow.{flavor}" and pyfunc["data"] == model_file
        conf = mlmodel["flavors"][flavor]
        assert conf["data"] == model_file and conf["model_class"] == model_class
        # MLflow's schema has no categorical type: those models are exported without one
        assert ("signature" in mlmodel) == (rows is x_test), name
        requirements = (out / "requirements.txt").read_text()
        assert f"{'xgboost-cpu' if flavor == 'xgboost' else 'lightgbm'}==" in requirements
        cases.append(_case(name, out, rows))
    # the framework's own model files: UBJSON, LightGBM's model text; a wrapper as skops
    assert (tmp_path / "churn" / "model.ubj").read_bytes()[:1] == b"{"
    assert (tmp_path / "segments-booster" / "model.lgb").read_text().startswith("tree\n")
    conf = yaml.safe_load((tmp_path / "segments" / "MLmodel").read_text())["flavors"]["lightgbm"]
    assert conf["serialization_format"] == "skops"
    assert conf["skops_trusted_types"] == [
        "lightgbm.basic.Booster",
        "lightgbm.sklearn.LGBMClassifier",
    ]

    done = subprocess.run(
        [str(interop_python()), "-c", MLFLOW_SCRIPT],
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env=clean_env(),
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    for name, (_, _, model_class, _) in layout.items():
        assert result[name]["class"] == model_class, name
        if name.endswith("booster"):  # probabilities, computed by the same library
            np.testing.assert_allclose(result[name]["predictions"], expected[name], rtol=1e-6)
        else:  # labels
            assert result[name]["predictions"] == expected[name], name
