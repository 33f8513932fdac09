"""Conformance: the published test cases of the servers whose clients users bring,
replayed against our serving app over real HTTP on 127.0.0.1.

The cases come from these upstream test files; each case below names its test:

- MLServer: ``SeldonIO/MLServer`` ``tests/rest/test_endpoints.py``, with the request
  bodies of ``tests/testdata/inference-request.json`` and
  ``tests/testdata/inference-request-invalid-datatype.json``.
- Triton: ``triton-inference-server/server`` ``qa/L0_http/http_test.py`` and
  ``qa/L0_http/nested_json_crash.py``.
- MLflow: ``mlflow/mlflow`` ``tests/pyfunc/test_scoring_server.py``.

Models are registered under the names the upstream tests use, fitted so that the
upstream request bodies apply unchanged. Where we answer differently on purpose, the
case says so and why.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import jupyter_mlops as mlops
from jupyter_mlops._version import __version__
from jupyter_mlops.serving.app import ServeConfig, create_app

from .serving_helpers import Client, ThreadServer


def serve(reference: str) -> ThreadServer:
    return ThreadServer(create_app(ServeConfig(reference=reference)))


def register(name: str, model: object, x: object, y: object) -> object:
    """Register ``name`` version 1: ``model`` fitted on ``x, y`` in a tracked block."""
    with mlops.track(f"fit {name}") as run:
        model.fit(x, y)
    mlops.register(run.run_id, name)
    return model


# -- MLServer ------------------------------------------------------------------------------
# tests/testdata/inference-request.json and inference-request-invalid-datatype.json
MLSERVER_REQUEST = {
    "inputs": [{"name": "input-0", "shape": [1, 3], "datatype": "INT32", "data": [1, 2, 3]}]
}
MLSERVER_INVALID_DATATYPE = {
    "inputs": [{"name": "input-0", "shape": [1, 3], "datatype": "INT322", "data": [1, 2, 3]}]
}


@pytest.fixture
def sum_model(store_dir):
    """MLServer's ``sum-model`` (its fixture sums the inputs): a linear model of a + b + c."""
    from sklearn.linear_model import LinearRegression

    rng = np.random.default_rng(0)
    x = rng.integers(0, 10, size=(50, 3))

    register("sum-model", LinearRegression(), x, x.sum(axis=1))
    with serve("sum-model@1") as srv:
        c = Client(srv.port)
        yield c
        c.close()


def test_mlserver_health_and_metadata(sum_model):
    c = sum_model
    # MLServer tests/rest/test_endpoints.py::test_live
    assert c.get("/v2/health/live")[0] == 200
    # MLServer tests/rest/test_endpoints.py::test_ready
    assert c.get("/v2/health/ready")[0] == 200
    # MLServer tests/rest/test_endpoints.py::test_model_ready (a route we lacked)
    status, _, out = c.get("/v2/models/sum-model/versions/1/ready")
    assert status == 200 and out["ready"] is True
    assert c.get("/v2/models/sum-model/ready")[0] == 200

    # MLServer tests/rest/test_endpoints.py::test_metadata
    status, _, meta = c.get("/v2")
    assert status == 200
    assert meta["name"] == "jupyter_mlops"
    assert meta["version"] == __version__
    assert meta["extensions"] == []

    # MLServer tests/rest/test_endpoints.py::test_model_metadata, without and with a version
    for path in ("/v2/models/sum-model", "/v2/models/sum-model/versions/1"):
        status, _, meta = c.get(path)
        assert status == 200, (path, meta)
        assert meta["name"] == "sum-model"
        assert meta["platform"] == "sklearn"
        assert meta["versions"] == ["1"]
        assert [i["name"] for i in meta["inputs"]] == ["x0", "x1", "x2"]
        assert all(set(i) >= {"name", "datatype", "shape"} for i in meta["inputs"])
    # MLServer tests/rest/test_endpoints.py::test_model_repository_unload: an unknown model's
    # metadata is a 404
    status, _, out = c.get("/v2/models/my-model")
    assert status == 404 and set(out) == {"error"}
    status, _, out = c.get("/v2/models/sum-model/versions/2")
    assert status == 404 and "version 2 not found" in out["error"]
    assert c.get("/v2/models/sum-model/versions/2/ready")[0] == 404


@pytest.mark.parametrize("model_version", ["1", None])
def test_mlserver_infer_with_and_without_a_version(sum_model, model_version):
    """MLServer tests/rest/test_endpoints.py::test_infer (parametrized over the version)."""
    c = sum_model
    endpoint = "/v2/models/sum-model/infer"
    if model_version is not None:
        endpoint = f"/v2/models/sum-model/versions/{model_version}/infer"
    status, _, prediction = c.post(endpoint, MLSERVER_REQUEST)
    assert status == 200, prediction
    assert len(prediction["outputs"]) == 1
    assert prediction["outputs"][0]["data"] == pytest.approx([6])
    assert prediction["model_name"] == "sum-model" and prediction["model_version"] == "1"


def test_mlserver_errors(sum_model):
    c = sum_model
    # MLServer tests/rest/test_endpoints.py::test_infer_error: an unknown model and version
    status, _, out = c.post("/v2/models/my-model/versions/v0/infer", MLSERVER_REQUEST)
    assert status == 404 and set(out) == {"error"} and "'my-model'" in out["error"]
    status, _, out = c.post("/v2/models/sum-model/versions/v0/infer", MLSERVER_REQUEST)
    assert status == 404
    assert out["error"].startswith("Model sum-model with version v0 not found")

    # MLServer tests/rest/test_endpoints.py::test_infer_invalid_datatype_error. MLServer
    # answers 422 (its request model's validation); the Open Inference Protocol answers a
    # malformed request with 400 and {"error": ...}, which we do.
    status, _, out = c.post("/v2/models/sum-model/infer", MLSERVER_INVALID_DATATYPE)
    assert status == 400 and set(out) == {"error"}
    assert "datatype 'INT322'" in out["error"] and "INT32" in out["error"]


# -- Triton --------------------------------------------------------------------------------
@pytest.fixture
def triton_models(store_dir):
    """Triton's ``simple_identity`` (BYTES) and ``simple_identity_int64`` (INT64): one
    input named INPUT0, so Triton's request bodies apply unchanged."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    words = pd.DataFrame({"INPUT0": ["hello", "world", "hello", "again"]})
    numbers = pd.DataFrame({"INPUT0": np.array([1, 123, 5, 200], dtype=np.int64)})
    labels = [0, 1, 0, 1]
    text = make_pipeline(OneHotEncoder(handle_unknown="ignore"), LogisticRegression())
    register("simple_identity", text, words, labels)
    register("simple_identity_int64", LogisticRegression(), numbers, labels)
    with serve("simple_identity@1") as text, serve("simple_identity_int64@1") as ints:
        yield {"simple_identity": text.port, "simple_identity_int64": ints.port}


def _nested(depth: int, value: str):
    """Triton's create_nested_json: ``value`` wrapped in ``depth`` arrays."""
    for _ in range(depth):
        value = f"[{value}]"
    return json.loads(value)


def test_triton_json_recursion_depth_limit(triton_models):
    """Triton qa/L0_http/http_test.py::test_json_recursion_depth_limit: data nested 120
    levels is refused with the limit stated, 50 levels is accepted."""
    test_matrix = [
        # (datatype, data, model, json_depth, should_succeed)
        ("BYTES", '"hello"', "simple_identity", 120, False),
        ("BYTES", '"hello"', "simple_identity", 50, True),
        ("INT64", "123", "simple_identity_int64", 120, False),
        ("INT64", "123", "simple_identity_int64", 50, True),
    ]
    for dtype, data, model, json_depth, should_succeed in test_matrix:
        c = Client(triton_models[model])
        payload = {
            "inputs": [
                {
                    "name": "INPUT0",
                    "datatype": dtype,
                    "shape": [1, 1],
                    "data": _nested(json_depth, data),
                }
            ]
        }
        status, _, out = c.post(f"/v2/models/{model}/infer", payload)
        if should_succeed:
            assert status == 200, (dtype, json_depth, out)
        else:
            assert status == 400, (dtype, json_depth, out)
            assert "JSON nesting depth exceeds maximum allowed limit (100)" in out["error"]
        c.close()


def test_triton_shapes_outputs_and_a_150000_deep_body(triton_models):
    c = Client(triton_models["simple_identity_int64"])
    infer = "/v2/models/simple_identity_int64/infer"
    # Triton qa/L0_http/http_test.py::test_buffer_size_overflow: the element count of
    # [2**4, 2**60 + 2] overflows 64 bits, [2**2, 2**60 + 2] overflows its byte size; both
    # are refused before anything is allocated.
    for shape in ([2**4, 2**60 + 2], [2**2, 2**60 + 2]):
        payload = {
            "inputs": [{"name": "INPUT0", "shape": shape, "datatype": "FP32", "data": [1.0]}]
        }
        status, _, out = c.post(infer, payload)
        assert status == 400, out
        assert str(shape[0] * shape[1]) in out["error"] and "holds 1 value" in out["error"]

    # Triton qa/L0_http/http_test.py::test_negative_dimensions. Triton answers 500 ("Unable
    # to parse 'shape'"); a negative size is the client's error, so we answer 400.
    payload = {"inputs": [{"name": "INPUT0", "shape": [2, -5], "datatype": "FP32", "data": [1.0]}]}
    status, _, out = c.post(infer, payload)
    assert status == 400 and "shape [2, -5]" in out["error"]

    # Triton qa/L0_http/http_test.py::test_duplicate_output_names (our output is "predict")
    payload = {
        "inputs": [{"name": "INPUT0", "datatype": "INT64", "shape": [1, 1], "data": [[5]]}],
        "outputs": [{"name": "predict"} for _ in range(2)],
    }
    status, _, out = c.post(infer, payload)
    assert status == 400
    assert "Duplicate output name 'predict' is not allowed in a request" in out["error"]
    assert c.get("/v2/health/live")[0] == 200

    # Triton qa/L0_http/nested_json_crash.py: 150,000 nested arrays (a RapidJSON stack
    # overflow there, a RecursionError here before) get an answer, and the server lives
    nested = "[" * 150000 + "1" + "]" * 150000
    body = (
        f'{{"inputs": [{{"name": "INPUT0", "shape": [1], "datatype": "INT32", "data": {nested}}}]}}'
    )
    status, _, out = c.post(infer, body, headers={"Content-Type": "application/json"})
    assert status == 400 and "nesting depth" in out["error"]
    assert c.get("/v2/health/live")[0] == 200
    status, _, out = c.post(
        infer, {"inputs": [{"name": "INPUT0", "shape": [1], "datatype": "INT64", "data": [123]}]}
    )
    assert status == 200 and len(out["outputs"][0]["data"]) == 1
    c.close()


# -- MLflow --------------------------------------------------------------------------------
CONTENT_TYPE_JSON = "application/json"
CONTENT_TYPE_CSV = "text/csv"


@pytest.fixture
def sklearn_model(store_dir):
    """MLflow's ``sklearn_model`` fixture: a KNN classifier on two iris features (an
    array, so clients name its columns 0 and 1)."""
    import sklearn.neighbors as knn
    from sklearn import datasets

    iris = datasets.load_iris()
    x = iris.data[:, :2]
    model = register("iris", knn.KNeighborsClassifier(), x, iris.target)
    with serve("iris@1") as srv:
        c = Client(srv.port)
        yield c, model, x
        c.close()


def score(c: Client, data, content_type: str):
    """tests/helper_functions.py::pyfunc_serve_and_score_model, against our server."""
    if isinstance(data, pd.DataFrame):
        data = json.dumps({"dataframe_split": data.to_dict(orient="split")})
    return c.post("/invocations", data, headers={"Content-Type": content_type})


def test_mlflow_bad_bodies_are_400_bad_request(sklearn_model):
    c, _, x = sklearn_model

    def bad_request(data, content_type=CONTENT_TYPE_JSON):
        status, _, out = score(c, data, content_type)
        assert status == 400, (data, out)
        assert out["error_code"] == "BAD_REQUEST" and out["message"], out
        return out["message"]

    # test_scoring_server_responds_to_malformed_json_input_with_error_code_and_message
    assert "not valid JSON" in bad_request("this is,,,, not valid json")
    # test_scoring_server_responds_to_invalid_json_format_with_error_code_and_message
    for not_a_dict_content in [1, "1", [1]]:
        assert "JSON object" in bad_request(json.dumps(not_a_dict_content))
    for incorrect_format in [
        {"not": "a serialized dataframe"},
        {"dataframe_records": [], "dataframe_split": {"data": []}},
    ]:
        assert "exactly one of" in bad_request(json.dumps(incorrect_format))
    # test_scoring_server_responds_to_invalid_pandas_input_format_with_stacktrace_and_error_code
    pdf = pd.DataFrame(x)
    bad_request(json.dumps({"dataframe_records": pdf.to_dict(orient="split")}))
    bad_request(json.dumps({"dataframe_split": pdf.to_dict(orient="records")}))
    # test_scoring_server_responds_to_invalid_dataframe_with_stacktrace_and_error_code
    bad_request(json.dumps({"dataframe_split": {"index": [1, 2], "data": [[1], [2], [3]]}}))
    # test_scoring_server_responds_to_incompatible_inference_dataframe_with_stacktrace_and_error_code
    bad_request(pd.DataFrame(np.array(range(10))))
    # test_scoring_server_responds_to_invalid_csv_input_with_stacktrace_and_error_code.
    # MLflow also sends a stack_trace; we do not (it would show the server's internals).
    assert "empty" in bad_request("", CONTENT_TYPE_CSV)


def test_mlflow_content_types(sklearn_model):
    c, model, x = sklearn_model
    expected = model.predict(x).tolist()
    records = json.dumps({"dataframe_records": pd.DataFrame(x).to_dict(orient="records")})
    split = json.dumps({"dataframe_split": pd.DataFrame(x).to_dict(orient="split")})
    # test_scoring_server_successfully_evaluates_correct_dataframes_with_pandas_records_orientation
    # and ..._with_pandas_split_orientation: with and without "; charset=UTF-8"
    for body in (records, split):
        for content_type in (CONTENT_TYPE_JSON, CONTENT_TYPE_JSON + "; charset=UTF-8"):
            status, _, out = score(c, body, content_type)
            assert status == 200, (content_type, out)
            assert out["predictions"] == expected
    # test_scoring_server_successfully_evaluates_correct_tf_serving_sklearn
    status, _, out = score(c, json.dumps({"instances": x.tolist()}), CONTENT_TYPE_JSON)
    assert status == 200 and out["predictions"] == expected
    # test_scoring_server_responds_to_invalid_content_type_request_with_unsupported_content_type_code
    split_content = pd.DataFrame(x).to_json(orient="split")
    assert score(c, split_content, "not_a_supported_content_type")[0] == 415
    # test_scoring_server_responds_to_invalid_content_type_request_with_unrecognized_content_param
    assert score(c, split_content, CONTENT_TYPE_JSON + "; something=something")[0] == 415


def test_mlflow_ping_and_version(sklearn_model):
    """test_scoring_server_client: ScoringServerClient.wait_server_ready polls /ping, and
    get_version reads /version."""
    c, model, x = sklearn_model
    assert c.get("/ping")[0] == 200
    status, _, version = c.get("/version")
    assert status == 200 and version == __version__
    status, _, out = score(c, pd.DataFrame(x), CONTENT_TYPE_JSON)
    np.testing.assert_allclose(out["predictions"], model.predict(x), rtol=1e-5)
