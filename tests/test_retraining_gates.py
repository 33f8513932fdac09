"""Gate functions and recorded metrics in retraining gates.

Gate functions are import paths resolved in the runner's environment, or Python objects
kept in the process that submitted a foreground job: nothing executable is read from the
store (a job row is data anyone with database access can write). ``metrics.NAME`` reads
the value a run recorded; ``champion.metrics.NAME`` the champion run's.
"""

from __future__ import annotations

import getpass
import os
import pickle
import socket
import sys
import textwrap

import pytest
from sklearn.linear_model import LogisticRegression

import jupyter_mlops as mlops
from jupyter_mlops.errors import ConflictError, ValidationError
from jupyter_mlops.retraining.gate import Candidate, evaluate_gate, parse_gate
from jupyter_mlops.retraining.jobs import get_job, queue_job, start_runner, trigger
from jupyter_mlops.store import current_store

from .retraining_helpers import FEATURES, churn_data, new_world, train_champion, wait_for


def _state() -> tuple:
    versions = list(mlops.model_versions("churn").version)
    return versions, mlops.get_model_version("churn@production").version


def _done(job_id: str):
    job = get_job(job_id)
    return job if job.done else None


# -- item 2: no code from the store -----------------------------------------------------


class _Payload:
    """Unpickling this creates the marker file: what an attacker stores as a gate."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('pwned')",))


def test_a_pickled_gate_with_a_forged_author_runs_nothing(ip, tmp_path):
    train_champion(ip)
    new_world()
    before = _state()
    store = current_store()
    marker = tmp_path / "marker"
    digest = store.objects.put(pickle.dumps([_Payload(str(marker))]))
    # A row as someone with write access to the database writes it: the author is the
    # user@host of whoever runs the runner, which is what the old check trusted.
    spec = {
        "python": sys.executable,
        "gate": ["accuracy >= champion"],
        "gate_callables": digest,
        "gate_callables_by": f"{getpass.getuser()}@{socket.gethostname()}",
        "promote": "production",
        "champion": None,
        "register": True,
        "target": None,
        "timeout": None,
        "data": {},
        "holdout": "churn_holdout@v1",
    }
    job_id, _, _ = store.write_retrying(
        lambda conn: queue_job(conn, "churn", spec, [trigger("manual", "crafted")])
    )
    start_runner("churn", store)  # a real detached runner, as a policy or the server starts
    job = wait_for(lambda: _done(job_id), 120)
    assert not marker.exists(), "the stored pickle was executed"
    assert job.status == "failed" and not job.promoted
    assert "never unpickled" in job.error and "'mypkg.gates:fairness_ok'" in job.error
    assert job.run_id is None  # refused before training: nothing replayed
    assert _state() == before


GATES_MODULE = """
import os

def holdout_big_enough(ctx):
    with open(os.environ["GATE_PID_FILE"], "w") as out:
        out.write(str(os.getpid()))
    return len(ctx.holdout.y) >= 100, f"{len(ctx.holdout.y)} rows"

def never(ctx):
    return False, "refuses every model"

answer = 42

def broken(ctx):
    raise RuntimeError("no luck")
"""


@pytest.fixture
def gates_package(tmp_path, monkeypatch):
    """A module ``churn_gates`` on PYTHONPATH (only there: not on this process's
    sys.path), as a team installs its gate functions where runners run."""
    folder = tmp_path / "site"
    folder.mkdir()
    (folder / "churn_gates.py").write_text(textwrap.dedent(GATES_MODULE))
    pid_file = tmp_path / "gate.pid"
    paths = [str(folder), *filter(None, [os.environ.get("PYTHONPATH")])]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(paths))
    monkeypatch.setenv("GATE_PID_FILE", str(pid_file))
    yield pid_file
    sys.modules.pop("churn_gates", None)
    if str(folder) in sys.path:
        sys.path.remove(str(folder))


def test_import_path_gates_run_in_a_detached_runner(ip, gates_package):
    train_champion(ip)
    new_world()
    gate = ["accuracy >= champion", "churn_gates:holdout_big_enough"]
    job = mlops.retrain("churn", gate=gate, holdout="churn_holdout@latest", wait=False)
    assert job.spec["gate"] == gate and "gate_functions" not in job.spec
    job = job.wait(120)
    assert job.status == "finished" and job.promoted, job.error
    lines = [line.line for line in job.gate.lines]
    assert "PASS churn_gates:holdout_big_enough (400 rows)" in lines
    ran_in = int(gates_package.read_text())
    assert ran_in != os.getpid()  # the runner imported and ran it, not this process
    # A failing gate function: the challenger is judged, nothing moves.
    new_world()
    before = mlops.get_model_version("churn@production").version
    job = mlops.retrain(
        "churn", gate=["churn_gates:never", "churn_gates:broken"], holdout="churn_holdout@latest"
    )
    assert job.status == "finished" and not job.promoted and job.passed is False
    lines = [line.line for line in job.gate.lines]
    assert "FAIL churn_gates:never (refuses every model)" in lines
    assert "FAIL churn_gates:broken (raised RuntimeError: no luck)" in lines
    assert mlops.get_model_version("churn@production").version == before


def test_import_path_gates_in_a_runner_forked_by_the_warm_launcher(ip, store_dir, gates_package):
    from jupyter_mlops.serving.launcher import ensure_launcher, socket_path, stop_launcher
    from jupyter_mlops.store.process import store_env

    from .serving_helpers import processes_mentioning

    train_champion(ip)
    new_world()
    # The launcher started before the gates' folder was on PYTHONPATH (its sys.path lacks
    # it); the job's environment has it, and the runner it forks imports from there.
    env = store_env(current_store())
    env["PYTHONPATH"] = os.pathsep.join(env["PYTHONPATH"].split(os.pathsep)[1:])
    ensure_launcher(store_dir, env)
    try:
        wait_for(lambda: socket_path(store_dir).exists(), 60)
        job = mlops.retrain(
            "churn", gate="churn_gates:holdout_big_enough", holdout="churn_holdout@latest"
        )
        assert job.status == "finished" and job.promoted, job.error
        assert (
            "launched retraining runner of churn"
            in (store_dir / "serving" / "launcher.log").read_text()
        )
        assert int(gates_package.read_text()) != os.getpid()
    finally:
        stop_launcher(store_dir)
    wait_for(lambda: processes_mentioning(str(store_dir)) == [], 30)


def test_bad_import_paths_and_stored_callables_are_refused_at_submit(ip, gates_package):
    train_champion(ip)
    new_world()
    before = _state()
    cases = [
        ("nopkg_xyz.gates:fairness_ok", "cannot be imported here.*No module named 'nopkg_xyz'"),
        ("churn_gates:missing", "has no attribute 'missing'.*holdout_big_enough"),
        ("churn_gates:answer", "is not a function"),
        ("churn_gates:", "package.module:function"),
        ("churn-gates:never", "package.module:function"),
    ]
    for path, message in cases:
        with pytest.raises(ValidationError, match=message):
            mlops.retrain("churn", gate=[path], holdout="churn_holdout@latest")

    def fairness_ok(ctx):
        return True

    # A function object cannot go to a detached job or a policy: say to use an import path.
    with pytest.raises(ValidationError, match="import path"):
        mlops.retrain("churn", gate=[fairness_ok], holdout="churn_holdout@latest", wait=False)
    with pytest.raises(ValidationError, match="import path"):
        mlops.retrain_policy("churn", on="drift", gate=[fairness_ok], holdout="churn_holdout@v1")
    from churn_gates import never  # an importable function: the message names its path

    with pytest.raises(ValidationError, match="gate='churn_gates:never'"):
        mlops.retrain_policy("churn", on="drift", gate=[never], holdout="churn_holdout@v1")
    assert mlops.retraining_jobs().empty and mlops.retraining_policies().empty
    assert _state() == before


def test_a_gate_function_object_runs_in_the_submitting_process(ip):
    train_champion(ip)
    new_world()
    seen = []

    def fairness_ok(ctx):
        seen.append((os.getpid(), ctx.challenger.label))
        return True, "fair enough"

    job = mlops.retrain(
        "churn", gate=["accuracy >= champion", fairness_ok], holdout="churn_holdout@latest"
    )
    assert job.status == "finished" and job.promoted, job.error
    assert seen == [(os.getpid(), "churn@2")]
    assert "PASS fairness_ok (fair enough)" in [line.line for line in job.gate.lines]
    assert job.spec["gate_functions"] == ["fairness_ok"]
    # A runner that picks up such a job (its submitter gone) cannot have the function.
    store = current_store()
    job_id, _, _ = store.write_retrying(
        lambda conn: queue_job(conn, "churn", job.spec, [trigger("manual")])
    )
    start_runner("churn", store)
    failed = wait_for(lambda: _done(job_id), 120)
    assert failed.status == "failed" and failed.run_id is None
    assert "fairness_ok" in failed.error and "import path" in failed.error
    # With a job waiting, a job that must run here cannot queue behind it: a clear conflict.
    store.write_retrying(lambda conn: queue_job(conn, "churn", {"x": 1}, [trigger("manual")]))
    jobs = len(mlops.retraining_jobs("churn"))
    with pytest.raises(ConflictError, match="import path"):
        mlops.retrain("churn", gate=[fairness_ok], holdout="churn_holdout@latest")
    assert len(mlops.retraining_jobs("churn")) == jobs


# -- item 10: recorded metrics ------------------------------------------------------------


def _fitted(metrics: dict[str, float], label: str = "c@2") -> Candidate:
    from jupyter_mlops.tracking.estimators import signature

    frame = churn_data(0, 200)
    x, y = frame[FEATURES], frame.churned
    model = LogisticRegression().fit(x, y)
    return Candidate(label, model, signature(model, x, y), [], metrics=metrics)


def test_recorded_metric_gates_need_no_holdout():
    items = parse_gate(
        [
            "metrics.test_accuracy >= 0.9",
            "metrics.test_accuracy >= champion.metrics.test_accuracy - 0.01",
            "metrics.test_accuracy >= champion",
            "metrics.nope > 0",
        ]
    )
    mine, theirs = _fitted({"test_accuracy": 0.93}), _fitted({"test_accuracy": 0.95}, "c@1")
    result = evaluate_gate(items, mine, theirs, None)
    lines = [line.line for line in result.lines]
    assert not any(line.startswith("FAIL holdout") for line in lines)  # none needed
    assert "PASS metrics.test_accuracy >= 0.9 (metrics.test_accuracy = 0.93)" in lines
    note = "recorded by each run, possibly on different data"
    assert (
        "FAIL metrics.test_accuracy >= champion.metrics.test_accuracy - 0.01 "
        f"(metrics.test_accuracy = 0.93, champion.metrics.test_accuracy = 0.95; {note})"
    ) in lines
    assert (
        f"FAIL metrics.test_accuracy >= champion (metrics.test_accuracy = 0.93, "
        f"champion = 0.95; {note})"
    ) in lines
    assert (
        "FAIL metrics.nope > 0 (the challenger c@2 recorded no metric 'nope'; "
        "it recorded: test_accuracy)"
    ) in lines
    assert result.recorded == {
        "challenger": {"test_accuracy": 0.93},
        "champion": {"test_accuracy": 0.95},
    }
    # No champion yet: a comparison with it passes as the first model.
    result = evaluate_gate(items[1:2], mine, None, None)
    assert result.lines[-1].line.startswith(
        "PASS metrics.test_accuracy >= champion.metrics.test_accuracy - 0.01 "
        "(no champion yet, passes as the first model; metrics.test_accuracy = 0.93"
    )
    # A champion whose run did not record it: a FAIL line naming the champion.
    result = evaluate_gate(items[1:2], mine, _fitted({"f1": 0.5}, "c@1"), None)
    assert result.lines[-1].line == (
        "FAIL metrics.test_accuracy >= champion.metrics.test_accuracy - 0.01 "
        "(the champion c@1 recorded no metric 'test_accuracy'; it recorded: f1)"
    )
    with pytest.raises(ValidationError, match=r"'params\.C'.*metrics\.NAME"):
        parse_gate(["params.C > 1"])
    with pytest.raises(ValidationError, match="reads only the champion"):
        parse_gate(["champion.metrics.accuracy > 0.9"])


def test_retrain_gates_on_the_recorded_metric_without_a_holdout(ip):
    train_champion(ip)  # its cell records accuracy
    new_world()
    before = _state()
    # What a replay records is known at submit: the champion's run recorded no 'auc'.
    for gate in ["metrics.auc >= 0.5", "metrics.accuracy >= champion.metrics.auc"]:
        with pytest.raises(ValidationError, match=r"recorded no metric 'auc'.*accuracy"):
            mlops.retrain("churn", gate=gate)
    assert mlops.retraining_jobs().empty and _state() == before
    job = mlops.retrain(
        "churn",
        data={"df": "churn_train@latest"},
        gate=["metrics.accuracy >= 0.8", "metrics.accuracy >= champion.metrics.accuracy - 0.2"],
        timeout=120,
    )
    assert job.status == "finished" and job.promoted, (job.error, job.gate and str(job.gate))
    assert job.holdout is None
    recorded = mlops.get_run(job.run_id).metrics["accuracy"]
    assert job.gate.recorded["challenger"] == {"accuracy": pytest.approx(recorded)}
    line = next(line for line in job.gate.lines if "champion.metrics" in line.check)
    assert "possibly on different data" in line.detail
    assert mlops.get_model_version("churn@production").version == 2
    # A policy takes the same gates (checked at submit the same way).
    with pytest.raises(ValidationError, match="recorded no metric 'auc'"):
        mlops.retrain_policy("churn", on="drift", gate="metrics.auc > 0")
    policy = mlops.retrain_policy("churn", on="drift", gate="metrics.accuracy >= 0.8")
    assert policy.spec["gate"] == ["metrics.accuracy >= 0.8"] and policy.spec["holdout"] is None


def test_the_signature_line_accepts_a_numeric_widening_and_refuses_a_type_change():
    """int64 → float64 (a column that gained a missing value) takes the same requests; a
    number that became text does not."""
    from jupyter_mlops.retraining.gate import Candidate, evaluate_gate

    def candidate(dtypes: dict[str, str]) -> Candidate:
        inputs = [{"name": k, "dtype": v} for k, v in dtypes.items()]
        return Candidate(label="m", model=None, signature={"inputs": inputs}, training=[])

    champion = candidate({"age": "int64", "plan": "object"})
    widened = evaluate_gate([], candidate({"age": "float64", "plan": "object"}), champion, None)
    line = widened.lines[0]
    assert line.status == "PASS" and "age int64→float64" in line.detail
    retyped = evaluate_gate([], candidate({"age": "object", "plan": "object"}), champion, None)
    assert retyped.lines[0].status == "FAIL" and "dtype age int64→object" in retyped.lines[0].detail
