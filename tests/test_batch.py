"""Batch scoring: a DataFrame in, predictions out, logged as data versions."""

from __future__ import annotations

import numpy as np
import pytest

import jupyter_mlops as mlops
from jupyter_mlops.errors import NotFoundError, ValidationError
from jupyter_mlops.serving.signature import SignatureError

from .serving_helpers import COLUMNS, predictions, register_churn


def test_predict_batch_scores_logs_and_dedupes(store_dir):
    x, (model,) = register_churn(1)
    frame = x.sample(frac=1.0, random_state=0)  # a shuffled index is kept as is
    ticks = []

    class Bar:
        def __init__(self, total):
            ticks.append(("total", total))

        def update(self, n):
            ticks.append(("update", n))

        def close(self):
            ticks.append(("close", 0))

    scored = mlops.predict_batch("churn@production", frame, proba=True, chunk_size=200)
    assert list(scored.index) == list(frame.index)
    assert scored["prediction"].tolist() == predictions(model, frame)
    assert np.allclose(scored[["proba_0", "proba_1"]], model.predict_proba(frame))
    assert scored.attrs["model_version"] == "churn@1"
    assert scored.attrs["input_version"] == "inference/churn/inputs@v1"
    assert scored.attrs["output_version"] == "inference/churn/predictions@v1"

    from jupyter_mlops.serving.batch import predict_batch

    again = predict_batch("churn@production", frame, chunk_size=250, proba=True, progress=Bar)
    assert ticks == [
        ("total", len(frame)),
        ("update", 250),
        ("update", 250),
        ("update", 69),
        ("close", 0),
    ]
    assert again.attrs["input_version"] == "inference/churn/inputs@v1"  # same data, no new version
    log = mlops.inference_log("churn", kind="batch")
    assert len(log) == 2 and list(log["rows"]) == [len(frame)] * 2
    assert log["request_id"].str.startswith("batch-").all()
    history = mlops.data_history("inference/churn/inputs")
    assert len(history) == 1

    # a one-row Series and a model by bare name
    one = mlops.predict_batch("churn", frame.iloc[0], log=False)
    assert one["prediction"].tolist() == predictions(model, frame.iloc[:1])


def test_bad_batches_are_refused_and_nothing_is_logged(store_dir):
    x, _ = register_churn(1)
    with pytest.raises(SignatureError, match=r"missing columns \['radius'\]"):
        mlops.predict_batch("churn", x.drop(columns="radius"))
    with pytest.raises(SignatureError, match="'texture' expects numbers"):
        mlops.predict_batch("churn", x.assign(texture="high"))
    bad = x.copy()
    bad.iloc[3, 1] = np.nan
    with pytest.raises(SignatureError, match=r"'texture' has missing values .* in row 3"):
        mlops.predict_batch("churn", bad)
    with pytest.raises(ValidationError, match="no rows"):
        mlops.predict_batch("churn", x.iloc[:0])
    with pytest.raises(ValidationError, match="DataFrame"):
        mlops.predict_batch("churn", [[1, 2, 3, 4, 5]])
    assert mlops.inference_log("churn", kind=None).empty
    assert [c for c in COLUMNS if c not in x.columns] == []


def test_batch_input_is_recorded_by_hash_schema_and_stats_and_snapshot_stores_rows(store_dir):
    """Default: input and predictions recorded (content hash, schema, statistics) without
    their rows; snapshot=True stores the rows, under the version already recorded."""
    from jupyter_mlops.data.fingerprint import content_hash
    from jupyter_mlops.data.stats import column_stats
    from jupyter_mlops.data.versions import resolve

    x, (model,) = register_churn(1)
    frame = x.iloc[:300]
    scored = mlops.predict_batch("churn@production", frame, progress=False)
    assert scored["prediction"].tolist() == predictions(model, frame)
    recorded = resolve(scored.attrs["input_version"])
    assert recorded.ref == "inference/churn/inputs@v1"
    assert recorded.content_hash == content_hash(frame)
    assert recorded.shape == frame.shape
    assert [c for c, _ in recorded.schema] == list(frame.columns)
    assert recorded.stats == {c["name"]: c for c in column_stats(frame)["columns"]}
    assert recorded.stats["radius"]["mean"] == pytest.approx(frame["radius"].mean())
    assert not recorded.rows_stored
    assert recorded.new_bytes < 1000  # a small manifest, no chunks
    out = resolve(scored.attrs["output_version"])
    assert not out.rows_stored and out.n_rows == len(frame)
    assert out.content_hash == content_hash(scored)
    with pytest.raises(NotFoundError, match=r"rows were not stored.*snapshot=True"):
        mlops.load_data(recorded.ref)

    # the same frame with snapshot=True: the same version, now with its rows
    full = mlops.predict_batch("churn@production", frame, snapshot=True, progress=False)
    assert full.attrs["input_version"] == recorded.ref
    assert full.attrs["output_version"] == out.ref
    stored = resolve(recorded.ref)
    assert stored.rows_stored and stored.content_hash == recorded.content_hash
    assert mlops.load_data(recorded.ref).equals(frame)
    assert mlops.load_data(out.ref).equals(full[["prediction"]])
    # recording it again keeps the stored rows; new data recorded without rows is v2
    mlops.predict_batch("churn@production", frame, progress=False)
    assert mlops.load_data(recorded.ref).equals(frame)
    other = mlops.predict_batch("churn@production", x.iloc[300:], progress=False)
    assert other.attrs["input_version"] == "inference/churn/inputs@v2"
    assert not resolve("inference/churn/inputs@v2").rows_stored
    assert len(mlops.inference_log("churn", kind="batch")) == 4

    # a recorded version is compared by schema and statistics, and gc/doctor accept it
    from jupyter_mlops.data.diff import data_diff

    diff = data_diff("inference/churn/inputs@v1", "inference/churn/inputs@v2")
    assert diff.match == "statistics" and diff.rows["added"] is None
    assert diff.rows["a"] == 300 and diff.rows["b"] == len(x) - 300
    assert "rows not stored" in diff._repr_html_()
    from jupyter_mlops.maintenance import check_store, collect_garbage
    from jupyter_mlops.store import current_store

    store = current_store()
    collect_garbage(store, grace_s=0)
    report = check_store(store)
    assert report.ok, report.lines()
    assert mlops.load_data(recorded.ref).equals(frame)  # gc kept the stored rows
