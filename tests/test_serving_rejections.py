"""Every reply of a real deployment carries ``x-request-id`` (errors too), refused
prediction requests are counted by reason, and ``mlops.check``, the monitoring panel and
the sidebar's payload show the rejection rate and its reasons; a high rate alerts."""

from __future__ import annotations

import http.client
import json
import time

import pytest

import jupyter_mlops as mlops
from jupyter_mlops.serving.deployments import deploy
from jupyter_mlops.serving.inference_log import rejections
from jupyter_mlops.serving.launcher import stop_launcher

from .serving_helpers import oip_body, processes_mentioning, register_churn

pytestmark = pytest.mark.slow
TOKEN = "s3cret-token"


class IdClient:
    """A client that reads x-request-id on every reply, as a tracing client does, and
    fails loudly when a reply has none."""

    def __init__(self, port: int):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.ids: list[str] = []

    def send(self, method, path, body=None, headers=None, token=True):
        headers = dict(headers or {})
        if token:
            headers["Authorization"] = f"Bearer {TOKEN}"
        if body is not None and not isinstance(body, bytes | str):
            body = json.dumps(body)
            headers.setdefault("Content-Type", "application/json")
        self.conn.request(method, path, body=body, headers=headers)
        reply = self.conn.getresponse()
        raw = reply.read()
        rid = reply.getheader("x-request-id")  # KeyError-free: None when missing
        assert rid, f"{method} {path} -> {reply.status} has no x-request-id"
        self.ids.append(rid)
        if reply.getheader("connection", "").lower() == "close":
            self.conn.close()
        ctype = reply.getheader("content-type", "")
        data = json.loads(raw) if ctype.startswith("application/json") else raw
        return reply.status, rid, data


@pytest.fixture
def deployed(store_dir):
    x, _ = register_churn(1)
    d = deploy("churn@production", token=TOKEN, max_body_mb=0.01)
    yield x, d
    mlops.undeploy(d.deployment_id)
    stop_launcher(store_dir)
    assert processes_mentioning(str(store_dir)) == []


def test_every_reply_has_a_request_id_and_refusals_are_monitored(deployed):
    x, d = deployed
    c = IdClient(d.port)
    good = oip_body(x.iloc[:2])
    served = 0
    for _ in range(30):  # traffic the model answers
        assert c.send("POST", "/v2/models/churn/infer", good)[0] == 200
        served += 1
    # the client's id is echoed when it sends a usable one, on success and on error
    status, rid, out = c.send(
        "POST", "/v2/models/churn/infer", good, headers={"x-request-id": "trace-42"}
    )
    assert status == 200 and rid == "trace-42" and out["id"] == "trace-42"
    served += 1
    status, rid, out = c.send(
        "POST", "/invocations", {"instances": [[1, 2]]}, headers={"X-Request-ID": "trace-43"}
    )
    assert status == 400 and rid == "trace-43"
    # an id in the OIP body wins, and its error reply carries it too
    nan = oip_body(x.iloc[:3], id="body-7")
    nan["inputs"][1]["data"][2] = None
    status, rid, out = c.send("POST", "/v2/models/churn/infer", nan)
    assert status == 422 and rid == "body-7" and out["rows"] == [2]
    # an id that cannot travel back is replaced, never echoed
    status, rid, _ = c.send("POST", "/v2/models/churn/infer", good, headers={"x-request-id": "a:b"})
    assert status == 200 and rid != "a:b" and len(rid) == 32
    served += 1

    wrong_column = oip_body(x.iloc[:2].rename(columns={"radius": "radios"}))
    refused = [  # (method, path, body, headers, token, status, reason)
        ("POST", "/v2/models/churn/infer", b"{nope", {}, True, 400, "bad_json"),
        ("POST", "/v2/models/churn/infer", b"", {}, True, 400, "bad_json"),
        ("POST", "/v2/models/churn/infer", {"inputs": "x"}, {}, True, 400, "invalid_request"),
        ("POST", "/v2/models/churn/infer", wrong_column, {}, True, 422, "schema"),
        ("POST", "/v2/models/churn/infer", nan, {}, True, 422, "missing_value"),
        ("POST", "/v2/models/churn/infer", nan, {}, True, 422, "missing_value"),
        ("POST", "/v2/models/churn/infer", {"x": "y" * 20000}, {}, True, 413, "too_large"),
        ("POST", "/v2/models/nope/infer", good, {}, True, 404, "not_found"),
        ("POST", "/v2/models/churn/versions/9/infer", good, {}, True, 404, "not_found"),
        (
            "POST",
            "/invocations",
            b"x",
            {"Content-Type": "application/xml"},
            True,
            415,
            "unsupported_media_type",
        ),
        ("POST", "/v2/models/churn/infer", good, {}, False, 401, "unauthorized"),
    ]
    for method, path, body, headers, token, status, _ in refused:
        got, rid, out = c.send(method, path, body, headers, token=token)
        assert got == status, (path, out)
    # the other routes, and the router's own 404 and 405, have ids too
    for method, path, status in [
        ("GET", "/v2/health/live", 200),
        ("GET", "/v2/health/ready", 200),
        ("GET", "/ping", 200),
        ("GET", "/v2", 200),
        ("GET", "/v2/models/churn", 200),
        ("GET", "/v2/models/churn/ready", 200),
        ("GET", "/metrics", 200),
        ("GET", "/openapi.json", 200),
        ("GET", "/", 200),
        ("GET", "/version", 200),
        ("GET", "/no/such/route", 404),
        ("GET", "/v2/models/churn/infer", 405),
        ("DELETE", "/invocations", 405),
    ]:
        assert c.send(method, path)[0] == status, path
    generated = [i for i in c.ids if i not in ("trace-42", "trace-43", "body-7")]
    assert len(set(generated)) == len(generated)  # a new id per reply otherwise

    # the refusals reach the store with the inference log's next flush
    reasons: dict[str, int] = {}
    for *_, reason in refused:
        reasons[reason] = reasons.get(reason, 0) + 1
    reasons["invalid_request"] += 1  # the /invocations with too few values
    reasons["missing_value"] += 1  # the one with body-7
    total = sum(reasons.values())
    deadline = time.monotonic() + 20
    while rejections("churn")["requests"].sum() < total and time.monotonic() < deadline:
        time.sleep(0.1)
    stored = rejections("churn").groupby("reason")["requests"].sum().to_dict()
    assert stored == reasons
    status, _, metrics = c.send("GET", "/metrics")
    assert b'mlops_rejected_requests_total{reason="missing_value",route="infer"} 3.0' in metrics
    deadline = time.monotonic() + 20
    while len(mlops.inference_log("churn")) < 2 * served and time.monotonic() < deadline:
        time.sleep(0.1)

    # mlops.check: the rate over the window and the top reasons; over 5% alerts
    mlops.set_monitor("churn", window="1h", min_rows=500)  # too few rows to judge drift
    outcome = mlops.check("churn")
    r = outcome.rejections
    assert r.received == served + total and r.rejected == total
    assert outcome.rejection_rate == pytest.approx(total / (served + total))
    assert r.top(1) == [("missing_value", 3)] and r.reasons == dict(
        sorted(reasons.items(), key=lambda kv: -kv[1])
    )
    assert "cannot take them" in r.examples["missing_value"]
    assert outcome.state == "alert" and outcome.report is None  # refused traffic alerts
    [alert] = [a for a in outcome.opened if a["kind"] == "rejections"]
    assert f"of {served + total} requests refused" in alert["message"]
    assert "missing_value 3" in alert["message"] and "threshold is 5.0%" in alert["message"]
    assert "requests refused" in repr(outcome) and "rejections" in outcome._repr_html_()
    again = mlops.check("churn")  # still holding: one alert, seen twice
    open_ = mlops.alerts("churn", status="open")
    assert again.opened == [] and open_.loc[0, "kind"] == "rejections"
    assert open_.loc[0, "occurrences"] == 2

    # a threshold above the rate: no alert, and the open one resolves
    mlops.set_monitor("churn", window="1h", min_rows=500, thresholds={"rejection_rate": 0.9})
    calm = mlops.check("churn")
    assert calm.state == "not enough data" and [a["kind"] for a in calm.resolved] == ["rejections"]
    assert calm.rejections.rejected == total

    # the panel and the sidebar's payload show it
    view = mlops.monitor("churn")
    assert "requests refused" in view.header.value and "missing_value 3" in view.header.value
    from jupyter_mlops.server.payloads import monitoring_payload
    from jupyter_mlops.store import current_store

    [item] = monitoring_payload(current_store())
    last = item["last_check"]
    assert last["rejected"] == total and last["received"] == served + total
    assert last["reasons"]["missing_value"] == 3
    assert last["rejection_rate"] == pytest.approx(total / (served + total))
    assert len(mlops.inference_log("churn")) == 2 * served  # refused requests logged nothing
