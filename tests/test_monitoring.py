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
