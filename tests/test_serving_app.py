"""The serving app over real HTTP on 127.0.0.1 (uvicorn in a thread): both protocols,
signature validation, bad input, metrics, the inference log, feedback and tokens."""

from __future__ import annotations

import time

import numpy as np
import pytest

import jupyter_mlops as mlops
from jupyter_mlops.errors import NotFoundError, ValidationError
from jupyter_mlops.serving.app import ServeConfig, create_app, hash_token
from jupyter_mlops.serving.inference_log import (
    Retention,
    feedback,
    inference_log,
    log_feedback,
    parse_retention,
    trim,
)
from jupyter_mlops.store import current_store

from .serving_helpers import COLUMNS, Client, ThreadServer, oip_body, predictions, register_churn


@pytest.fixture
def churn(store_dir):
    return register_churn(2)


def serve(**config):
    config.setdefault("reference", "churn@production")
    return ThreadServer(create_app(ServeConfig(**config)))


def test_both_protocols_predict_what_the_model_predicts(churn):
    x, (model, _) = churn
    rows = x.iloc[:7]
    expected = predictions(model, rows)
    with serve() as srv:
        c = Client(srv.port)
        status, _, meta = c.get("/v2/models/churn")
        assert status == 200 and meta["versions"] == ["1"]
        assert [i["name"] for i in meta["inputs"]] == COLUMNS
        assert all(i["datatype"] == "FP64" for i in meta["inputs"])
        assert {o["name"] for o in meta["outputs"]} == {"predict", "predict_proba"}
        assert c.get("/v2/health/live")[0] == 200 and c.get("/v2/health/ready")[0] == 200
        assert c.get("/v2/models/churn/ready")[2]["ready"] is True

        # OIP v2: one tensor per column, with probabilities and a client request id
        body = oip_body(rows, id="req-1", outputs=[{"name": "predict"}, {"name": "predict_proba"}])
        status, headers, out = c.post("/v2/models/churn/infer", body)
        assert status == 200, out
        assert out["id"] == "req-1" and headers["x-request-id"] == "req-1"
        assert out["model_name"] == "churn" and out["model_version"] == "1"
        tensors = {t["name"]: t for t in out["outputs"]}
        assert tensors["predict"]["data"] == expected and tensors["predict"]["shape"] == [7]
        proba = np.array(tensors["predict_proba"]["data"]).reshape(
            tensors["predict_proba"]["shape"]
        )
        assert np.allclose(proba, model.predict_proba(rows))

        # OIP v2: a single 2-D tensor whose columns follow the signature (flat and nested data)
        flat = {
            "inputs": [
                {
                    "name": "input-0",
                    "shape": [7, 5],
                    "datatype": "FP64",
                    "data": rows.to_numpy().ravel().tolist(),
                }
            ]
        }
        assert c.post("/v2/models/churn/infer", flat)[2]["outputs"][0]["data"] == expected
        flat["inputs"][0]["data"] = rows.to_numpy().tolist()
        assert c.post("/v2/models/churn/infer", flat)[2]["outputs"][0]["data"] == expected
        assert c.post("/v2/models/churn/versions/1/infer", oip_body(rows))[0] == 200
        assert c.post("/v2/models/churn/versions/2/infer", oip_body(rows))[0] == 404

        # MLflow's scoring protocol: every JSON format and CSV
        split = {"dataframe_split": rows.to_dict(orient="split")}
        records = {"dataframe_records": rows.to_dict(orient="records")}
        instances = {"instances": rows.to_dict(orient="records")}
        lists = {"instances": rows.to_numpy().tolist()}
        inputs = {"inputs": rows.to_dict(orient="list")}
        for body in (split, records, instances, lists, inputs):
            status, headers, out = c.post("/invocations", body)
            assert status == 200, (body.keys(), out)
            assert out == {"predictions": expected}
            assert len(headers["x-request-id"]) == 32
        csv = rows.to_csv(index=False)
        status, _, out = c.post("/invocations", csv, headers={"Content-Type": "text/csv"})
        assert status == 200 and out == {"predictions": expected}

        status, _, doc = c.get("/openapi.json")
        assert status == 200 and doc["openapi"].startswith("3.")
        for path in ("/v2/models/{name}/infer", "/invocations", "/metrics", "/v2/health/ready"):
            assert path in doc["paths"]
        c.close()


BAD = [
    # (path, body or raw bytes, headers, status, words in the message)
    ("/v2/models/churn/infer", b"{not json", {}, 400, ["not valid JSON"]),
    ("/v2/models/churn/infer", b"", {}, 400, ["empty"]),
    ("/v2/models/churn/infer", {"inputs": "x"}, {}, 400, ['"inputs" list']),
    ("/v2/models/churn/infer", {"inputs": []}, {}, 400, ["empty"]),
    ("/v2/models/nope/infer", "GOOD", {}, 404, ["Unknown model 'nope'", "churn"]),
    ("/v2/models/churn/infer", "GOOD", {"Content-Type": "text/plain"}, 415, ["Content-Type"]),
    ("/v2/models/churn/infer", "DROP radius", {}, 422, ["missing columns ['radius']"]),
    ("/v2/models/churn/infer", "ADD extra", {}, 422, ["unknown columns ['extra']"]),
    ("/v2/models/churn/infer", "TEXT", {}, 422, ["'radius' expects numbers", "'abc'"]),
    ("/v2/models/churn/infer", "NAN", {}, 422, ["missing values", "cannot take them"]),
    ("/v2/models/churn/infer", "SHAPE", {}, 400, ["shape [3]", "2 values"]),
    ("/v2/models/churn/infer", "EMPTYROWS", {}, 400, ["no rows"]),
    ("/v2/models/churn/infer", "BIG", {}, 413, ["at most"]),
    ("/v2/models/churn/infer", "DTYPE", {}, 400, ["datatype 'FLOAT'"]),
    ("/v2/models/churn/infer", "BADID", {}, 400, ["1 to 64 letters"]),
    ("/invocations", {"instances": [[1, 2, 3, 4, 5]]}, {"X-Request-ID": "a:b"}, 400, ["64"]),
    ("/invocations", {"nothing": 1}, {}, 400, ["exactly one of"]),
    ("/invocations", {"dataframe_records": []}, {}, 400, ["empty"]),
    (
        "/invocations",
        {"dataframe_split": {"columns": COLUMNS, "data": [[1, 2]]}},
        {},
        400,
        ["Row 0"],
    ),
    ("/invocations", b"a,b\n", {"Content-Type": "text/csv"}, 400, ["no rows"]),
    ("/invocations", b"x", {"Content-Type": "application/xml"}, 415, ["not supported"]),
    ("/invocations", {"instances": [{"radius": 1e400}]}, {}, 422, ["missing columns"]),
]


def _bad_body(kind, rows):
    import copy

    good = oip_body(rows)
    if kind == "GOOD":
        return good
    body = copy.deepcopy(good)
    tensors = body["inputs"]
    if kind == "DROP radius":
        body["inputs"] = tensors[1:]
    elif kind == "ADD extra":
        tensors.append({"name": "extra", "shape": [3], "datatype": "FP64", "data": [1, 2, 3]})
    elif kind == "TEXT":  # a valid BYTES tensor for a numeric column: the signature refuses
        tensors[0]["data"] = ["abc"] * len(tensors[0]["data"])
        tensors[0]["datatype"] = "BYTES"
    elif kind == "NAN":
        tensors[2]["data"][0] = None
    elif kind == "SHAPE":
        tensors[0]["data"] = [1, 2]
    elif kind == "EMPTYROWS":
        for t in tensors:
            t["shape"], t["data"] = [0], []
    elif kind == "BIG":
        tensors[0]["data"] = [1.0] * 3
        body["padding"] = "x" * 5000
    elif kind == "BADID":
        body["id"] = "ord:17"
    elif kind == "DTYPE":
        tensors[0]["datatype"] = "FLOAT"
    return body


def test_bad_requests_get_clear_errors_and_the_server_keeps_serving(churn):
    x, (model, _) = churn
    rows = x.iloc[:3]
    with serve(max_body_bytes=4096) as srv:
        c = Client(srv.port)
        for path, body, headers, status, words in BAD:
            if isinstance(body, str):
                body = _bad_body(body, rows)
            got, replied, out = c.post(path, body, headers=headers)
            message = out.get("error") or out.get("message") if isinstance(out, dict) else out
            assert got == status, (path, body if len(str(body)) < 300 else "...", out)
            assert len(replied["x-request-id"]) == 32  # every reply has one, errors too
            for word in words:
                assert word in message, (word, message)
            keys = {"error_code", "message"} if path == "/invocations" else {"error"}
            if "cannot take them" in message:  # the rows to leave out, for the client
                keys |= {"rows", "columns"}
                assert out["rows"] == [0] and out["columns"] == {"perimeter": [0]}
            assert set(out) == keys
        # infinity is never a number a model can take; a real row still predicts afterwards
        body = oip_body(rows)
        body["inputs"][0]["data"][0] = 1e400
        got, _, out = c.post("/v2/models/churn/infer", body)
        assert got == 422 and "finite" in out["error"]
        got, _, out = c.post("/v2/models/churn/infer", oip_body(rows))
        assert got == 200 and out["outputs"][0]["data"] == predictions(model, rows)
        assert c.get("/no/such/route")[0] == 404
        status, _, text = c.get("/metrics")
        c.close()
    assert status == 200
    assert 'mlops_requests_total{route="infer",status="422"}' in text
    assert 'mlops_requests_total{route="infer",status="413"}' in text
    assert 'mlops_requests_total{route="invocations",status="415"}' in text
    assert "mlops_request_latency_seconds_bucket" in text
    assert 'mlops_model_version{model="churn"} 1.0' in text
    # only the good requests were logged
    assert len(inference_log("churn")) == 3


def test_a_clean_stop_flushes_the_inference_log_and_feedback_joins_it(churn):
    x, (model, _) = churn
    with serve(flush_interval=3600) as srv:  # nothing is written until the server stops
        c = Client(srv.port)
        ids = []
        for i in range(25):
            status, _, out = c.post("/v2/models/churn/infer", oip_body(x.iloc[i : i + 1]))
            assert status == 200
            ids.append(out["id"])
        status, headers, _ = c.post(
            "/invocations", {"dataframe_records": x.iloc[:4].to_dict(orient="records")}
        )
        multi = headers["x-request-id"]
        assert srv.state.logger.written == 0
        # feedback for ids still in the buffer: the server flushes before looking them up
        status, _, out = c.post(
            "/v2/models/churn/feedback", {"request_ids": ids[:3], "labels": [1, 0, 1]}
        )
        assert status == 200 and out == {"stored": 3}
        status, _, out = c.post(
            "/v2/models/churn/feedback", {"request_ids": ["nope"], "labels": [1]}
        )
        assert status == 404 and "nope" in out["error"] and "nothing was stored" in out["error"]
        status, _, out = c.post(
            "/v2/models/churn/feedback", {"request_ids": ids[:2], "labels": [1]}
        )
        assert status == 400 and "one label per id" in out["error"]
        for i in range(25, 40):
            c.post("/v2/models/churn/infer", oip_body(x.iloc[i : i + 1]))
        c.close()
    log = inference_log("churn")
    assert len(log) == 40 + 4
    assert set(ids) <= set(log["request_id"])
    assert {f"{multi}:{i}" for i in range(4)} <= set(log["request_id"])
    first = log.set_index("request_id").loc[ids[0]]
    assert first["version"] == 1 and first["latency_ms"] > 0
    assert first["radius"] == pytest.approx(x.iloc[0]["radius"])
    assert first["predict"] == predictions(model, x.iloc[:1])[0]
    # feedback from Python, including a row of a multi-row request
    assert mlops.log_feedback([f"{multi}:2", ids[5]], [0, 1]) == 2
    with pytest.raises(NotFoundError, match="nothing was stored"):
        log_feedback(["missing-id"], [1])
    with pytest.raises(ValidationError, match="one label per id"):
        log_feedback(["a", "b"], [1])
    labels = feedback("churn")
    assert len(labels) == 5 and set(labels["request_id"]) == {*ids[:3], f"{multi}:2", ids[5]}


def test_retention_keeps_the_newest_entries(churn):
    x, _ = churn
    assert parse_retention("30d") == Retention(max_age_s=30 * 86400)
    assert parse_retention(1000) == Retention(max_rows=1000)
    with pytest.raises(ValidationError, match="7d or 2w, or a number of entries"):
        parse_retention("forever")
    with pytest.raises(ValidationError):
        parse_retention(-1)
    with serve(deployment_id="d-test", flush_interval=3600) as srv:
        srv.state.logger.compact_rows = 0  # keep one segment per flush
        c = Client(srv.port)
        for i in range(30):  # a segment per request, so that rows can be trimmed exactly
            c.post("/v2/models/churn/infer", oip_body(x.iloc[i : i + 1]))
            srv.state.logger.flush()
        c.close()
    store = current_store()
    assert len(inference_log("churn")) == 30
    assert trim(store, "d-test", Retention(max_rows=10)) == 20
    kept = inference_log("churn")
    assert len(kept) == 10 and kept["radius"].tolist() == x["radius"].iloc[20:30].tolist()
    assert trim(store, "d-test", Retention(max_age_s=60), now=time.time() + 3600) == 10
    assert inference_log("churn").empty


def test_a_token_guards_every_route_but_health(churn):
    x, _ = churn
    with serve(token_hash=hash_token("s3cret")) as srv:
        c = Client(srv.port)
        assert c.get("/v2/health/ready")[0] == 200 and c.get("/v2/health/live")[0] == 200
        for method, path, body in [
            ("POST", "/v2/models/churn/infer", oip_body(x.iloc[:1])),
            ("POST", "/invocations", {"instances": x.iloc[:1].to_dict(orient="records")}),
            ("GET", "/v2/models/churn", None),
            ("GET", "/metrics", None),
            ("POST", "/v2/models/churn/feedback", {"request_ids": ["a"], "labels": [1]}),
        ]:
            status, _, out = c.request(method, path, body)
            assert status == 401, (path, out)
            text = out.get("error") or out.get("message")
            assert "bearer token" in text
            wrong = {"Authorization": "Bearer nope"}
            assert c.request(method, path, body, headers=wrong)[0] == 401
        good = {"Authorization": "Bearer s3cret"}
        assert c.post("/v2/models/churn/infer", oip_body(x.iloc[:1]), headers=good)[0] == 200
        assert c.get("/metrics", headers=good)[0] == 200
        c.close()
    assert len(inference_log("churn")) == 1


def test_pipelines_that_select_columns_by_name_get_frames(store_dir):
    """A plain estimator is fed arrays (fast); a pipeline that selects columns by name, or
    takes text, keeps getting DataFrames, and both answer what the model answers."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from jupyter_mlops.serving.model import load_version

    from .serving_helpers import training_frame

    x, y = training_frame()
    x = x.assign(size=np.where(x["area"] > 600, "large", "small"))
    select = ColumnTransformer(
        [("num", StandardScaler(), ["texture", "radius"]), ("cat", OneHotEncoder(), ["size"])]
    )
    with mlops.track("pipeline") as run:
        pipe = make_pipeline(select, LogisticRegression(max_iter=2000)).fit(x, y)
    mlops.register(run.run_id, "piped")
    with mlops.track("plain") as run:
        plain = LogisticRegression(max_iter=2000).fit(x[COLUMNS], y)
    mlops.register(run.run_id, "plain")
    assert not load_version(mlops.get_model_version("piped")).schema.positional
    assert load_version(mlops.get_model_version("plain")).schema.positional

    rows = x.iloc[:6]
    with serve(reference="piped@latest") as srv:
        c = Client(srv.port)
        body = oip_body(rows[COLUMNS])
        body["inputs"].append(
            {"name": "size", "shape": [6], "datatype": "BYTES", "data": rows["size"].tolist()}
        )
        status, _, out = c.post("/v2/models/piped/infer", body)
        assert status == 200, out
        assert out["outputs"][0]["data"] == predictions(pipe, rows)
        body["inputs"][-1]["data"][0] = 3  # a BYTES tensor holds strings (the protocol)
        status, _, out = c.post("/v2/models/piped/infer", body)
        assert status == 400 and "BYTES, which holds strings" in out["error"]
        body["inputs"][-1].update(datatype="FP64", data=[3.0] * 6)  # numbers: the signature
        status, _, out = c.post("/v2/models/piped/infer", body)
        assert status == 422 and "'size' expects text" in out["error"]
        c.close()
    scored = mlops.predict_batch("plain", rows[COLUMNS], progress=False)
    assert scored["prediction"].tolist() == predictions(plain, rows[COLUMNS])
    assert list(scored.index) == list(rows.index)
