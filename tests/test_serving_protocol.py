"""The Open Inference Protocol's rules, enforced over real HTTP on 127.0.0.1: every
datatype's range, shapes that match the data (no ragged rows, no negative or absurd
sizes), and a JSON nesting limit that answers 400 instead of a RecursionError.

Each bad request gets a 400 naming the tensor and the rule, nothing reaches the
inference log, and the server keeps predicting afterwards.
"""

from __future__ import annotations

import copy
import json

import pytest

from jupyter_mlops.serving.app import ServeConfig, create_app
from jupyter_mlops.serving.inference_log import inference_log
from jupyter_mlops.serving.protocols import MAX_JSON_DEPTH

from .serving_helpers import COLUMNS, Client, ThreadServer, oip_body, predictions, register_churn


@pytest.fixture
def churn(store_dir):
    return register_churn(1)


def serve(**config):
    config.setdefault("reference", "churn@production")
    return ThreadServer(create_app(ServeConfig(**config)))


def _column(body, datatype, data):
    """``body`` with its first tensor (radius, 3 rows) holding ``data`` as ``datatype``."""
    body = copy.deepcopy(body)
    body["inputs"][0].update(datatype=datatype, data=data, shape=[len(data)])
    return body


def _table(shape, data, datatype="FP64"):
    return {"inputs": [{"name": "input-0", "shape": shape, "datatype": datatype, "data": data}]}


# (datatype, data for the 3 rows of radius, words the 400 must say)
OUT_OF_RANGE = [
    ("INT8", [1, 100000, 2], ["INT8", "-128 to 127", "data[1]", "100000"]),
    ("INT8", [-129, 0, 0], ["INT8", "-128 to 127", "-129"]),
    ("INT16", [1, 2, 40000], ["INT16", "-32768 to 32767", "40000"]),
    ("INT32", [2**31, 1, 2], ["INT32", str(2**31)]),
    ("INT64", [2**63, 1, 2], ["INT64", str(2**63)]),
    ("UINT8", [-1, 1, 2], ["UINT8", "0 to 255", "-1"]),
    ("UINT8", [256, 1, 2], ["UINT8", "256"]),
    ("UINT16", [65536, 1, 2], ["UINT16", "0 to 65535"]),
    ("UINT32", [2**32, 1, 2], ["UINT32", str(2**32)]),
    ("UINT64", [2**64, 1, 2], ["UINT64", str(2**64)]),
    ("INT32", [1, 1.5, 2], ["INT32", "integers", "1.5"]),
    ("INT64", [1, "2", 3], ["INT64", "integers", "'2'", "a string"]),
    ("INT64", [1, True, 3], ["INT64", "true", "a boolean"]),
    ("FP16", [1.0, 70000.0, 2.0], ["FP16", "65504", "70000"]),
    ("FP32", [1.0, 1e39, 2.0], ["FP32", "3.4028", "1e+39"]),
    ("FP64", [1.0, 10**400, 2.0], ["FP64", "1.7977e+308"]),
    ("FP64", [1.0, "abc", 2.0], ["FP64", "numbers", "'abc'", "a string"]),
    ("FP64", [1.0, False, 2.0], ["FP64", "numbers", "a boolean"]),
    ("FP64", [1.0, {"a": 1}, 2.0], ["FP64", "an object"]),
    ("BOOL", [True, 1, False], ["BOOL", "true or false", "data[1]"]),
    ("BYTES", ["a", 1.5, "b"], ["BYTES", "strings", "1.5"]),
]

# (body, words the 400 must say)
BAD_SHAPES = [
    # ragged rows under a declared shape were silently flattened before
    (_table([3, 5], [[1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11], [12, 13, 14, 15]]), ["ragged"]),
    (_table([2, 5], [[1, 2, 3, 4, 5], [6, 7, 8, 9], 10]), ["ragged", "mixes lists and values"]),
    (_table([5, 3], [[1, 2, 3, 4, 5]] * 3), ["nested as [3, 5]", "shape is [5, 3]"]),
    (_table([3, 5], [[1, 2, 3, 4, 5]] * 2), ["nested as [2, 5]"]),
    (_table([2**60 + 2], [1.0]), [str(2**60 + 2), "1 value"]),
    (_table([2**4, 2**60 + 2], [1.0]), [str(2**64 + 32)]),
    (_table([-1], [1.0]), ["shape [-1]", "sizes"]),
    (_table([2, -5], [1.0]), ["shape [2, -5]"]),
    (_table([True], [1.0]), ["shape [true]"]),
    (_table([], [1.0]), ["shape []"]),
    (_table([1, 1, 5], [[[1, 2, 3, 4, 5]]]), ["3 dimensions", "at most 2"]),
    (_table(list(range(1, 10**5)), [1.0]), ["dimensions"]),
]


def test_datatypes_shapes_and_ragged_data_are_refused_as_the_protocol_says(churn):
    x, (model,) = churn
    rows = x.iloc[:3]
    good = oip_body(rows)
    with serve() as srv:
        c = Client(srv.port)
        for datatype, data, words in OUT_OF_RANGE:
            status, _, out = c.post("/v2/models/churn/infer", _column(good, datatype, data))
            assert status == 400, (datatype, data, out)
            assert set(out) == {"error"}
            assert "inputs[0] (radius)" in out["error"], out
            for word in words:
                assert word in out["error"], (word, out["error"])
        for body, words in BAD_SHAPES:
            status, _, out = c.post("/v2/models/churn/infer", body)
            shown = json.dumps(body)[:200]
            assert status == 400, (shown, out)
            for word in words:
                assert word in out["error"], (word, out["error"], shown)

        # the bounds themselves are accepted, and so are integral numbers in an INT tensor
        expected = predictions(model, rows)
        for datatype, data in [
            ("INT8", [-128, 127, 0]),
            ("UINT8", [0, 255, 7]),
            ("INT64", [2**63 - 1, -(2**63), 3.0]),
            ("UINT64", [2**64 - 1, 0, 1]),
            ("FP16", [65504.0, -65504, 1]),
            ("FP32", [3.4e38, 1, 2.5]),
            ("BOOL", [True, False, True]),
        ]:
            status, _, out = c.post("/v2/models/churn/infer", _column(good, datatype, data))
            assert status == 200, (datatype, out)
        # a nested 2-D tensor whose rows match the shape, and the original request
        table = _table([3, 5], rows.to_numpy().tolist())
        assert c.post("/v2/models/churn/infer", table)[2]["outputs"][0]["data"] == expected
        status, _, out = c.post("/v2/models/churn/infer", good)
        assert status == 200 and out["outputs"][0]["data"] == expected
        c.close()
    assert len(inference_log("churn")) == 3 * (7 + 2)  # only the good requests, 3 rows each


def _deep(depth: int) -> bytes:
    return b"[" * depth + b"1" + b"]" * depth


def test_deeply_nested_json_is_a_400_that_states_the_limit(churn):
    """100,000 nested arrays made json.loads raise RecursionError (a 500); every JSON
    route now refuses more than MAX_JSON_DEPTH levels before parsing."""
    x, (model,) = churn
    assert MAX_JSON_DEPTH == 100
    rows = x.iloc[:2]
    with serve() as srv:
        c = Client(srv.port)
        infer_deep = (
            b'{"inputs": [{"name": "radius", "shape": [1], "datatype": "FP64", "data": '
            + _deep(100_000)
            + b"}]}"
        )
        for path, body in [
            ("/v2/models/churn/infer", _deep(100_000)),
            ("/v2/models/churn/infer", infer_deep),
            ("/v2/models/churn/infer", b"[" * 100_000),  # never closed
            ("/v2/models/churn/infer", b'{"a":' * 101 + b"1" + b"}" * 101),
            ("/invocations", b'{"instances": ' + _deep(100_000) + b"}"),
            ("/v2/models/churn/feedback", b'{"request_ids": ' + _deep(100_000) + b"}"),
        ]:
            headers = {"Content-Type": "application/json"}
            status, _, out = c.post(path, body, headers=headers)
            assert status == 400, (path, body[:60], out)
            text = out.get("error") or out.get("message")
            assert "nesting depth" in text and "100" in text, text
        # the limit itself parses (and then fails on what it is, not on its depth)
        status, _, out = c.post("/v2/models/churn/infer", _deep(MAX_JSON_DEPTH), headers=headers)
        assert status == 400 and "nesting" not in out["error"] and '"inputs" list' in out["error"]
        status, _, out = c.post(
            "/v2/models/churn/infer", _deep(MAX_JSON_DEPTH + 1), headers=headers
        )
        assert status == 400 and "nesting depth" in out["error"]
        # brackets inside strings, escaped quotes included, are text, not nesting
        body = oip_body(rows, parameters={"note": '\\"' + "[" * 5000, "other": "]" * 300})
        status, _, out = c.post("/v2/models/churn/infer", body)
        assert status == 200, out
        assert out["outputs"][0]["data"] == predictions(model, rows)
        c.close()
    assert len(inference_log("churn")) == 2  # the one good request, 2 rows


def test_large_requests_pass_the_checks_and_predict(churn):
    """A 20,000-row request, per column and as one nested 2-D tensor, still predicts (the
    checks work level by level on lists, whatever their size)."""
    x, (model,) = churn
    rows = x.sample(20_000, replace=True, random_state=0)
    with serve(max_body_bytes=64 * 1024 * 1024) as srv:
        c = Client(srv.port)
        status, _, out = c.post("/v2/models/churn/infer", oip_body(rows))
        assert status == 200 and out["outputs"][0]["data"] == predictions(model, rows)
        table = _table([len(rows), len(COLUMNS)], rows.to_numpy().tolist())
        status, _, out = c.post("/v2/models/churn/infer", table)
        assert status == 200 and out["outputs"][0]["data"] == predictions(model, rows)
        c.close()


def test_only_utf8_json_is_read(churn):
    """Bodies are read as UTF-8: another charset is a 415 on both protocols, and so is an
    unknown Content-Type parameter on /invocations (as MLflow's scoring server answers)."""
    x, (model,) = churn
    rows = x.iloc[:2]
    records = {"dataframe_records": rows.to_dict(orient="records")}
    with serve() as srv:
        c = Client(srv.port)
        latin = {"Content-Type": "application/json; charset=latin-1"}
        status, _, out = c.post("/v2/models/churn/infer", oip_body(rows), headers=latin)
        assert status == 415 and "charset=latin-1" in out["error"]
        status, _, out = c.post("/invocations", records, headers=latin)
        assert status == 415 and "UTF-8" in out["message"]
        odd = {"Content-Type": "application/json; boundary=x"}
        status, _, out = c.post("/invocations", records, headers=odd)
        assert status == 415 and "['boundary']" in out["message"]
        utf8 = {"Content-Type": 'application/json; charset="utf-8"'}
        assert c.post("/v2/models/churn/infer", oip_body(rows), headers=utf8)[0] == 200
        status, _, out = c.post("/invocations", records, headers=utf8)
        assert status == 200 and out["predictions"] == predictions(model, rows)
        c.close()
