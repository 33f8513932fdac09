"""Model signatures: dtypes read from the data, the estimator or an input example, never a
datatype the model cannot take; checked with a client nobody here wrote (tritonclient),
which builds its request from the deployment's metadata alone."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import jupyter_mlops as mlops
from jupyter_mlops.errors import ValidationError
from jupyter_mlops.serving.launcher import stop_launcher
from jupyter_mlops.serving.signature import InputSchema

from .serving_helpers import processes_mentioning

pytestmark = pytest.mark.slow


def _mixed() -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(0)
    n = 300
    frame = pd.DataFrame(
        {
            "city": rng.choice(["paris", "lyon", "nice"], n),
            "plan": pd.Categorical(rng.choice(["basic", "pro"], n)),
            "age": rng.integers(18, 80, n),
            "income": rng.normal(3000, 800, n),
            "active": rng.random(n) > 0.5,
        }
    )
    label = ((frame.city == "paris") & (frame.income > 3000) | frame.active).astype(int)
    return frame, label.rename("churned")


def _numbers() -> tuple[pd.DataFrame, pd.Series]:
    from sklearn.datasets import load_breast_cancer

    x, y = load_breast_cancer(return_X_y=True, as_frame=True)
    return x.iloc[:, :4].rename(columns=lambda c: c.replace(" ", "_")), y


def _fitted_elsewhere(kind: str):
    """A model fitted where the test cannot see its data (no frame in scope)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    if kind == "frame":
        x, y = _numbers()
        return LogisticRegression(max_iter=5000).fit(x, y)
    if kind == "pipeline":
        x, y = _mixed()
        columns = ColumnTransformer(
            [
                (
                    "text",
                    make_pipeline(
                        SimpleImputer(strategy="most_frequent"),
                        OneHotEncoder(handle_unknown="ignore"),
                    ),
                    ["city", "plan"],
                ),
                ("numbers", StandardScaler(), ["age", "income"]),
            ],
            remainder="passthrough",
        )
        return make_pipeline(columns, LogisticRegression(max_iter=2000)).fit(x, y)
    if kind == "array":
        x, y = _numbers()
        return RandomForestClassifier(n_estimators=5, random_state=0).fit(x.to_numpy(), y)
    raise AssertionError(kind)


def _dtypes(run_id: str) -> dict[str, str]:
    (model,) = mlops.get_run(run_id).models
    return {i["name"]: i["dtype"] for i in model["signature"]["inputs"]}


def test_a_model_fitted_outside_the_run_gets_dtypes_from_the_estimator(store_dir):
    with mlops.track("outside") as run:
        mlops.log_model(_fitted_elsewhere("frame"), "lr")
    (model,) = mlops.get_run(run.run_id).models
    assert model["signature"]["input_kind"] == "dataframe"
    assert set(_dtypes(run.run_id).values()) == {"float64"}

    with mlops.track("pipeline") as run:
        mlops.log_model(_fitted_elsewhere("pipeline"))
    assert _dtypes(run.run_id) == {
        "city": "object",
        "plan": "object",
        "age": "float64",
        "income": "float64",
        "active": "float64",  # passthrough into a numeric model: numbers
    }

    with mlops.track("array") as run:
        mlops.log_model(_fitted_elsewhere("array"))
    (model,) = mlops.get_run(run.run_id).models
    assert model["signature"]["input_kind"] == "ndarray"
    assert _dtypes(run.run_id) == {f"x{i}": "float64" for i in range(4)}


def test_the_frame_in_scope_gives_exact_dtypes(store_dir):
    x, y = _mixed()
    model = _fitted_elsewhere("pipeline")
    with mlops.track("in scope") as run:
        mlops.log_model(model)
    dtypes = _dtypes(run.run_id)
    assert dtypes["age"] == "int64" and dtypes["active"] == "bool"
    assert dtypes["income"] == "float64" and dtypes["plan"] == "category"
    assert dtypes["city"] in ("object", "str")
    assert x is not None and y is not None  # the frame the model was fitted on, in scope


def test_input_example_and_signature_are_accepted_and_checked(store_dir):
    model = _fitted_elsewhere("pipeline")
    x, _ = _mixed()
    with mlops.track("example") as run:
        mlops.log_model(model, "with_example", input_example=x.head(3))
        mlops.log_model(
            model,
            "with_signature",
            signature={
                "inputs": [
                    {"name": "income", "dtype": "float64"},
                    {"name": "city", "dtype": "object"},
                    {"name": "plan", "dtype": "object"},
                    {"name": "age", "dtype": "int64"},
                    {"name": "active", "dtype": "bool"},
                ]
            },
        )
        # MLflow's ModelSignature.to_dict() form
        mlflow_inputs = [
            {"type": "string", "name": "city"},
            {"type": "string", "name": "plan"},
            {"type": "long", "name": "age"},
            {"type": "double", "name": "income"},
            {"type": "boolean", "name": "active"},
        ]
        mlops.log_model(
            model, "mlflow", signature={"inputs": json.dumps(mlflow_inputs), "outputs": None}
        )
        bad = [
            ({"input_example": x.drop(columns=["age"]).head(2)}, "lacks the columns \\['age'\\]"),
            ({"input_example": x.head(0)}, "no rows"),
            ({"input_example": x.assign(age="old").head(2)}, "cannot predict on input_example"),
            ({"signature": {"city": "object"}}, "the model was fitted on"),
            ({"signature": {**dict.fromkeys(x.columns, "object")}}, "takes numbers there"),
            ({"signature": {**dict.fromkeys(x.columns, "float64")}}, "encodes text"),
            ({"signature": {**dict.fromkeys(x.columns, "datetime64[ns]")}}, "has dtype"),
            ({"signature": "float64"}, "signature= is a dict"),
        ]
        for kwargs, message in bad:
            with pytest.raises(ValidationError, match=message):
                mlops.log_model(model, "refused", **kwargs)
    recorded = mlops.get_run(run.run_id)
    models = {m["name"]: m for m in recorded.models}
    assert set(models) == {"with_example", "with_signature", "mlflow"}  # nothing refused kept
    example = {i["name"]: i["dtype"] for i in models["with_example"]["signature"]["inputs"]}
    assert example["age"] == "int64" and example["active"] == "bool"
    assert models["with_example"]["input_example"]["columns"] == list(x.columns)
    assert len(models["with_example"]["input_example"]["data"]) == 3
    given = [i["name"] for i in models["with_signature"]["signature"]["inputs"]]
    assert given == list(x.columns)  # in the order the model takes them
    mlflow = {i["name"]: i["dtype"] for i in models["mlflow"]["signature"]["inputs"]}
    assert mlflow == {
        "city": "object",
        "plan": "object",
        "age": "int64",
        "income": "float64",
        "active": "bool",
    }


def test_a_stored_signature_without_dtypes_is_served_with_the_model_s_own():
    """Signatures written before dtypes were inferred say ``unknown``: the server reads the
    estimator instead of advertising BYTES for numbers."""
    model = _fitted_elsewhere("pipeline")
    old = {
        "inputs": [{"name": str(c), "dtype": "unknown"} for c in model.feature_names_in_],
        "input_kind": "unknown",
    }
    described = {
        t["name"]: t["datatype"] for t in InputSchema.from_signature(old, model).describe()
    }
    assert described == {
        "city": "BYTES",
        "plan": "BYTES",
        "age": "FP64",
        "income": "FP64",
        "active": "FP64",
    }
    array_model = _fitted_elsewhere("array")
    old = {"inputs": [{"name": f"x{i}", "dtype": "unknown"} for i in range(4)]}
    schema = InputSchema.from_signature(old, array_model)
    assert schema.ndarray and {t["datatype"] for t in schema.describe()} == {"FP64"}


@pytest.fixture
def deployed(store_dir):
    yield
    for d in mlops.deployments().itertuples():
        mlops.undeploy(d.deployment_id)
    stop_launcher(store_dir)
    assert processes_mentioning(str(store_dir)) == []


def _register(name: str, run_id: str) -> None:
    mlops.register(run_id, name)


def _log_elsewhere(kind: str, name: str):
    """Fit, log and register a model where no frame of its data is in scope."""
    model = _fitted_elsewhere(kind)
    with mlops.track(name) as run:
        mlops.log_model(model, name)
    _register(name, run.run_id)
    return model


def test_tritonclient_requests_built_from_metadata_are_answered(deployed):
    import tritonclient.http as httpclient
    from sklearn.linear_model import LogisticRegression
    from tritonclient.utils import triton_to_np_dtype

    numbers_x, numbers_y = _numbers()
    mixed_x, mixed_y = _mixed()
    registered: dict[str, tuple[object, pd.DataFrame]] = {}

    with mlops.track("lr on a frame") as run:  # captured: fitted in the block
        lr = LogisticRegression(max_iter=5000).fit(numbers_x, numbers_y)
    _register("lr_frame", run.run_id)
    registered["lr_frame"] = (lr, numbers_x)

    for kind, name, x in [
        ("frame", "lr_outside", numbers_x),
        ("pipeline", "pipeline", mixed_x),
        ("array", "forest_array", numbers_x),
    ]:
        registered[name] = (_log_elsewhere(kind, name), x)

    with mlops.track("pipeline captured") as run:  # mixed columns, fitted in the block
        captured = _fitted_elsewhere("pipeline").fit(mixed_x, mixed_y)
    _register("pipeline_captured", run.run_id)
    registered["pipeline_captured"] = (captured, mixed_x)

    model = _fitted_elsewhere("pipeline")
    with mlops.track("example") as run:
        mlops.log_model(model, input_example=mixed_x.head(5))
    _register("pipeline_example", run.run_id)
    registered["pipeline_example"] = (model, mixed_x)

    assert set(mlops.models().name) == set(registered)
    rows = slice(0, 7)
    for name, (model, x) in registered.items():
        deployment = mlops.deploy(f"{name}@1")
        client = httpclient.InferenceServerClient(url=deployment.url.split("://", 1)[1])
        meta = client.get_model_metadata(name)
        assert meta["inputs"], name
        inputs = []
        for tensor in meta["inputs"]:
            assert tensor["datatype"] != "BYTES" or name.startswith("pipeline"), (name, tensor)
            column = tensor["name"]
            values = (
                x.iloc[rows][column]
                if column in x.columns
                else x.iloc[rows, int(column[1:])]  # x0, x1, … of a model fitted on an array
            )
            dtype = triton_to_np_dtype(tensor["datatype"])
            if tensor["datatype"] == "BYTES":
                data = np.asarray([str(v) for v in values], dtype=np.object_)
            else:
                data = values.to_numpy().astype(dtype)
            shape = [len(data) if d == -1 else d for d in tensor["shape"]]
            item = httpclient.InferInput(column, shape, tensor["datatype"])
            item.set_data_from_numpy(data, binary_data=False)
            inputs.append(item)
        outputs = [
            httpclient.InferRequestedOutput(o["name"], binary_data=False) for o in meta["outputs"]
        ]
        result = client.infer(name, inputs, outputs=outputs)
        expected = np.asarray(
            model.predict(x.iloc[rows])
            if "array" not in name
            else model.predict(x.iloc[rows].to_numpy())
        )
        assert result.as_numpy("predict").tolist() == expected.tolist(), name
        if "predict_proba" in {o["name"] for o in meta["outputs"]}:
            proba = result.as_numpy("predict_proba")
            assert proba.shape == (7, 2), name
        client.close()
        mlops.undeploy(f"{name}@1")
