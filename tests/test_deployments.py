"""Deployments as a user runs them: real serving processes on 127.0.0.1, their state in the
store, alias following without dropped requests, failures with clear status, no orphans."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import jupyter_mlops as mlops
from jupyter_mlops.errors import NotFoundError, ValidationError
from jupyter_mlops.serving.deployments import DeploymentError
from jupyter_mlops.serving.launcher import stop_launcher

from .serving_helpers import (
    Client,
    custom_estimator,
    group_members,
    oip_body,
    predictions,
    processes_mentioning,
    register_churn,
)

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def churn(store_dir):
    data = register_churn(2)
    yield data
    for d in mlops.deployments().itertuples():  # never leave a server behind
        mlops.undeploy(d.deployment_id)
    stop_launcher(store_dir)
    assert processes_mentioning(str(store_dir)) == []


def test_deploy_serve_follow_the_alias_and_stop(churn):
    x, (m1, m2) = churn
    d = mlops.deploy("churn@production")
    assert d.status == "running" and d.version == 1 and d.url.startswith("http://127.0.0.1:")
    assert d.token is None and group_members(d.pid) == [d.pid]
    html = d._repr_html_()
    assert "churn@1" in html and d.url in html and "curl" in html and "running" in html
    listed = mlops.deployments()
    assert listed.loc[0, "status"] == "running" and listed.loc[0, "url"] == d.url
    again = mlops.deploy("churn@production")  # deploying the same reference returns it
    assert again.deployment_id == d.deployment_id

    port = int(d.url.rsplit(":", 1)[1])
    rows = x.iloc[:5]
    c = Client(port)
    status, _, out = c.post("/v2/models/churn/infer", oip_body(rows))
    assert status == 200 and out["outputs"][0]["data"] == predictions(m1, rows)

    # keep requests flowing while the alias moves: none fails, the version switches once
    seen, errors, stop = [], [], threading.Event()

    def hammer():
        client = Client(port)
        while not stop.is_set():
            s, _, o = client.post("/v2/models/churn/infer", oip_body(rows))
            if s != 200:
                errors.append((s, o))
            else:
                seen.append((o["model_version"], o["outputs"][0]["data"]))
        client.close()

    worker = threading.Thread(target=hammer)
    worker.start()
    time.sleep(0.3)
    mlops.set_alias("churn", "production", 2, reason="better recall")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and (not seen or seen[-1][0] != "2"):
        time.sleep(0.05)
    time.sleep(0.3)
    stop.set()
    worker.join()
    assert not errors
    versions = [v for v, _ in seen]
    assert versions[0] == "1" and versions[-1] == "2"
    assert versions == sorted(versions)  # one switch, never back
    assert all(p == predictions(m2, rows) for v, p in seen if v == "2")
    events = mlops.model_events("churn")
    switched = events[events["kind"] == "deployment_switched"]
    assert len(switched) == 1 and switched.iloc[0]["to_version"] == 2
    assert d.deployment_id in switched.iloc[0]["detail"]
    assert d.refresh().version == 2

    # the log holds every request, with the version that answered it
    c.close()
    stopped = mlops.undeploy("churn@production")
    assert [s.status for s in stopped] == ["stopped"]
    assert group_members(d.pid) == []
    log = mlops.inference_log("churn")
    assert len(log) == 5 * (len(seen) + 1)  # a clean stop flushed everything
    assert set(log["version"]) == {1, 2}
    assert "serving churn@1" in d.logs()
    assert mlops.deployments().empty and len(mlops.deployments(all=True)) == 1


def test_failures_have_a_clear_status_and_leave_no_process(churn, store_dir):
    # a port in use
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    with pytest.raises(DeploymentError, match=f"Port {port} on 127.0.0.1 is already in use"):
        mlops.deploy("churn@production", port=port)
    busy.close()
    failed = mlops.deployments(all=True)
    assert failed.loc[0, "status"] == "failed" and "in use" in failed.loc[0, "message"]
    assert group_members(int(failed.loc[0, "pid"])) == []

    # unknown model / version, bad arguments: nothing recorded, nothing started
    with pytest.raises(NotFoundError, match="No registered model 'nope'"):
        mlops.deploy("nope@production")
    with pytest.raises(NotFoundError, match="no version 9"):
        mlops.deploy("churn@9")
    with pytest.raises(ValidationError):
        mlops.deploy("churn@production", workers=0)
    with pytest.raises(ValidationError, match="token is empty"):
        mlops.deploy("churn@production", host="0.0.0.0", token=" ")
    assert len(mlops.deployments(all=True)) == 1

    # a model that fails to load: its class is outside scikit-learn, so it needs trust
    x, _ = churn
    with mlops.track("custom") as run:
        labels = [0, 1] * (len(x) // 2) + [0] * (len(x) % 2)
        run.log_model(custom_estimator()().fit(x, labels), "t")
    mlops.register(run.run_id, "pickled")
    with pytest.raises(DeploymentError, match="trusted=True"):
        mlops.deploy("pickled")
    bad = mlops.deployments("pickled", all=True)
    assert bad.loc[0, "status"] == "failed" and "not known to be safe" in bad.loc[0, "message"]
    assert group_members(int(bad.loc[0, "pid"])) == []

    # a deployment whose process died is reported as dead, with its last lines
    d = mlops.deploy("churn@1")
    os.kill(d.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while mlops.deployments("churn").loc[0, "status"] != "dead" and time.monotonic() < deadline:
        time.sleep(0.05)
    dead = mlops.deployments("churn")
    assert dead.loc[0, "status"] == "dead"
    assert d.state == "running" and d.status == "dead" and "is gone" in d.message  # live
    assert "is gone" in dead.loc[0, "message"] and "mlops.deploy()" in dead.loc[0, "message"]
    assert [s.status for s in mlops.undeploy("churn")] == ["stopped"]
    with pytest.raises(NotFoundError, match="No active deployment"):
        mlops.undeploy("churn@production")


def test_a_deployment_outlives_the_kernel_that_started_it(churn, store_dir):
    x, (m1, _) = churn
    code = (
        "import jupyter_mlops as mlops; d = mlops.deploy('churn@production'); "
        "print(d.deployment_id, d.url, flush=True)"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    deployment_id, url = out.stdout.split()
    listed = mlops.deployments()
    assert listed.loc[0, "deployment_id"] == deployment_id
    assert listed.loc[0, "status"] == "running"  # health-checked from this process
    c = Client(int(url.rsplit(":", 1)[1]))
    status, _, body = c.post("/invocations", {"dataframe_records": x.iloc[:3].to_dict("records")})
    assert status == 200 and body["predictions"] == predictions(m1, x.iloc[:3])
    c.close()
    pid = int(listed.loc[0, "pid"])
    mlops.undeploy(deployment_id)
    assert group_members(pid) == []


def test_a_public_host_needs_the_token_shown_once(churn):
    x, _ = churn
    d = mlops.deploy("churn@production", host="0.0.0.0")
    assert d.token and len(d.token) >= 24 and d.token in repr(d) and d.token in d._repr_html_()
    assert d.refresh().token is None  # only its hash is stored
    from jupyter_mlops.serving.app import hash_token
    from jupyter_mlops.store import current_store, schema

    with current_store().read() as conn:
        stored = conn.execute(schema.deployments.select()).first().token_hash
    assert stored == hash_token(d.token) and d.token not in stored
    c = Client(d.port)
    assert c.get("/v2/health/ready")[0] == 200
    assert c.post("/v2/models/churn/infer", oip_body(x.iloc[:1]))[0] == 401
    auth = {"Authorization": f"Bearer {d.token}"}
    assert c.post("/v2/models/churn/infer", oip_body(x.iloc[:1]), headers=auth)[0] == 200
    c.close()
    assert "Authorization: Bearer" in d.curl()


def test_workers_share_the_port_and_the_cli_serves_in_the_foreground(churn, store_dir):
    x, _ = churn
    d = mlops.deploy("churn@production", workers=2)
    c = Client(d.port)
    for _ in range(20):
        assert c.post("/v2/models/churn/infer", oip_body(x.iloc[:2]))[0] == 200
    status, _, metrics = c.get("/metrics")
    assert status == 200 and 'mlops_requests_total{route="infer",status="200"} 20.0' in metrics
    c.close()
    assert len(group_members(d.pid)) >= 3  # the supervisor and two workers
    os.kill(d.pid, signal.SIGKILL)  # the supervisor dies (OOM killer); its workers live on
    time.sleep(0.3)
    assert d.status == "dead" and group_members(d.pid)
    mlops.undeploy(d.deployment_id)  # stops the whole group, not just the dead leader
    time.sleep(0.2)
    assert group_members(d.pid) == []
    assert len(mlops.inference_log("churn")) == 40  # the orphaned workers flushed on SIGTERM

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    started = time.time()
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter_mlops.cli", "serve", "churn@production", "--port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert "serving churn@1 (churn@production) on http://127.0.0.1:" in line, line
        port = int(line.rsplit(":", 1)[1])
        listed = mlops.deployments()
        assert list(listed["status"]) == ["running"] and listed.loc[0, "url"].endswith(str(port))
        c = Client(port)
        assert c.post("/v2/models/churn/infer", oip_body(x.iloc[:1]))[0] == 200
        c.close()
    finally:
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, rest
    assert "inference log flushed" in rest
    assert mlops.deployments().empty
    assert len(mlops.inference_log("churn", since=started)) == 1


def test_the_warm_launcher_forks_deployments_that_outlive_it(churn, store_dir, monkeypatch):
    x, (m1, m2) = churn
    first = mlops.deploy("churn@1")  # starts the store's launcher and waits for it
    second = mlops.deploy("churn@2")  # forked by the warm launcher
    for d in (first, second):
        with open(f"/proc/{d.pid}/comm") as fh:
            assert fh.read().strip() == d.deployment_id[:15]
        assert group_members(d.pid) == [d.pid]  # its own process group
    assert stop_launcher(store_dir) is not None
    c = Client(second.port)
    status, _, out = c.post("/v2/models/churn/infer", oip_body(x.iloc[:4]))
    assert status == 200 and out["outputs"][0]["data"] == predictions(m2, x.iloc[:4])
    c.close()
    mlops.undeploy("churn")
    # without the launcher a deployment is a plain new process
    monkeypatch.setenv("MLOPS_LAUNCHER", "0")
    plain = mlops.deploy("churn@1")
    with open(f"/proc/{plain.pid}/cmdline", "rb") as fh:
        assert b"jupyter_mlops.serving" in fh.read()
    c = Client(plain.port)
    assert c.post("/v2/models/churn/infer", oip_body(x.iloc[:4]))[2]["outputs"][0]["data"] == (
        predictions(m1, x.iloc[:4])
    )
    c.close()
    mlops.undeploy("churn")
    assert group_members(plain.pid) == []


def test_a_deployment_object_says_stopped_once_it_is_stopped(churn, store_dir):
    from .conftest import cli

    first, second = mlops.deploy("churn@1"), mlops.deploy("churn@2")
    held = mlops.deploy("churn@1")  # the same deployment, a second object of it
    assert held.deployment_id == first.deployment_id
    stopped = mlops.undeploy("churn")  # by model name: every object of them says so
    assert {d.deployment_id for d in stopped} == {first.deployment_id, second.deployment_id}
    for d in (first, second, held):
        assert d.state == "stopped" and d.status == "stopped"
        assert " stopped at " in repr(d) and ">stopped<" in d._repr_html_()
        assert group_members(d.pid) == []

    by_object = mlops.deploy("churn@1")
    assert by_object.state == "running"
    [out] = mlops.undeploy(by_object)  # the Deployment itself
    assert out.deployment_id == by_object.deployment_id and by_object.state == "stopped"

    own = mlops.deploy("churn@2")
    assert own.stop() is own and own.state == "stopped" and "stopped" in repr(own)

    # stopped from another process (the CLI): the object shows it as soon as it is shown
    elsewhere = mlops.deploy("churn@1")
    result = cli(store_dir, "undeploy", elsewhere.deployment_id)
    assert result.returncode == 0, result.stderr
    assert " stopped at " in repr(elsewhere) and elsewhere.state == "stopped"
    assert mlops.deployments().empty


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmRSS:")) / 1024


def _huge_anonymous_maps(pid: int) -> list[str]:
    """Anonymous mappings of 1 GiB or more: mimalloc's reservation (Arrow's default pool)."""
    found = []
    with open(f"/proc/{pid}/maps") as fh:
        for line in fh:
            fields = line.split()
            start, end = (int(v, 16) for v in fields[0].split("-"))
            if end - start >= 1 << 30 and len(fields) < 6:
                found.append(line.strip())
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_logging_deployment_gives_its_buffers_back(churn):
    """The inference log's Arrow buffers went to mimalloc (1 GiB reserved, freed memory
    kept) and to per-thread malloc arenas, so a server under load grew by tens of MB and
    never shrank; now Arrow uses malloc, threads share one arena, and the heap is trimmed
    after each flush."""
    from jupyter_mlops.serving.inference_log import logged_rows

    x, _ = churn
    d = mlops.deploy("churn@production")
    body = oip_body(x.iloc[:100])
    c = Client(d.port)

    def traffic(requests: int) -> None:
        before = logged_rows("churn", None)
        for _ in range(requests):
            assert c.post("/v2/models/churn/infer", body)[0] == 200
        deadline = time.monotonic() + 60
        while logged_rows("churn", None) < before + 100 * requests:  # flushed to the store
            assert time.monotonic() < deadline, "the inference log was not written"
            time.sleep(0.05)

    traffic(100)
    warm = _rss_mb(d.pid)
    traffic(600)
    assert _huge_anonymous_maps(d.pid) == []
    assert _rss_mb(d.pid) - warm < 20, (warm, _rss_mb(d.pid))
    c.close()
