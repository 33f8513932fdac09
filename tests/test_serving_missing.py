"""Missing values are taken where the fitted model takes them (decided per column when it
is loaded), and refused where it cannot, naming every offending row, over real HTTP on
127.0.0.1; batch scoring refuses or skips the same rows. Nothing stored changes on a
refusal."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import jupyter_mlops as mlops
from jupyter_mlops.data import versions as data_versions
from jupyter_mlops.serving.app import ServeConfig, create_app
from jupyter_mlops.serving.inference_log import inference_log
from jupyter_mlops.serving.missing import missing_value_columns
from jupyter_mlops.serving.model import _trained_with, load_version
from jupyter_mlops.serving.signature import InputSchema, MissingValuesError
from jupyter_mlops.store import current_store, schema

from .serving_helpers import Client, ThreadServer


def customers(n: int = 2000, seed: int = 0, holes: bool = True) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame(
        {
            "age": rng.normal(40, 12, n).round(1),
            "income": rng.normal(50, 20, n).round(2),
            "plan": rng.choice(["basic", "plus", "pro"], n),
        }
    )
    y = pd.Series(((x["income"] > 50) ^ (x["plan"] == "pro")).astype(int), name="churned")
    if holes:  # the training data has missing values in age and plan, none in income
        x.loc[rng.random(n) < 0.1, "age"] = np.nan
        x.loc[rng.random(n) < 0.1, "plan"] = np.nan
    return x, y


def nan_pipeline():
    """The issue's model: Pipeline(ColumnTransformer(OneHotEncoder, StandardScaler), HGB)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    prep = ColumnTransformer(
        [("cat", OneHotEncoder(), ["plan"]), ("num", StandardScaler(), ["age", "income"])]
    )
    return Pipeline([("prep", prep), ("clf", HistGradientBoostingClassifier(max_iter=30))])


def oip(frame: pd.DataFrame, **extra) -> dict:
    def column(c):
        values = [None if pd.isna(v) else v for v in frame[c].tolist()]
        kind = "BYTES" if frame[c].dtype.kind not in "fiub" else "FP64"
        return {"name": c, "shape": [len(frame)], "datatype": kind, "data": values}

    return {"inputs": [column(c) for c in frame.columns], **extra}


def split(frame: pd.DataFrame) -> dict:
    rows = [[None if pd.isna(v) else v for v in row] for row in frame.itertuples(index=False)]
    return {"dataframe_split": {"columns": list(frame.columns), "data": rows}}


def served_rows() -> int:
    return len(inference_log("churn"))


def serve(reference: str) -> ThreadServer:
    return ThreadServer(create_app(ServeConfig(reference=reference, flush_interval=0.05)))


def test_the_issue_pipeline_trained_with_nan_predicts_rows_with_nan(store_dir):
    x, y = customers()
    with mlops.track("hgb") as run:
        model = nan_pipeline().fit(x, y)
    mv = mlops.register(run.run_id, "churn")
    assert mv.signature["trained_with_missing"] == ["age", "plan"]
    served = load_version(mv)
    assert served.schema.missing == {"age", "income", "plan"}  # HGB takes NaN anywhere

    batch, _ = customers(800, seed=7)
    batch.loc[[3, 50, 51], "income"] = np.nan  # none in training, but the model takes them
    assert batch.isna().any(axis=1).sum() > 100
    expected = model.predict(batch).tolist()
    one = batch[batch["age"].isna() & batch["plan"].isna()].head(1)
    with serve("churn@latest") as srv:
        c = Client(srv.port)
        status, _, meta = c.get("/v2/models/churn")
        assert meta["parameters"]["missing_values"] == ["age", "income", "plan"]
        status, _, out = c.post("/v2/models/churn/infer", oip(one))
        assert status == 200, out
        assert out["outputs"][0]["data"] == model.predict(one).tolist()
        status, _, out = c.post("/v2/models/churn/infer", oip(batch))
        assert status == 200, out
        assert out["outputs"][0]["data"] == expected
        status, _, out = c.post("/invocations", split(batch))
        assert status == 200 and out["predictions"] == expected
        csv = batch.to_csv(index=False)
        status, _, out = c.post("/invocations", csv, headers={"Content-Type": "text/csv"})
        assert status == 200 and out["predictions"] == expected
        c.close()
    assert served_rows() == 801 + 800 + 800
    scored = mlops.predict_batch("churn", batch, progress=False)
    assert scored["prediction"].tolist() == expected and scored.attrs["skipped"] == []


def test_a_model_that_cannot_take_nan_refuses_only_the_rows_naming_them(store_dir):
    from sklearn.linear_model import LogisticRegression

    x, y = customers(holes=False)
    numbers = x[["age", "income"]]
    with mlops.track("logreg") as run:
        model = LogisticRegression(max_iter=1000).fit(numbers, y)
    mlops.register(run.run_id, "churn")
    assert load_version(mlops.get_model_version("churn")).schema.missing == set()

    batch = customers(800, seed=3, holes=False)[0][["age", "income"]]
    batch.loc[[5, 77, 300], "age"] = np.nan
    batch.loc[12, "income"] = np.nan
    with serve("churn@latest") as srv:
        c = Client(srv.port)
        assert c.post("/v2/models/churn/infer", oip(batch.head(5)))[0] == 200  # no NaN there
        before = served_rows_when_flushed(srv, 5)
        status, headers, out = c.post("/v2/models/churn/infer", oip(batch, id="batch-1"))
        assert status == 422 and headers["x-request-id"] == "batch-1"
        assert out["rows"] == [5, 12, 77, 300]
        assert out["columns"] == {"age": [5, 77, 300], "income": [12]}
        assert "4 of 800 rows" in out["error"] and "rows [5, 77, 300]" in out["error"]
        assert "column 'income' in row 12" in out["error"]
        assert "the other 796 of 800 rows are fine" in out["error"]
        status, _, out = c.post("/invocations", split(batch))
        assert status == 422 and out["error_code"] == "BAD_REQUEST"
        assert out["rows"] == [5, 12, 77, 300] and "cannot take them" in out["message"]
        # the client leaves those rows out: the others predict as the model predicts them
        good = batch.drop(index=[5, 12, 77, 300])
        status, _, out = c.post("/v2/models/churn/infer", oip(good))
        assert status == 200 and out["outputs"][0]["data"] == model.predict(good).tolist()
        c.close()
    assert before == 5 and served_rows() == 5 + 796  # the refused requests logged nothing

    # batch scoring refuses the same rows by index label, and stores nothing
    datasets = data_versions.datasets()
    labelled = batch.set_axis(batch.index + 1000)
    with pytest.raises(MissingValuesError, match=r"labelled \[1005, 1077, 1300\]") as caught:
        mlops.predict_batch("churn", labelled, progress=False)
    assert "skip_missing=True" in str(caught.value) and caught.value.rows == [5, 12, 77, 300]
    assert inference_log("churn", kind="batch").empty
    assert data_versions.datasets().equals(datasets)
    # ... or, asked to, scores the others and leaves theirs missing
    scored = mlops.predict_batch("churn", labelled, skip_missing=True, progress=False)
    assert scored.attrs["skipped"] == [1005, 1012, 1077, 1300]
    assert list(scored.index) == list(labelled.index)
    assert scored["prediction"].isna().sum() == 4 and pd.isna(scored.loc[1005, "prediction"])
    kept = scored["prediction"].dropna()
    assert kept.astype(int).tolist() == model.predict(good).tolist()


def served_rows_when_flushed(srv: ThreadServer, want: int) -> int:
    """The inference log's rows once the server's writer has flushed ``want`` of them."""
    import time

    deadline = time.monotonic() + 10
    while served_rows() < want and time.monotonic() < deadline:
        srv.state.logger.flush()
    return served_rows()


def test_each_column_is_judged_by_the_steps_it_goes_through(store_dir):
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

    x, y = customers(holes=False)
    names = ["age", "income", "plan"]
    prep = ColumnTransformer(
        [
            ("age", make_pipeline(SimpleImputer(), StandardScaler()), ["age"]),
            ("income", StandardScaler(), ["income"]),  # NaN passes on to the LogisticRegression
            ("plan", OneHotEncoder(handle_unknown="ignore"), ["plan"]),
        ]
    )
    model = make_pipeline(prep, LogisticRegression(max_iter=1000)).fit(x, y)
    assert missing_value_columns(model, names) == {"age", "plan"}
    strict = ColumnTransformer([("plan", OneHotEncoder(), ["plan"])], remainder="passthrough")
    model = make_pipeline(strict, LogisticRegression(max_iter=1000)).fit(x, y)
    assert missing_value_columns(model, names) == set()
    imputed = make_pipeline(SimpleImputer(), LogisticRegression(max_iter=1000))
    assert missing_value_columns(imputed.fit(x[["age", "income"]], y), ["age", "income"]) == {
        "age",
        "income",
    }
    ordinal = ColumnTransformer(
        [("plan", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1), ["plan"])],
        remainder="drop",
    )
    model = make_pipeline(ordinal, LogisticRegression(max_iter=1000)).fit(x, y)
    assert missing_value_columns(model, names) == {"age", "income", "plan"}  # age, income unused

    # a column the model was fitted with missing values in takes them, whatever its steps say
    plain = LogisticRegression(max_iter=1000).fit(x[["age", "income"]], y)
    signature = {
        "inputs": [{"name": "age", "dtype": "float64"}, {"name": "income", "dtype": "float64"}],
        "input_kind": "dataframe",
        "trained_with_missing": ["income"],
    }
    assert InputSchema.from_signature(signature, plain).missing == {"income"}


def test_versions_registered_before_the_record_read_their_training_statistics(store_dir):
    """A store written before signatures recorded ``trained_with_missing``: the training
    data version's statistics say which columns had missing values."""
    x, y = customers()
    with mlops.track("hgb") as run:
        model = nan_pipeline().fit(x, y)
    mlops.register(run.run_id, "churn")
    assert model is not None
    store = current_store()
    mvt = schema.model_versions
    with store.read() as conn:
        text = conn.execute(mvt.select()).one().signature
    old = json.loads(text)
    old.pop("trained_with_missing")
    with store.write() as conn:
        conn.execute(mvt.update().values(signature=json.dumps(old)))
    mv = mlops.get_model_version("churn")
    assert "trained_with_missing" not in mv.signature
    assert _trained_with(mv) == {"age", "plan"}
