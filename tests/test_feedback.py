"""Feedback right after traffic, against a real deployment (its own process, its inference
log flushed about once a second): labels for predictions not yet written are waited for,
a segment rewritten while it is read is read again, and only real damage says "doctor"."""

from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa

import jupyter_mlops as mlops
from jupyter_mlops.errors import NotFoundError
from jupyter_mlops.serving.inference_log import (
    _known_ids,
    feedback,
    inference_log,
    logged_rows,
    online_table,
)
from jupyter_mlops.serving.launcher import stop_launcher
from jupyter_mlops.store import current_store, schema

from .conftest import cli
from .serving_helpers import Client, oip_body, processes_mentioning, register_churn

pytestmark = pytest.mark.slow


@pytest.fixture
def churn(store_dir):
    x, (model,) = register_churn(1)
    yield x, model
    for d in mlops.deployments().itertuples():  # never leave a server behind
        mlops.undeploy(d.deployment_id)
    stop_launcher(store_dir)
    assert processes_mentioning(str(store_dir)) == []


def _serve(client: Client, x, start: int, n: int) -> list[str]:
    """``n`` predictions, single-row requests and one 3-row request; their feedback ids."""
    ids = []
    for i in range(start, start + n):
        status, _, out = client.post("/v2/models/churn/infer", oip_body(x.iloc[i : i + 1]))
        assert status == 200, out
        ids.append(out["id"])
    status, _, out = client.post("/v2/models/churn/infer", oip_body(x.iloc[start : start + 3]))
    assert status == 200, out
    return ids + [f"{out['id']}:{k}" for k in range(3)]


def _doctor_is_clean(store_dir) -> None:
    out = cli(store_dir, "doctor")
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stdout + out.stderr


def test_feedback_right_after_traffic_joins_every_label(churn, store_dir):
    x, _ = churn
    d = mlops.deploy("churn@production")
    client = Client(d.port)
    expected: dict[str, int] = {}
    for round_ in range(6):  # several rounds: the first flush, then merges into the tail
        ids = _serve(client, x, 40 * round_, 40)
        labels = [(round_ + i) % 2 for i in range(len(ids))]
        assert mlops.log_feedback(ids, labels) == len(ids)  # at once: nothing is flushed yet
        expected.update(zip(ids, labels, strict=True))
    client.close()
    stored = feedback("churn")
    assert dict(zip(stored["request_id"], stored["label"], strict=True)) == expected
    joined = inference_log("churn").merge(stored, on="request_id")
    assert len(joined) == len(expected) == 6 * 43
    # a wrong id is still refused, without the whole wait: the deployment answered its flush
    began = time.monotonic()
    with pytest.raises(NotFoundError, match="nothing was stored"):
        mlops.log_feedback(["no-such-request"], [1])
    assert time.monotonic() - began < 4.0
    assert len(feedback("churn")) == len(expected)
    mlops.set_monitor("churn", window=1000, min_rows=100, checks=["accuracy >= 0.1"])
    outcome = mlops.check("churn")
    assert outcome.performance["labelled_rows"] == len(expected)
    _doctor_is_clean(store_dir)


def test_a_deployment_with_a_token_is_waited_for(churn, store_dir):
    """The kernel cannot ask a deployment with a token to flush (it never sees the token):
    it waits for the deployment's own next flush instead."""
    x, _ = churn
    d = mlops.deploy("churn@production", token="s3cret-token")
    client = Client(d.port)
    headers = {"Authorization": "Bearer s3cret-token"}
    ids = []
    for i in range(20):
        status, _, out = client.post(
            "/v2/models/churn/infer", oip_body(x.iloc[i : i + 1]), headers=headers
        )
        assert status == 200, out
        ids.append(out["id"])
    assert mlops.log_feedback(ids, [1] * len(ids), model="churn@production") == len(ids)
    status, _, out = client.post("/v2/models/churn/flush")
    assert status == 401  # the flush route is behind the token like every other route
    client.close()
    assert d.flush() == 0  # Deployment.flush sends the token it was given; nothing left
    assert set(feedback("churn")["request_id"]) == set(ids)
    _doctor_is_clean(store_dir)


def test_reads_while_a_deployment_rewrites_its_log_never_report_damage(churn, store_dir):
    """A flush extends the last small segment: a new object, the index swapped, the old
    object deleted. A reader that listed the old segment reads the index again."""
    x, _ = churn
    d = mlops.deploy("churn@production")
    store = current_store()
    sent = [0]
    stop = threading.Event()
    failures: list[BaseException] = []

    def traffic() -> None:
        client = Client(d.port)
        try:
            while not stop.is_set():
                i = sent[0] % len(x)
                status, _, _ = client.post("/v2/models/churn/infer", oip_body(x.iloc[i : i + 1]))
                assert status == 200
                sent[0] += 1
        except BaseException as exc:
            failures.append(exc)
        finally:
            client.close()

    thread = threading.Thread(target=traffic, daemon=True)
    thread.start()
    reads = 0
    segments: set[tuple[int, str]] = set()
    try:
        deadline = time.monotonic() + 120
        while (len(segments) < 8 or sent[0] < 1000) and time.monotonic() < deadline:
            if failures:
                break
            _known_ids(store, {"r-unknown"}, "churn")
            table = online_table("churn", columns=["request_id", "time"])
            if table.num_rows:  # counted later, a straddling segment read: never fewer rows
                times = table.column("time").to_numpy()
                since = float(times[len(times) // 2])
                assert logged_rows("churn", since) >= int((times >= since).sum())
            with store.read() as conn:
                seg = schema.inference_segments
                query = sa.select(seg.c.segment_id, seg.c.object_hash)
                segments |= {tuple(r) for r in conn.execute(query)}
            reads += 1
    finally:
        stop.set()
        thread.join(30)
    assert not failures, failures
    # the tail was rewritten many times (a new object each time) while it was read
    assert sent[0] >= 1000 and len(segments) >= 8 and reads > 10
    d.flush()
    assert len(inference_log("churn")) == sent[0]
    _doctor_is_clean(store_dir)


def test_a_missing_segment_object_is_damage_and_says_doctor(churn, store_dir):
    x, _ = churn
    d = mlops.deploy("churn@production")
    client = Client(d.port)
    ids = _serve(client, x, 0, 10)
    client.close()
    assert mlops.log_feedback(ids[:2], [0, 1]) == 2
    mlops.undeploy(d.deployment_id)
    store = current_store()
    seg = schema.inference_segments
    with store.read() as conn:
        digest = conn.execute(sa.select(seg.c.object_hash)).scalar_one()
    store.objects.delete(digest)  # the damage: the index points at an object that is gone
    with pytest.raises(NotFoundError, match=r"segment 1 of churn .* `jupyter-mlops doctor`"):
        mlops.log_feedback(ids[2:4], [1, 0])
    assert len(feedback("churn")) == 2  # nothing more was stored
    out = cli(store_dir, "doctor")
    assert out.returncode == 1 and "inference log segment" in out.stdout
