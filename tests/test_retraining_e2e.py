"""End to end with real processes: a deployed champion, shifted traffic, the monitor's
alert, the policy's job retraining on the newer data, the gate, the alias moving and the
deployment answering with the new version; then a gate that fails and changes nothing."""

from __future__ import annotations

import time

import pytest

import jupyter_mlops as mlops
from jupyter_mlops.serving.launcher import stop_launcher

from .retraining_helpers import FEATURES, churn_data, train_champion, wait_for
from .serving_helpers import Client, oip_body, processes_mentioning

pytestmark = pytest.mark.slow


def _version(port: int, rows) -> str:
    client = Client(port)  # a new connection: an idle one is closed after 5 s
    try:
        status, _, out = client.post("/v2/models/churn/infer", oip_body(rows))
    finally:
        client.close()
    assert status == 200, out
    return out["model_version"]


def test_drift_alert_retrains_gates_promotes_and_the_deployment_follows(ip, store_dir):
    champion = train_champion(ip)
    deployment = mlops.deploy("churn@production")
    try:
        port = int(deployment.url.rsplit(":", 1)[1])
        mlops.set_monitor("churn@production", window="1h", min_rows=100)
        # The world changes: more calls, and charges now lower churn. New data arrives.
        mlops.snapshot(churn_data(1, 800, -1.0, shift=1.5), "churn_train")
        mlops.snapshot(churn_data(2, 400, -1.0, shift=1.5), "churn_holdout")
        mlops.retrain_policy(
            "churn",
            on="drift",
            data={"df": "churn_train@latest"},
            gate=["accuracy >= champion", "f1 >= 0.7"],
            holdout="churn_holdout@latest",
            cooldown="1h",
        )
        traffic = churn_data(3, 300, -1.0, shift=1.5)[FEATURES]
        for start in range(0, len(traffic), 20):
            assert _version(port, traffic.iloc[start : start + 20]) == "1"
        assert mlops.run_due_policies() == []  # no alert yet
        time.sleep(1.5)  # the deployment writes its inference log once a second
        outcome = mlops.check("churn")
        assert "calls" in [a["subject"] for a in outcome.opened]
        jobs = mlops.run_due_policies()
        assert len(jobs) == 1 and jobs[0].triggers[0]["kind"] == "alert"
        job = jobs[0].wait(180, progress=False)
        assert job.status == "finished" and job.promoted, job.error or str(job.gate)
        assert job.trigger.startswith("alert: #") and "drift" in job.trigger
        assert job.champion == "churn@1" and job.challenger == "churn@2"
        run = mlops.get_run(job.run_id)
        assert run.parent_run_id == champion.run_id and run.tags["trigger"] == job.trigger
        assert mlops.get_model_version("churn@production").version == 2
        rows = traffic.iloc[:5]
        wait_for(lambda: _version(port, rows) == "2", 30)
        # The switch is recorded in the store just after the new model answers.
        wait_for(lambda: deployment.refresh().version == 2, 15)
        # The alert was seen once: the next round starts nothing.
        assert mlops.run_due_policies() == []

        # Variant: a gate the challenger cannot pass. Nothing moves, the deployment stays.
        mlops.retrain_policy(
            "churn",
            on="new_data",
            gate=["accuracy >= 0.999"],
            holdout="churn_holdout@latest",
            cooldown=0,  # the last job's cooldown would hold the trigger otherwise
        )
        mlops.snapshot(churn_data(4, 800, -1.0, shift=1.5), "churn_train")
        jobs = mlops.run_due_policies()
        assert [j.triggers[0]["detail"] for j in jobs] == ["churn_train@v3"]
        job = jobs[0].wait(180, progress=False)
        assert job.status == "finished" and not job.promoted and job.passed is False
        assert job.champion == "churn@2" and job.challenger == "churn@3"
        assert "FAIL accuracy >= 0.999" in "\n".join(line.line for line in job.gate.lines)
        assert mlops.get_model_version("churn@production").version == 2
        time.sleep(1.5)  # a follower would have switched within a second
        assert _version(port, rows) == "2"
    finally:
        mlops.undeploy("churn")
        stop_launcher(store_dir)
    assert processes_mentioning(str(store_dir)) == []
