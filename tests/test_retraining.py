"""Retraining: gates, jobs in their own processes, policies with a controlled clock."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, mean_squared_error

import jupyter_mlops as mlops
from jupyter_mlops.errors import NotFoundError, ValidationError
from jupyter_mlops.retraining.gate import (
    Candidate,
    Holdout,
    evaluate_gate,
    parse_gate,
)
from jupyter_mlops.retraining.jobs import get_job, submit_job, trigger
from jupyter_mlops.retraining.policy import get_policy, run_due_policies, set_policy_enabled
from jupyter_mlops.store import current_store

from .retraining_helpers import FEATURES, churn_data, new_world, train_champion, wait_for

# -- gates ----------------------------------------------------------------------------------


def _candidate(label: str, model, frame: pd.DataFrame, target: str = "churned") -> Candidate:
    from jupyter_mlops.tracking.estimators import signature

    x, y = frame.drop(columns=target), frame[target]
    return Candidate(label, model, signature(model, x, y), [(f"{label}-train", x)])


def _holdout(frame: pd.DataFrame, target: str = "churned") -> Holdout:
    return Holdout(frame.drop(columns=target), frame[target], "h@v1", "ab" * 32, len(frame), target)


def test_gate_rescores_both_models_on_the_same_holdout():
    old, new = churn_data(0, 500, 1.0), churn_data(1, 500, -1.0)
    holdout = churn_data(2, 300, -1.0)
    champion = LogisticRegression().fit(old[FEATURES], old.churned)
    challenger = LogisticRegression().fit(new[FEATURES], new.churned)
    items = parse_gate(["accuracy >= champion - 0.01", "f1 >= 0.8", "accuracy < 0.5"])
    result = evaluate_gate(
        items,
        _candidate("c@2", challenger, new),
        _candidate("c@1", champion, old),
        _holdout(holdout),
    )
    expected = accuracy_score(holdout.churned, champion.predict(holdout[FEATURES]))
    assert result.scores["champion"]["accuracy"] == pytest.approx(expected)
    assert result.scores["challenger"]["f1"] == pytest.approx(
        f1_score(holdout.churned, challenger.predict(holdout[FEATURES]))
    )
    lines = [line.line for line in result.lines]
    assert lines[0].startswith("PASS inputs match the champion's signature")
    assert lines[1].startswith("PASS no training column entirely missing")
    assert lines[2].startswith("PASS accuracy >= champion - 0.01 (accuracy = 0.9")
    assert f"champion = {expected:.4g}" in lines[2]
    assert lines[3].startswith("PASS f1 >= 0.8")
    assert lines[4].startswith("FAIL accuracy < 0.5")
    assert not result.passed and [f.check for f in result.failures] == ["accuracy < 0.5"]


def test_gate_regression_metrics_string_labels_and_callables():
    rng = np.random.default_rng(0)
    x = pd.DataFrame(rng.normal(size=(400, 3)), columns=["a", "b", "c"])
    frame = x.assign(price=x.a * 3 + rng.normal(size=400))
    model = LinearRegression().fit(frame[["a", "b", "c"]], frame.price)
    cand = _candidate("p@1", model, frame, "price")
    holdout = _holdout(frame.iloc[:100], "price")

    def mae_ok(ctx):
        return ctx.scores["challenger"]["mae"] < 1, "mae ok"

    items = parse_gate(["rmse < 1.2", "r2 > 0.8", "mae < 5", mae_ok])
    result = evaluate_gate(items, cand, None, holdout)
    rmse = mean_squared_error(frame.price[:100], model.predict(frame[["a", "b", "c"]][:100])) ** 0.5
    assert result.scores["challenger"]["rmse"] == pytest.approx(rmse)  # positive, not negated
    assert result.passed, str(result)
    assert "PASS mae_ok (mae ok)" in [line.line for line in result.lines]
    # Labels "yes"/"no": f1 is computed on the second class, not pos_label=1.
    labels = frame.assign(churned=np.where(frame.a > 0, "yes", "no")).drop(columns="price")
    clf = LogisticRegression().fit(labels[["a", "b", "c"]], labels.churned)
    result = evaluate_gate(
        parse_gate(["f1 > 0.9", "precision > 0.9"]),
        _candidate("s@1", clf, labels),
        None,
        _holdout(labels),
    )
    assert result.passed, str(result)


def test_gate_without_champion_passes_no_regression_with_a_note():
    frame = churn_data(0, 300)
    model = LogisticRegression().fit(frame[FEATURES], frame.churned)
    result = evaluate_gate(
        parse_gate(["f1 >= champion"]), _candidate("c@1", model, frame), None, _holdout(frame)
    )
    assert result.passed
    assert "no champion yet" in result.lines[0].detail
    assert "no champion yet, passes as the first model" in result.lines[2].detail


def test_gate_data_checks_schema_and_missing_columns():
    frame = churn_data(0, 300)
    champion = LogisticRegression().fit(frame[FEATURES], frame.churned)
    renamed = frame.rename(columns={"age": "years"})
    other = LogisticRegression().fit(renamed.drop(columns="churned"), renamed.churned)
    result = evaluate_gate(
        [], _candidate("c@2", other, renamed), _candidate("c@1", champion, frame), None
    )
    assert (
        result.lines[0].line
        == "FAIL inputs match the champion's signature (missing age; new years)"
    )
    empty = frame.assign(calls=np.nan)
    cand = _candidate("c@3", champion, empty)
    result = evaluate_gate([], cand, _candidate("c@1", champion, frame), None)
    assert result.lines[1].status == "FAIL" and "calls in c@3-train" in result.lines[1].detail
    # A gate that scores models needs a holdout: a FAIL line that says so, not a crash.
    result = evaluate_gate(
        parse_gate("accuracy > 0.5"), _candidate("c@1", champion, frame), None, None
    )
    assert [line.check for line in result.failures] == ["holdout"]
    assert "pass holdout='name@vN'" in result.failures[0].detail


@pytest.mark.parametrize(
    ("gate", "message"),
    [
        ("acuracy >= 0.9", "unknown metric 'acuracy'. Did you mean accuracy"),
        ("accuracy >=", "does not parse"),
        ("champion > 1", "reads no metric"),
        (42, "must be an expression"),
    ],
)
def test_bad_gates_are_refused_before_anything_runs(gate, message):
    with pytest.raises(ValidationError, match=message):
        parse_gate([gate])


# -- retraining jobs -----------------------------------------------------------------------


def _model_state(name: str = "churn") -> tuple:
    versions = mlops.model_versions(name)
    aliases = {a: mlops.get_model_version(f"{name}@{a}").version for a in ["production"]}
    return len(versions), aliases


def test_retrain_replays_the_champion_on_new_data_gates_and_promotes(ip):
    champion = train_champion(ip)
    new_world()
    job = mlops.retrain(
        "churn",
        data={"df": "churn_train@latest"},
        gate=["accuracy >= champion", "f1 >= 0.8"],
        holdout="churn_holdout@latest",
        timeout=120,
    )
    assert job.status == "finished", job.error
    assert job.promoted and job.passed
    assert (job.champion, job.challenger) == ("churn@1", "churn@2")
    assert mlops.get_model_version("churn@production").version == 2
    run = mlops.get_run(job.run_id)
    assert run.parent_run_id == champion.run_id == job.parent_run_id
    assert run.tags["trigger"] == "manual" and run.tags["mlops.job"] == job.job_id
    from jupyter_mlops.data.versions import resolve

    # The replay read the new data version...
    assert [i["content_hash"] for i in run.inputs if i["name"] == "df"] == [
        resolve("churn_train@v2").content_hash
    ]
    # ...and the holdout is recorded with its exact version, hash and row count.

    assert job.holdout == {
        "ref": "churn_holdout@v1",
        "content_hash": resolve("churn_holdout@v1").content_hash,
        "rows": 400,
        "target": "churned",
        "excluded": 0,
    }
    assert [s["step"] for s in job.steps] == [
        "queued", "champion", "training", "training", "register", "gate", "promoting",
        "promote", "done",
    ]  # fmt: skip
    assert job.gate.scores["challenger"]["accuracy"] > job.gate.scores["champion"]["accuracy"] + 0.2
    events = mlops.model_events("churn")
    kinds = list(events.kind)
    for kind in ("retraining_started", "registered", "alias_moved", "retraining_finished"):
        assert kind in kinds
    moved = events[events.kind == "alias_moved"].iloc[-1]
    assert f"job {job.job_id[:8]}" in moved.reason and "gate passed" in moved.reason
    frame = mlops.retraining_jobs("churn")
    assert frame.iloc[0][["status", "trigger", "challenger", "passed", "promoted"]].tolist() == [
        "finished", "manual", "churn@2", True, True,
    ]  # fmt: skip
    assert "PASS accuracy >= champion" in frame.iloc[0].gate
    html = job._repr_html_()
    assert "promoted" in html and "churn@2" in html and "PASS" in html


def test_failing_gate_registers_the_challenger_but_moves_nothing(ip):
    train_champion(ip)
    new_world()
    job = mlops.retrain(
        "churn", gate=["accuracy >= 0.999"], holdout="churn_holdout@latest", timeout=120
    )
    assert job.status == "finished" and job.passed is False and not job.promoted
    assert job.challenger == "churn@2"
    assert mlops.get_model_version("churn@production").version == 1
    # The rejected challenger leaves @latest and the listings (still loadable by number).
    assert mlops.get_model_version("churn@latest").version == 1
    assert mlops.get_model_version("churn@2").archived
    assert "churn@2 archived" in job.steps[-1]["detail"]
    assert job.gate.failures[0].line.startswith("FAIL accuracy >= 0.999 (accuracy = ")
    # retrain() without data= follows each input's dataset to @latest.
    assert "df=churn_train@latest" in job.steps[2]["detail"]


def test_retrain_without_gate_or_holdout_registers_but_does_not_promote(ip):
    train_champion(ip)
    job = mlops.retrain("churn", timeout=120)
    assert job.status == "finished" and not job.promoted and job.passed is None
    assert job.gate.lines[-1].line == (
        "SKIP compare with the champion (no gate and no holdout given: registered, not promoted)"
    )
    assert job.challenger == "churn@2" and not mlops.get_model_version("churn@2").archived
    assert mlops.get_model_version("churn@production").version == 1


def test_bad_input_is_refused_before_a_job_exists(ip):
    train_champion(ip)
    before = _model_state()
    with pytest.raises(ValidationError, match="unknown metric 'acuracy'"):
        mlops.retrain("churn", gate=["acuracy >= 0.9"])
    with pytest.raises(NotFoundError, match="churn_tran"):
        mlops.retrain("churn", data={"df": "churn_tran@latest"})
    with pytest.raises(NotFoundError):
        mlops.retrain("nochurn")
    with pytest.raises(ValidationError, match="parameters= goes with notebook="):
        mlops.retrain("churn", parameters={"C": 1})
    with pytest.raises(ValidationError, match="needs a holdout"):
        mlops.retrain("churn", gate="accuracy >= champion")
    assert mlops.retraining_jobs().empty
    assert _model_state() == before


def test_replay_that_cannot_resolve_a_name_fails_and_leaves_the_champion(ip):
    mlops.snapshot(churn_data(0, 300), "churn_train")
    ip.run_cell(
        "import jupyter_mlops as mlops\nfrom sklearn.linear_model import LogisticRegression\n"
        "df = mlops.load_data('churn_train@latest')\nglobals()['C'] = 1.0",
        store_history=True,
    ).raise_error()
    # `C` reaches the namespace without an assignment the slice can see: no cell defines it.
    ip.run_cell(
        "%%track --register churn\n"
        "model = LogisticRegression(C=C).fit(df.drop(columns='churned'), df.churned)",
        store_history=True,
    ).raise_error()
    mlops.set_alias("churn", "production", 1)
    job = mlops.retrain("churn", timeout=120)
    assert job.status == "failed" and not job.promoted
    assert "cannot resolve the name 'C'" in job.error
    assert [v for v in mlops.model_versions("churn").version] == [1]
    assert mlops.get_model_version("churn@production").version == 1
    assert "retraining_failed" in list(mlops.model_events("churn").kind)


def test_a_killed_job_is_marked_failed_never_left_running(ip, tmp_path):
    train_champion(ip)
    # A notebook job that sleeps, so the runner can be killed in the middle of it.
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import time\ntime.sleep(60)")]
    path = tmp_path / "slow.ipynb"
    nbformat.write(nb, path)
    job = mlops.retrain("churn", notebook=str(path), wait=False)
    running = wait_for(lambda: (j := get_job(job.job_id)).status == "running" and j, 60)
    time.sleep(0.5)
    row = _pid_of(job.job_id)
    os.killpg(row, signal.SIGKILL)
    wait_for(lambda: _gone(row), 30)
    frame = mlops.retraining_jobs("churn")
    assert frame.iloc[0].status == "failed"
    assert "ended before the job finished" in frame.iloc[0].error
    assert running.status == "running"
    assert mlops.get_model_version("churn@production").version == 1


def _pid_of(job_id: str) -> int:
    import sqlalchemy as sa

    from jupyter_mlops.store import schema

    with current_store().read() as conn:
        return int(
            conn.execute(
                sa.select(schema.retraining_jobs.c.pid).where(
                    schema.retraining_jobs.c.job_id == job_id
                )
            ).scalar()
        )


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    from jupyter_mlops.store.process import _stat

    return (_stat(pid) or [b"Z"])[0] == b"Z"


SUBMIT = """
import sys, time
from jupyter_mlops.retraining.jobs import submit_job, trigger
start = float(sys.argv[2])
while time.time() < start:
    time.sleep(0.001)
job = submit_job("churn", {"notebook": sys.argv[1], "promote": False}, trigger("manual", sys.argv[3]))
print(job.job_id, job.merged)
"""


@pytest.mark.slow
def test_concurrent_triggers_one_runs_one_waits_the_rest_merge(ip, tmp_path):
    train_champion(ip)
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import time\ntime.sleep(3)")]
    path = tmp_path / "slow.ipynb"
    nbformat.write(nb, path)
    first = submit_job(
        "churn", {"notebook": str(path), "promote": False}, trigger("manual", "first")
    )
    wait_for(lambda: get_job(first.job_id).status == "running", 60)
    start = time.time() + 1.5
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", SUBMIT, str(path), str(start), f"p{i}"],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ},
        )
        for i in range(4)
    ]
    outputs = [p.communicate(timeout=60)[0].split() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    waiting = {o[0] for o in outputs}
    assert len(waiting) == 1, outputs  # every trigger went to one waiting job
    assert sorted(o[1] for o in outputs) == ["False", "True", "True", "True"]
    frame = mlops.retraining_jobs("churn")
    assert len(frame) == 2
    assert set(frame.status) <= {"running", "queued", "finished", "failed"}
    queued = get_job(waiting.pop())
    assert sorted(t["detail"] for t in queued.triggers) == ["p0", "p1", "p2", "p3"]
    # The runner takes the waiting job after the first, never two at once.
    done = wait_for(lambda: (j := get_job(queued.job_id)).done and j, 120)
    first = get_job(first.job_id)
    assert first.ended <= done.started
    # These notebooks fit no model: each job fails with that message, nothing promoted.
    assert "recorded no finished run with a model" in done.error


# -- policies ------------------------------------------------------------------------------


def test_policy_validation_is_clear(ip):
    train_champion(ip)
    with pytest.raises(ValidationError, match="Unknown trigger"):
        mlops.retrain_policy("churn", on=["drfit"])
    with pytest.raises(ValidationError, match="not a cron expression"):
        mlops.retrain_policy("churn", on="schedule", schedule="every night")
    with pytest.raises(ValidationError, match="cooldown"):
        mlops.retrain_policy("churn", cooldown="soon")
    with pytest.raises(ValidationError, match="unknown metric"):
        mlops.retrain_policy("churn", gate="acc > 1")
    assert mlops.retraining_policies().empty


def test_policy_triggers_with_a_controlled_clock(ip):
    import datetime as dt

    train_champion(ip)
    t0 = time.time()
    # Daily at the minute 30 minutes from now (UTC), so the scheduled time falls inside
    # the 6 h cooldown of the first job whatever the time of day the test runs.
    at = dt.datetime.fromtimestamp(t0 + 1800, dt.UTC)
    policy = mlops.retrain_policy(
        "churn",
        on=["drift", "new_data", "schedule"],
        schedule=f"{at.minute} {at.hour} * * *",
        data={"df": "churn_train@latest"},
        gate=["accuracy >= champion"],
        holdout=churn_data(9, 200, -1.0),
        cooldown="6h",
    )
    assert policy.watch == ["churn_train"]
    assert policy.spec["holdout"] == "churn/holdout@v1"  # a frame is saved as a data version
    store = current_store()
    # Nothing is due right after creation (old alerts and versions are already seen).
    assert run_due_policies(now=t0 + 1, store=store, start=False) == []
    # A new data version fires once.
    mlops.snapshot(churn_data(1, 600, -1.0), "churn_train")
    jobs = run_due_policies(now=t0 + 2, store=store, start=False)
    assert [(j.triggers[0]["kind"], j.triggers[0]["detail"]) for j in jobs] == [
        ("new_data", "churn_train@v2")
    ]
    assert run_due_policies(now=t0 + 3, store=store, start=False) == []
    # Within the cooldown, a new version waits (pending) instead of starting a job...
    mlops.snapshot(churn_data(3, 600, -1.0), "churn_train")
    assert run_due_policies(now=t0 + 60, store=store, start=False) == []
    assert [p["detail"] for p in get_policy("churn").pending] == ["churn_train@v3"]
    # ...and the schedule fires within the cooldown too, held with it.
    scheduled = get_policy("churn").next_run()
    assert run_due_policies(now=max(scheduled, t0 + 120), store=store, start=False) == []
    # After the cooldown, the pending triggers start one job, merged into the waiting one
    # (the first job never ran here: no runner was started).
    later = max(scheduled, t0) + 6 * 3600 + 1
    jobs = run_due_policies(now=later, store=store, start=False)
    assert len(jobs) == 1 and jobs[0].merged
    kinds = [t["kind"] for t in get_job(jobs[0].job_id).triggers]
    assert kinds == ["new_data", "new_data", "schedule"]
    # Disabled: nothing fires; enabled again, what was seen stays seen.
    set_policy_enabled("churn", False)
    mlops.snapshot(churn_data(4, 600, -1.0), "churn_train")
    assert run_due_policies(now=later + 7 * 3600, store=store, start=False) == []
    set_policy_enabled("churn", True)
    assert len(run_due_policies(now=later + 7 * 3600, store=store, start=False)) == 1
    frame = mlops.retraining_policies()
    assert frame.iloc[0][["model", "enabled", "on"]].tolist() == [
        "churn", True, "drift, new_data, schedule",
    ]  # fmt: skip


def test_policy_fires_on_drift_alerts_not_on_other_kinds(ip):
    from jupyter_mlops.store import schema

    train_champion(ip)
    mlops.retrain_policy("churn", on="drift", holdout=churn_data(9, 200), cooldown=0)
    store = current_store()
    now = time.time()

    def alert(kind: str) -> int:
        with store.write() as conn:
            return conn.execute(
                schema.alerts.insert().values(
                    model_name="churn", kind=kind, subject="x", status="open", message=f"{kind} x",
                    first_seen=now, last_seen=now, occurrences=1,
                )
            ).inserted_primary_key[0]  # fmt: skip

    alert("data_quality")
    assert run_due_policies(now=now + 1, store=store, start=False) == []
    alert_id = alert("feature_drift")
    jobs = run_due_policies(now=now + 2, store=store, start=False)
    assert [j.triggers[0]["alert_id"] for j in jobs] == [alert_id]
    assert jobs[0].trigger.startswith(f"alert: #{alert_id} feature_drift")
    # on any alert: but refused traffic (bad requests) is no reason to retrain
    mlops.retrain_policy("churn", on="alert", holdout=churn_data(9, 200), cooldown=0)
    refused = alert("rejections")
    alert_id = alert("data_quality")
    jobs = run_due_policies(now=now + 3, store=store, start=False)
    fired = [t["alert_id"] for j in jobs for t in j.triggers]
    assert alert_id in fired and refused not in fired


def test_scheduler_once_runs_a_round(ip, store_dir):
    from .conftest import cli

    train_champion(ip)
    mlops.retrain_policy("churn", on="new_data", holdout=churn_data(9, 200, -1.0))
    mlops.snapshot(churn_data(1, 600, -1.0), "churn_train")
    out = cli(store_dir, "scheduler", "--once")
    assert out.returncode == 0, out.stderr
    assert "retrain churn: job" in out.stdout and "new_data: churn_train@v2" in out.stdout

    def finished():
        row = mlops.retraining_jobs("churn").iloc[0]
        return row.to_dict() if row.status in ("finished", "failed") else None

    row = wait_for(finished, 120)
    assert row["status"] == "finished" and row["promoted"], row["error"]


def test_a_promotion_made_while_the_job_ran_is_never_overridden(ip):
    champion = train_champion(ip)
    new_world()
    mlops.register(champion.run_id, "churn")  # churn@2, which a person promotes meanwhile

    def person_promotes_meanwhile(ctx):  # runs inside the job, between its gate and promote
        mlops.set_alias("churn", "production", 2, reason="by hand")
        return True

    job = mlops.retrain(
        "churn",
        gate=["accuracy >= champion", person_promotes_meanwhile],
        holdout="churn_holdout@latest",
        timeout=120,
    )
    assert job.status == "failed" and not job.promoted, job
    assert "churn@production moved to version 2 (expected 1)" in job.error
    assert job.challenger == "churn@3"
    assert mlops.get_model_version("churn@production").version == 2


def test_jobs_are_forked_by_the_stores_warm_launcher_when_it_runs(ip, store_dir):
    from jupyter_mlops.serving.launcher import ensure_launcher, socket_path, stop_launcher
    from jupyter_mlops.store.process import store_env

    from .serving_helpers import processes_mentioning

    train_champion(ip)
    new_world()
    ensure_launcher(store_dir, store_env(current_store()))
    try:
        wait_for(lambda: socket_path(store_dir).exists(), 60)
        job = mlops.retrain("churn", gate="accuracy >= champion", holdout="churn_holdout@v1")
        assert job.status == "finished" and job.promoted, job.error
        log = (store_dir / "serving" / "launcher.log").read_text()
        assert "launched retraining runner of churn" in log
    finally:
        stop_launcher(store_dir)
    wait_for(lambda: processes_mentioning(str(store_dir)) == [], 30)


def test_a_runner_uses_the_interpreter_the_job_asked_for(store_dir, tmp_path):
    from jupyter_mlops.retraining.jobs import _python_for, queue_job

    store = current_store()
    other = tmp_path / "python"
    other.write_text("#!/bin/sh\n")
    other.chmod(0o755)
    store.write_retrying(
        lambda conn: queue_job(conn, "m", {"python": str(other)}, [trigger("manual")])
    )
    assert _python_for("m", store) == str(other)  # e.g. the kernel's environment
    store.write_retrying(
        lambda conn: queue_job(conn, "n", {"python": "/no/such/python"}, [trigger("manual")])
    )
    assert _python_for("n", store) == sys.executable  # not on this machine: this one
