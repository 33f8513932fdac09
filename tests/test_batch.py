"""Batch scoring: a DataFrame in, predictions out, logged as data versions."""

from __future__ import annotations

import numpy as np
import pytest

import jupyter_mlops as mlops
from jupyter_mlops.errors import ValidationError
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
    assert mlops.load_data("inference/churn/inputs@v1").equals(frame)

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
    with pytest.raises(SignatureError, match=r"rows \[3\]"):
        mlops.predict_batch("churn", bad)
    with pytest.raises(ValidationError, match="no rows"):
        mlops.predict_batch("churn", x.iloc[:0])
    with pytest.raises(ValidationError, match="DataFrame"):
        mlops.predict_batch("churn", [[1, 2, 3, 4, 5]])
    assert mlops.inference_log("churn", kind=None).empty
    assert [c for c in COLUMNS if c not in x.columns] == []
