"""Monitors over the inference log: drift, performance from feedback, metric checks,
alerts stored, deduplicated, resolved, and sent to a callback and a webhook on 127.0.0.1."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

import jupyter_mlops as mlops
from jupyter_mlops.errors import QueryError, ValidationError
from jupyter_mlops.monitoring.monitor import get_monitor, run_due_monitors
from jupyter_mlops.serving.inference_log import InferenceLogger
from jupyter_mlops.serving.segments import NumericRows
from jupyter_mlops.store import current_store

from .serving_helpers import COLUMNS, register_churn


class Webhook:
    """A webhook receiver on 127.0.0.1 that keeps what it was sent."""

    def __init__(self):
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers["Content-Length"])
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def serve_rows(frame, model, start_time, ids_prefix):
    """Log ``frame`` as if a deployment of ``model`` (churn@1) had served it row by row."""
    logger = InferenceLogger(current_store(), deployment_id="d-mon")
    predictions = model.predict(frame)
    for i in range(len(frame)):
        row = frame.iloc[i : i + 1][COLUMNS].to_numpy(dtype=float)
        logger.add(
            f"{ids_prefix}{i}",
            "churn",
            1,
            1,
            NumericRows(COLUMNS, row),
            {"predict": predictions[i : i + 1]},
            1.0,
        )
    logger.flush()
    logger.close()
    return [f"{ids_prefix}{i}" for i in range(len(frame))]


@pytest.fixture
def churn(store_dir):
    x, (model,) = register_churn(1)
    mv = mlops.get_model_version("churn@production")
    assert mv.data and mv.data[0]["ref"]  # the training data version the monitor compares to
    return x, model


def test_drift_alerts_are_raised_deduplicated_sent_and_resolved(churn):
    x, model = churn
    hook = Webhook()
    seen = []
    try:
        mlops.set_monitor(
            "churn@production",
            window=400,
            min_rows=100,
            checks=["accuracy >= 0.85"],
            webhook=hook.url,
            callback=seen.append,
        )
        shifted = x.sample(400, replace=True, random_state=1).reset_index(drop=True)
        shifted["radius"] = shifted["radius"] + x["radius"].std()  # +1 sd
        serve_rows(shifted, model, time.time(), "s")
        first = mlops.check("churn")
        assert first.state == "alert" and first.rows == 400
        kinds = {(a["kind"], a["subject"]) for a in first.opened}
        assert ("feature_drift", "radius") in kinds
        assert ("feature_drift", "texture") not in kinds
        assert first.report.drifted[0] == "radius"
        assert first.checks == [] or first.checks[0].passed is False  # no labels yet
        # one webhook POST and one callback call per alert opened
        assert len(hook.received) == len(first.opened) == len(seen)
        assert {a["subject"] for a in hook.received} == {a["subject"] for a in first.opened}
        assert all("webhook 204" in a["notified"] for a in first.opened)

        again = mlops.check("churn")  # the condition holds: no new alert, counted again
        assert again.opened == [] and len(hook.received) == len(first.opened)
        table = mlops.alerts("churn", status="open")
        radius = table[table["subject"] == "radius"].iloc[0]
        assert radius["occurrences"] == 2 and "radius drifted" in radius["message"]
        assert radius["reference"].startswith("x@") or radius["reference"]

        # wrong labels arrive: accuracy drops below the check
        ids = [f"s{i}" for i in range(400)]
        truth = 1 - model.predict(shifted)
        truth[:100] = model.predict(shifted)[:100]
        mlops.log_feedback(ids, truth.tolist())
        labelled = mlops.check("churn")
        assert labelled.performance["accuracy"] == pytest.approx(0.25)
        assert labelled.performance["labelled_rows"] == 400
        assert [r.line.split(" (")[0] for r in labelled.checks] == ["FAIL accuracy >= 0.85"]
        assert ("metric", "accuracy >= 0.85") in {
            (a["kind"], a["subject"]) for a in labelled.opened
        }
        assert "accuracy" in labelled.training_metrics or labelled.training_metrics == {}
        assert "FAIL" in labelled._repr_html_()

        # healthy traffic again: the drift alerts resolve
        serve_rows(x.sample(400, random_state=2).reset_index(drop=True), model, time.time(), "h")
        healthy = mlops.check("churn")
        assert healthy.state == "ok", healthy.open_alerts
        resolved = {(r["kind"], r["subject"]) for r in healthy.resolved}
        assert ("feature_drift", "radius") in resolved
        assert mlops.alerts("churn", status="open").empty
        assert len(mlops.alerts("churn")) >= 2
    finally:
        hook.close()


def test_not_enough_data_is_a_state_not_an_alert(churn):
    x, model = churn
    mlops.set_monitor("churn", window="1h", min_rows=500)
    serve_rows(x.iloc[:50], model, time.time(), "few")
    outcome = mlops.check("churn")
    assert outcome.state == "not enough data" and outcome.rows == 50
    assert outcome.opened == [] and mlops.alerts("churn").empty
    assert "not enough data" in repr(outcome)


def test_bad_monitors_are_refused_and_change_nothing(churn):
    mlops.set_monitor("churn", window="2h", min_rows=200)
    for bad, words in [
        ({"window": "soon"}, "Cannot read window"),
        ({"window": 0}, "window"),
        ({"min_rows": 0}, "min_rows"),
        ({"thresholds": {"pval": 0.1}}, "Unknown thresholds"),
        ({"webhook": "ftp://x"}, "http"),
        ({"every": "sometimes"}, "Cannot read every"),
    ]:
        with pytest.raises(ValidationError, match=words):
            mlops.set_monitor("churn", **bad)
    with pytest.raises(QueryError, match="position"):
        mlops.set_monitor("churn", checks=["accuracy >="])
    with pytest.raises(mlops.MlopsError, match="No registered model 'nope'"):
        mlops.set_monitor("nope")
    kept = get_monitor("churn")
    assert kept.window == "2h" and kept.min_rows == 200 and kept.reference == "churn@production"


def test_due_monitors_run_on_their_schedule(churn):
    x, model = churn
    mlops.set_monitor("churn", window=200, min_rows=50, every="15m")
    serve_rows(x.iloc[:200], model, time.time(), "d")
    t0 = time.time()
    assert [o.model for o in run_due_monitors(now=t0)] == ["churn"]
    assert run_due_monitors(now=t0 + 60) == []  # checked a minute ago
    assert [o.state for o in run_due_monitors(now=t0 + 16 * 60)] == ["ok"]


def test_the_monitoring_panel_draws_aggregates_and_checks(churn):
    from jupyter_mlops.views.monitor import MonitorView

    x, model = churn
    mlops.set_monitor("churn@production", window="1h", min_rows=100)
    shifted = x.sample(300, replace=True, random_state=3).reset_index(drop=True)
    shifted["radius"] = shifted["radius"] + x["radius"].std()
    serve_rows(shifted, model, time.time(), "p")
    view = mlops.monitor("churn@production")
    assert isinstance(view, MonitorView)
    ev = view.evaluation
    assert ev.outcome.state == "alert" and ev.total_rows == 300
    assert "churn@1" in view.header.value and "300 predictions" in view.header.value
    assert "radius" in view.drift_html.value and view.feature.options[0] == "radius"
    assert view.traffic["rows"].sum() == 300
    assert not view.dist_box.children  # charts wait for their tab
    for tab in (1, 2, 4):
        view.tabs.selected_index = tab
    assert view.dist_box.children and view.traffic_box.children
    assert view.prediction_box.children
    dist = view._dist
    assert set(dist["side"]) == {"reference", "current"}
    assert dist.groupby(["column", "side"])["share"].sum().round(6).eq(1.0).all()
    assert mlops.alerts("churn").empty  # looking never raises alerts
    view.check_now()
    assert "Checked: alert" in view.header.value
    assert not mlops.alerts("churn", status="open").empty
    assert "feature_drift" in view.alerts_html.value
    view.tabs.selected_index = 3
    assert len(view.history) == 1 and view.history_box.children  # the check is in the history
    small = MonitorView("churn", max_rows=150)
    assert "drift on the newest 150 of 300" in small.header.value
    static = view._repr_html_()
    assert "radius" in static and "Alerts" in static and "300 predictions" in static
    view.window.value = "15m"  # another window redraws
    assert view.evaluation.outcome.rows == 300


def test_the_reference_is_the_recorded_frame_with_the_model_inputs(store_dir):
    from types import SimpleNamespace

    import pandas as pd

    from jupyter_mlops.errors import NotFoundError
    from jupyter_mlops.monitoring.monitor import MonitorConfig, _reference_frame

    store = current_store()
    target = mlops.snapshot(pd.Series([0, 1] * 50, name="y"), "train_y")
    features = mlops.snapshot(pd.DataFrame({"a": range(100), "b": range(100)}), "train_x")
    mv = SimpleNamespace(
        ref="m@1",
        signature={"inputs": [{"name": "a"}, {"name": "b"}]},
        data=[  # the target was recorded first
            {"ref": target.ref, "shape": [100]},
            {"ref": features.ref, "shape": [100, 2]},
        ],
    )
    frame, label = _reference_frame(MonitorConfig(reference="m@1"), mv, store)
    assert label == features.ref and list(frame.columns) == ["a", "b"]
    mv.data = mv.data[:1]
    with pytest.raises(NotFoundError, match="reference='name@vN'"):
        _reference_frame(MonitorConfig(reference="m@1"), mv, store)


def test_a_given_frame_or_data_version_can_be_checked(churn):
    x, _ = churn
    mlops.set_monitor("churn", min_rows=100)
    moved = x.assign(texture=x["texture"] * 1.6)
    outcome = mlops.check("churn", current=moved)
    assert outcome.state == "alert" and outcome.rows == len(x)
    assert "texture" in outcome.report.drifted and outcome.report.prediction is not None
    mlops.snapshot(x, "fresh")
    calm = mlops.check("churn", current="fresh@v1")
    assert calm.state == "ok" and calm.report.drifted == []
    with pytest.raises(ValidationError, match="DataFrame or a data reference"):
        mlops.check("churn", current=[1, 2])


def _signup_model():
    """A classifier fitted on a frame with a datetime column (the pipeline leaves it out
    of the model, but it is in the signature: clients send it, the log keeps it)."""
    import numpy as np
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from .serving_helpers import training_frame

    x, y = training_frame()
    rng = np.random.default_rng(0)
    x["signup"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 60, len(x)), "D")
    with mlops.track("signup") as run:
        model = make_pipeline(
            ColumnTransformer([("num", "passthrough", COLUMNS)]),
            LogisticRegression(max_iter=2000),
        ).fit(x, y)
    mlops.register(run.run_id, "signup")
    return x, y, model


def _invocations(client, frame):
    """Predict ``frame`` through /invocations as a JSON client does (datetimes as ISO
    text); the request id of each row."""
    body = {"dataframe_split": json.loads(frame.to_json(orient="split", date_format="iso"))}
    status, headers, out = client.post("/invocations", body)
    assert status == 200, out
    return [f"{headers['x-request-id']}:{i}" for i in range(len(frame))]


def test_a_datetime_column_sent_as_iso_text_is_no_drift(store_dir):
    import pandas as pd

    from jupyter_mlops.serving.app import ServeConfig, create_app

    from .serving_helpers import Client, ThreadServer

    x, _, _ = _signup_model()
    assert (
        mlops.get_model_version("signup@1")
        .signature["inputs"][-1]["dtype"]
        .startswith("datetime64")
    )
    mlops.set_monitor("signup@1", window=300, min_rows=100)
    with ThreadServer(create_app(ServeConfig(reference="signup@1"))) as srv:
        client = Client(srv.port)
        _invocations(client, x.sample(300, random_state=1))
        srv.state.logger.flush()
        served = mlops.inference_log("signup")
        assert served["signup"].iloc[0].startswith("2024-") and "T" in served["signup"].iloc[0]
        same = mlops.check("signup")
        signup = next(c for c in same.report.columns if c.column == "signup")
        assert signup.kind == "datetime" and signup.status == "ok", signup
        assert not signup.new_categories and same.state == "ok", same.open_alerts
        assert "new categories" not in same._repr_html_()
        from jupyter_mlops.monitoring.monitor import evaluate
        from jupyter_mlops.monitoring.summary import distributions

        ev = evaluate("signup")  # the panel's distributions: date bins on both sides
        dist = distributions(ev.reference, ev.current, ["signup"])
        assert (
            set(dist["kind"]) == {"datetime"} and dist["label"].str.match(r"^2024-\d\d-\d\d$").all()
        )
        assert dist.groupby("side")["share"].sum().round(6).eq(1.0).all()
        # a real shift in the dates is still drift, found on the parsed values
        later = x.sample(300, random_state=2).assign(
            signup=lambda f: f.signup + pd.Timedelta("90D")
        )
        _invocations(client, later)
        srv.state.logger.flush()
        client.close()
    moved = mlops.check("signup")
    assert "signup" in moved.report.drifted and moved.state == "alert"
    assert ("feature_drift", "signup") in {(a["kind"], a["subject"]) for a in moved.open_alerts}


def test_roc_auc_runs_on_the_probabilities_the_deployment_logged(store_dir):
    import numpy as np
    from sklearn.metrics import roc_auc_score

    from jupyter_mlops.serving.app import ServeConfig, create_app

    from .serving_helpers import Client, ThreadServer

    x, y, model = _signup_model()
    mlops.set_monitor("signup@1", window=200, min_rows=100, checks=["roc_auc >= 0.7"])
    rows = x.sample(200, random_state=4)
    with ThreadServer(create_app(ServeConfig(reference="signup@1"))) as srv:
        client = Client(srv.port)
        ids = _invocations(client, rows)  # the client asks for labels only
        srv.state.logger.flush()
        client.close()
    log = mlops.inference_log("signup")
    logged = np.vstack(log["predict_proba"].to_numpy())
    assert np.allclose(logged, model.predict_proba(rows), atol=1e-12)
    waiting = mlops.check("signup")
    assert [r.line for r in waiting.checks] == [
        "SKIP roc_auc >= 0.7 (roc_auc: no feedback labels yet (mlops.log_feedback))"
    ]
    truth = y.loc[rows.index].tolist()
    mlops.log_feedback(ids, truth)
    outcome = mlops.check("signup")
    expected = roc_auc_score(truth, model.predict_proba(rows)[:, 1])
    assert outcome.performance["roc_auc"] == pytest.approx(expected)
    assert [r.line.split(" (")[0] for r in outcome.checks] == ["PASS roc_auc >= 0.7"]


def test_logs_without_probabilities_are_scored_again_from_their_inputs(churn):
    """Logs written before probabilities were logged hold the inputs: the version that
    served each row scores them again. A model without predict_proba says so."""
    from sklearn.metrics import roc_auc_score
    from sklearn.svm import LinearSVC

    from .serving_helpers import training_frame

    x, model = churn
    _, y = training_frame()
    rows = x.sample(150, random_state=5).reset_index(drop=True)
    truth = y.loc[x.sample(150, random_state=5).index].tolist()
    ids = serve_rows(rows, model, time.time(), "old")  # labels only, as before
    assert "predict_proba" not in mlops.inference_log("churn").columns
    mlops.log_feedback(ids, truth)
    mlops.set_monitor("churn@1", window=150, min_rows=100, checks=["roc_auc >= 0.7"])
    outcome = mlops.check("churn")
    expected = roc_auc_score(truth, model.predict_proba(rows)[:, 1])
    assert outcome.performance["roc_auc"] == pytest.approx(expected)
    assert outcome.checks[0].passed

    with mlops.track("svc") as run:
        svc = LinearSVC().fit(x, y)
    mlops.register(run.run_id, "margin")
    logger = InferenceLogger(current_store(), deployment_id="d-svc")
    for i in range(120):
        row = rows.iloc[i : i + 1][COLUMNS].to_numpy(dtype=float)
        logger.add(
            f"m{i}",
            "margin",
            1,
            1,
            NumericRows(COLUMNS, row),
            {"predict": svc.predict(rows.iloc[i : i + 1][COLUMNS])},
            1.0,
        )
    logger.close()
    mlops.log_feedback([f"m{i}" for i in range(120)], truth[:120])
    mlops.set_monitor(
        "margin@1", window=120, min_rows=100, checks=["roc_auc >= 0.7", "accuracy >= 0"]
    )
    no_proba = mlops.check("margin")
    assert "accuracy" in no_proba.performance and "roc_auc" not in no_proba.performance
    assert no_proba.checks[0].line == (
        "SKIP roc_auc >= 0.7 (roc_auc: margin@1 has no predict_proba)"
    )
    assert no_proba.unavailable["roc_auc"] == "margin@1 has no predict_proba"


def test_the_reference_is_the_frame_the_model_was_fitted_on(ip):
    """A cell that splits records the test split too, with the same columns: the monitor
    compares with the frame given to ``fit`` (the training data), never the test split."""
    from jupyter_mlops.monitoring.monitor import evaluate

    ip.run_cell(
        "from sklearn.linear_model import LogisticRegression\n"
        "from sklearn.model_selection import train_test_split\n"
        "from tests.serving_helpers import training_frame\n"
        "X, y = training_frame()\n"
        "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)\n"
    )
    result = ip.run_cell(
        "%%track --register screening\n"
        "model = LogisticRegression(max_iter=2000).fit(X_train, y_train)\n"
        "accuracy = model.score(X_test, y_test)\n"
    )
    assert result.success
    names = [d["name"] for d in mlops.get_model_version("screening@1").data]
    assert {"X_train", "X_test"} <= set(names)
    x_test = ip.user_ns["X_test"]
    mlops.set_monitor("screening@1", min_rows=100)
    ev = evaluate("screening", current=x_test)
    assert ev.reference_label.split("/")[-1].startswith("X_train@")
    assert ev.outcome.report.ref_rows == len(ip.user_ns["X_train"]) == 426


def test_the_panel_headline_names_the_worst_condition_and_the_trend_needs_two_checks(churn):
    from jupyter_mlops.views.monitor import MonitorView

    x, model = churn
    mlops.set_monitor("churn@production", window="1h", min_rows=100, checks=["accuracy >= 0.85"])
    shifted = x.sample(300, replace=True, random_state=3).reset_index(drop=True)
    shifted["radius"] = shifted["radius"] + x["radius"].std()
    ids = serve_rows(shifted, model, time.time(), "w")
    view = MonitorView("churn@production")
    drifted = "1 of 5 features drifted (dataset drift threshold of 50% not reached): radius"
    # worst first: the predictions moved, then which features did
    assert view.headline.level == "alert"
    assert view.headline.title.startswith("the predictions drifted (PSI ")
    assert view.headline.details[0] == drifted
    shown = view.header.value + view.drift_html.value
    assert ">alert</span>" in view.header.value and drifted in view.header.value
    assert ">features drifted</span>" in view.drift_html.value
    assert "no drift" not in shown and "no dataset drift" not in shown
    assert ">ok<" not in view.header.value

    view.tabs.selected_index = 3  # Over time, before any check
    assert "No checks recorded yet" in view.history_box.children[0].value
    view.check_now()
    recorded = len(mlops.alerts("churn", status="open"))
    assert recorded >= 2 and f"{recorded} open alerts recorded" in view.header.value
    view.tabs.selected_index = 0
    view.tabs.selected_index = 3
    note = view.history_box.children[0].value
    assert "One check so far — a trend needs at least two" in note and ": alert, 20%" in note
    assert view.history_chart() is None
    assert "over time: One check so far — a trend needs at least two" in view._repr_html_()

    # labels the model gets wrong: the failed check is named first, the drift after it
    mlops.log_feedback(ids, (1 - model.predict(shifted)).tolist())
    mlops.check("churn")
    view.refresh()
    assert view.headline.title.startswith("check failed: accuracy >= 0.85 (accuracy = 0")
    assert drifted in view.headline.details
    assert any(d.startswith("the predictions drifted") for d in view.headline.details), (
        view.headline
    )
    view.tabs.selected_index = 0
    view.tabs.selected_index = 3
    assert view.history_box.children and not isinstance(
        view.history_box.children[0], type(view.header)
    )
    spec = view.history_chart().to_dict()
    drift_spec, perf_spec = spec["vconcat"]
    for part in (drift_spec, perf_spec):
        assert part["mark"] == {"type": "line", "point": True}
        assert part["encoding"]["x"]["axis"]["format"] == "%H:%M"
        assert part["encoding"]["y"]["axis"]["format"] == "%"
    assert drift_spec["encoding"]["y"]["field"] == "drift_share"
    assert "2 checks from" in view._repr_html_()


def test_the_panel_says_all_clear_once(churn):
    from jupyter_mlops.views.monitor import MonitorView

    x, model = churn
    mlops.set_monitor("churn@production", window="1h", min_rows=100)
    serve_rows(x.sample(300, random_state=2).reset_index(drop=True), model, time.time(), "ok")
    calm = MonitorView("churn@production")
    assert calm.headline.level == "ok", calm.headline
    assert calm.headline.title == "all clear: none of 5 features drifted"
    assert ">ok</span>" in calm.header.value and ">no drift</span>" in calm.drift_html.value
    assert "alert" not in calm.header.value
