"""Units of the serving path that a review found fragile: input coercion, request ids,
CSV text, log columns, retention scope, and the final flush when the store is locked."""

from __future__ import annotations

import sqlite3
import time

import numpy as np
import pytest

from jupyter_mlops.errors import ValidationError
from jupyter_mlops.registry.references import check_model_name
from jupyter_mlops.serving.inference_log import InferenceLogger, Retention, inference_log, trim
from jupyter_mlops.serving.protocols import check_request_id, csv_columns
from jupyter_mlops.serving.signature import Column, InputSchema, SignatureError
from jupyter_mlops.store import current_store


def schema_of(missing: tuple[str, ...] = (), **kinds: str) -> InputSchema:
    dtypes = {"float": "float64", "int": "int64", "bool": "bool", "text": "object"}
    return InputSchema(
        [Column(n, dtypes[k], k) for n, k in kinds.items()],
        allow_nan=False,
        ndarray=False,
        missing=missing,
    )


def test_integers_floats_and_text_are_checked_exactly():
    s = schema_of(qty="int", price="float", city="text", member="bool", missing=("city",))
    frame = s.frame({"qty": [3, 4.0], "price": [1, 2.5], "city": ["a", None], "member": [1, False]})
    assert frame["qty"].dtype == np.int64 and frame["qty"].tolist() == [3, 4]
    assert frame["price"].tolist() == [1.0, 2.5] and frame["member"].tolist() == [True, False]
    assert frame["city"].iloc[0] == "a" and frame["city"].isna().iloc[1]
    bad = [
        ({"qty": [10**30]}, "within the 64-bit range"),
        ({"qty": [1.5]}, "expects integers"),
        ({"qty": [None]}, "cannot take them"),
        ({"qty": ["3"]}, "expects numbers"),
        ({"price": [10**400]}, "finite numbers"),
        ({"price": [float("inf")]}, "finite numbers"),
        ({"price": [float("nan")]}, "cannot take them"),
        ({"city": [5]}, "expects text"),
        ({"member": [2]}, "true or false"),
    ]
    good = {"qty": [1], "price": [1.0], "city": ["a"], "member": [True]}
    for change, words in bad:
        with pytest.raises(SignatureError, match=words):
            s.frame({**good, **change})
    # a column that takes missing values: nulls in int and bool columns become NaN
    takes = schema_of(qty="int", member="bool", missing=("qty", "member"))
    frame = takes.frame({"qty": [3, None], "member": [None, True]})
    assert frame["qty"].tolist()[0] == 3.0 and np.isnan(frame["qty"].iloc[1])
    assert np.isnan(frame["member"].iloc[0]) and frame["member"].iloc[1] == 1.0


def test_missing_values_are_refused_naming_every_row_and_column():
    from jupyter_mlops.serving.signature import MissingValuesError

    s = schema_of(a="float", b="text", c="int", d="float", missing=("d",))
    columns = {
        "a": [1.0, None, 3.0, float("nan"), 5.0],
        "b": ["x", "y", None, "z", "w"],
        "c": [1, 2, 3, 4, 5],
        "d": [None, None, 1.0, 2.0, 3.0],  # takes them: never named
    }
    with pytest.raises(MissingValuesError) as caught:
        s.frame(columns)
    err = caught.value
    assert err.rows == [1, 2, 3] and err.columns == {"a": [1, 3], "b": [2]} and err.total == 5
    text = str(err)
    assert "3 of 5 rows" in text and "column 'a' in rows [1, 3]" in text
    assert "column 'b' in row 2" in text and "'d'" not in text
    assert "the other 2 of 5 rows are fine" in text
    # a frame (batch scoring) names the rows by their index labels
    import pandas as pd

    frame = pd.DataFrame(columns, index=[10, 11, 12, 13, 14])
    with pytest.raises(MissingValuesError) as caught:
        s.check_frame(frame)
    assert caught.value.rows == [1, 2, 3] and "labelled [11, 13]" in str(caught.value)


def test_request_ids_and_model_names_are_strict():
    assert check_request_id("order-17.a_b", "id") == "order-17.a_b"
    for bad in ["ord:17", "a b", "x\r\nSet-Cookie: y", "é", "", "x" * 65, 17]:
        with pytest.raises(ValidationError, match="1 to 64 letters"):
            check_request_id(bad, "id")
    with pytest.raises(ValidationError):
        check_model_name("churn\n")


def test_csv_keeps_text_as_written():
    s = schema_of(zip="text", amount="float")
    frame = csv_columns(b"zip,amount\n02134,1.5\nNA,\n", s)
    assert frame["zip"].tolist() == ["02134", "NA"]
    assert frame["amount"].iloc[0] == 1.5 and np.isnan(frame["amount"].iloc[1])


def test_log_columns_survive_features_named_like_them(store_dir):
    store = current_store()
    logger = InferenceLogger(store, deployment_id="d-x")
    logger.add("r1", "m", 1, 1, {"time": [0.5], "predict": [9]}, {"predict": np.array([1])}, 2.0)
    logger.flush()
    log = inference_log("m")
    assert log.loc[0, "input.time"] == 0.5 and log.loc[0, "input.predict"] == 9
    assert log.loc[0, "predict"] == 1
    assert abs(log.loc[0, "time"].timestamp() - time.time()) < 60


def test_retention_never_touches_other_deployments_or_batches(store_dir):
    store = current_store()
    for dep in ("d-a", "d-b", None):
        logger = InferenceLogger(store, deployment_id=dep)
        logger.compact_rows = 0
        for i in range(3):  # one segment per flush
            logger.add(f"{dep}-{i}", "m", 1, 1, {"x": [i]}, {"predict": np.array([0])}, 1.0)
            logger.flush()
        logger.close()
    with pytest.raises(ValidationError, match="one deployment"):
        trim(store, None, Retention(max_rows=1))
    assert trim(store, "d-a", Retention(max_rows=1)) == 2
    ids = set(inference_log("m")["request_id"])
    assert ids == {"d-a-2", "d-b-0", "d-b-1", "d-b-2", "None-0", "None-1", "None-2"}


def test_a_stop_while_the_store_is_locked_saves_the_log_to_a_file(store_dir, monkeypatch):
    monkeypatch.setenv("MLOPS_BUSY_TIMEOUT", "0.1")
    store = current_store()
    logger = InferenceLogger(store, deployment_id="d-locked", flush_interval=3600)
    logger.add("warm", "m", 1, 1, {"x": [0]}, {"predict": np.array([0])}, 1.0)
    logger.flush()  # creates the tables
    for i in range(5):
        logger.add(f"r{i}", "m", 1, 1, {"x": [i]}, {"predict": np.array([0])}, 1.0)
    blocker = sqlite3.connect(store_dir / "mlops.db", timeout=0.1)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        message = logger.close(timeout=0.5)
    finally:
        blocker.rollback()
        blocker.close()
    assert "5 could not be written" in message and "unwritten-d-locked" in message
    saved = next((store_dir / "serving").glob("unwritten-d-locked-*.jsonl")).read_text()
    assert len(saved.splitlines()) == 5 and '"request_id": "r0"' in saved
    assert list(inference_log("m")["request_id"]) == ["warm"]


def test_segments_stack_numeric_rows_and_keep_text(store_dir):
    from jupyter_mlops.serving.segments import NumericRows, build_tables, read_table, write_table

    arr = np.arange(12, dtype=np.float64).reshape(4, 3)
    batch = [
        (
            "r1",
            "m",
            1,
            10.0,
            4,
            NumericRows(["a", "b", "c"], arr),
            {"predict": np.array([0, 1, 1, 0]), "predict_proba": np.full((4, 2), 0.5)},
            2.0,
        ),
        (
            "r2",
            "m",
            2,
            11.0,
            1,
            NumericRows(["a", "b", "c"], arr[:1]),
            {"predict": np.array([1]), "predict_proba": np.full((1, 2), 0.25)},
            1.0,
        ),
        (
            "r3",
            "m",
            2,
            12.0,
            2,
            {"city": ["a", None], "n": [1, "x"]},
            {"predict": np.array(["yes", "no"], dtype=object)},
            3.0,
        ),
    ]
    numeric, text = build_tables(batch)
    back = read_table(write_table(numeric)).to_pandas()
    assert list(back["request_id"]) == ["r1:0", "r1:1", "r1:2", "r1:3", "r2"]
    assert back["b"].tolist() == [1.0, 4.0, 7.0, 10.0, 1.0]
    assert back["version"].tolist() == [1, 1, 1, 1, 2]
    assert back["predict"].tolist() == [0, 1, 1, 0, 1]
    assert [list(p) for p in back["predict_proba"]] == [[0.5, 0.5]] * 4 + [[0.25, 0.25]]
    other = read_table(write_table(text)).to_pandas()
    assert other["city"].iloc[0] == "a" and other["city"].isna().tolist() == [False, True]
    assert other["n"].tolist() == ["1", "x"]  # mixed types are kept as text
    assert other["predict"].tolist() == ["yes", "no"]


def test_a_writer_that_falls_behind_slows_clients_instead_of_growing(store_dir):
    from jupyter_mlops.serving.segments import NumericRows

    store = current_store()
    logger = InferenceLogger(store, deployment_id="d-bp", flush_interval=3600, max_pending_rows=150)
    logger.start()
    started = time.monotonic()
    rows = np.ones((100, 3))
    for i in range(6):
        logger.add(f"r{i}", "m", 1, 100, NumericRows(["a", "b", "c"], rows), {}, 1.0)
        assert logger.pending <= 2  # the add waited for the writer once the limit was hit
    assert time.monotonic() - started < 10
    logger.close()
    assert logger.written == 6 and len(inference_log("m")) == 600


def test_small_flushes_extend_one_segment(store_dir):
    import sqlalchemy as sa

    from jupyter_mlops.store import schema

    store = current_store()
    logger = InferenceLogger(store, deployment_id="d-c")
    logger.compact_rows = 10
    for i in range(25):
        logger.add(f"r{i}", "m", 1, 1, {"x": [i]}, {"predict": np.array([i])}, 1.0)
        logger.flush()
    logger.close()
    with store.read() as conn:
        sizes = [
            r.rows
            for r in conn.execute(
                sa.select(schema.inference_segments.c.rows).order_by(
                    schema.inference_segments.c.segment_id
                )
            )
        ]
    assert sizes == [10, 10, 5]  # not 25 one-row segments
    log = inference_log("m")
    assert log["request_id"].tolist() == [f"r{i}" for i in range(25)]
    assert log["predict"].tolist() == list(range(25))
    from jupyter_mlops.maintenance import collect_garbage

    report = collect_garbage(store, grace_s=0.0)
    assert report.removed == 0  # replaced segments' objects went with them; the live ones stay
    assert len(inference_log("m")) == 25


def test_json_bodies_parse_exactly_as_the_standard_parser_does():
    """orjson (the fast path) turns integers beyond 64 bits into floats and refuses what
    json.loads accepts; every body must still parse to what json.loads gives."""
    import json

    from jupyter_mlops.serving.protocols import exceeds_json_depth, parse_json

    bodies = [
        b'{"inputs": [{"name": "a", "shape": [1], "datatype": "INT64", '
        b'"data": [-9223372036854775809]}]}',
        b"[123456789012345678901234567890, 18446744073709551616, 1e400, -1e400, NaN]",
        b'{"dataframe_split": {"columns": ["a"], "data": [[0.0072113596587564995], '
        b"[1e-400], [-0.0], [2.2250738585072014e-308], [1234567890123456789.5]]}}",
        b'\xef\xbb\xbf{"a": 1}',
        b'{"s": "\\ud800 [ { \\" ]", "a": 1, "a": 2}',
        '{"é": "ü"}'.encode("utf-16"),
    ]
    for body in bodies:
        got, want = parse_json(body), json.loads(body)
        assert repr(got) == repr(want), body
        assert json.dumps(got) == json.dumps(want)
    # depth: brackets inside strings (escaped quotes and backslashes too) are text
    assert not exceeds_json_depth(
        b'{"a": "' + b"[" * 500 + b'\\\\", "b": ["\\"' + b"{" * 200 + b'"]}'
    )
    assert exceeds_json_depth(b'{"a": "\\\\"' + b", " + b"[" * 101 + b"]" * 101 + b"}")
    assert not exceeds_json_depth(b"[" * 100 + b"]" * 100)
    assert exceeds_json_depth(b'"x",' + b"[" * 101)


def test_positional_float_rows_are_converted_at_once_with_the_same_checks():
    """An all-float model fitted on a frame gets one float64 matrix; anything but plain
    finite numbers is checked value by value with the usual messages."""
    s = InputSchema(
        [Column("a", "float64", "float"), Column("b", "float64", "float")],
        allow_nan=False,
        ndarray=False,
    )
    s.positional = True
    matrix = s.frame({"b": [3, 4.5], "a": [1.25, -2]})
    assert matrix.dtype == np.float64 and matrix.tolist() == [[1.25, 3.0], [-2.0, 4.5]]
    assert s.frame({"a": [True], "b": [1]}).tolist() == [[1.0, 1.0]]  # booleans as before
    for change, words in [
        ({"a": [10**400]}, "finite numbers"),
        ({"a": [None]}, "cannot take them"),
        ({"a": [float("nan")]}, "cannot take them"),
        ({"a": [float("-inf")]}, "finite numbers"),
        ({"a": ["1.5"]}, "expects numbers"),
        ({"a": [[1.0]]}, "expects numbers"),
    ]:
        with pytest.raises(SignatureError, match=words):
            s.frame({"a": [1.0], "b": [2.0], **change})


def test_a_flush_never_rewrites_a_large_tail(store_dir):
    """Every flush used to rewrite the previous segment up to 50,000 rows (read, merge,
    write: ~40 ms once a second at 1,000 requests/s, which slowed the requests served
    meanwhile); a tail is extended only while it is under MERGE_ROWS."""
    import sqlalchemy as sa

    from jupyter_mlops.serving.inference_log import MERGE_ROWS, write_segments
    from jupyter_mlops.serving.segments import NumericRows
    from jupyter_mlops.store import schema

    store = current_store()
    assert MERGE_ROWS == 5_000
    tail = None
    rows = np.ones((1, 3))
    for flush in range(7):  # 1,000 one-row requests per flush
        batch = [
            (f"r{flush}-{i}", "m", 1, time.time(), 1, NumericRows(["a", "b", "c"], rows), {}, 1.0)
            for i in range(1000)
        ]
        tail = write_segments(store, "d-big", batch, tail)
    small = [("s0", "m", 1, time.time(), 1, NumericRows(["a", "b", "c"], rows), {}, 1.0)]
    tail = write_segments(store, "d-big", small, tail)  # extends the small last segment
    with store.read() as conn:
        sizes = [
            r.rows
            for r in conn.execute(
                sa.select(schema.inference_segments.c.rows).order_by(
                    schema.inference_segments.c.segment_id
                )
            )
        ]
    assert sizes == [6000, 1001]
    assert len(inference_log("m")) == 7001
