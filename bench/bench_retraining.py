"""Benchmark: automated retraining: what a retraining job costs end to end, where the time
goes, and the pieces the scheduler runs on every round. No anchor tool: MLflow has no
retraining jobs or gates.

Set-up, in a temporary store: ``churn_train@v1`` (5,000 rows, 4 numeric features and a
binary label), a champion trained from it in a real IPython shell (``%%track --register
churn``: split, LogisticRegression, accuracy; production → 1), then ``churn_train@v2``
(the label's relation to one feature flipped) and ``churn_holdout@v1`` (2,000 rows).

* (a) ``mlops.retrain("churn", data=..., gate=["accuracy >= champion"], holdout=...)`` end
  to end: it queues a job, spawns a runner process, replays the champion's run on the new
  data, registers the challenger, scores both models on the holdout and moves the alias.
  The job's ``steps`` (each with a time) split it into runner start-up, training, register,
  gate and promote. production is reset to 1 before each repetition, so every job does the
  same work.
* (b) ``mlops.replay`` of the champion's run in this (warm) process: training without the
  new process, for comparison with (a)'s training step.
* (c) the gate alone (``parse_gate`` + ``evaluate_gate``) on a 100,000-row holdout, two
  fitted LogisticRegressions, metrics accuracy, f1 and roc_auc.
* (d) ``run_due_policies(start=False)`` with 100 policies and nothing due: the cost the
  server's loop and ``jupyter-mlops scheduler`` pay every round.
"""

from __future__ import annotations

import os
import time
from typing import Any

from _common import emit_part, finish, log, median, ms, now, parser, row, run_part
from _shell import new_shell

SCRIPT = "bench_retraining.py"
FEATURES = ["tenure", "charges", "calls", "age"]
TRAIN_ROWS = 5_000
HOLDOUT_ROWS = 2_000
GATE_ROWS = 100_000
POLICIES = 100
GATE = ["accuracy >= champion"]
GATE_ALONE = ["accuracy >= champion", "f1 >= champion - 0.01", "roc_auc >= 0.5"]

SETUP_CELL = """\
import jupyter_mlops as mlops
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
df = mlops.load_data('churn_train@latest')
"""

TRAIN_CELL = """%%track --register churn
X_train, X_test, y_train, y_test = train_test_split(
    df.drop(columns="churned"), df.churned, random_state=0
)
model = LogisticRegression(max_iter=1000).fit(X_train, y_train)
accuracy = model.score(X_test, y_test)
"""

# The job's steps in order, and the name of the phase that ends at each.
PHASES = [
    ("champion", "start-up"),  # queued → champion: spawn the runner, imports, claim the job
    ("training", "training"),  # champion → replay finished (the last "training" step)
    ("register", "register"),
    ("gate", "gate"),
    ("promote", "promote"),
    ("done", "finish"),
]


def churn_data(seed: int, rows: int, weight: float = 1.0) -> Any:
    """``churned`` depends on tenure and on charges with ``weight`` (as in the tests)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, len(FEATURES)))
    y = (x[:, 0] + weight * x[:, 1] + 0.3 * rng.normal(size=rows)) > 0
    frame = pd.DataFrame(x, columns=FEATURES)
    frame["churned"] = y.astype(int)
    return frame


def _cell(ip: Any, code: str) -> None:
    result = ip.run_cell(code, store_history=True)
    result.raise_error()


def _phases(steps: list[dict[str, Any]]) -> dict[str, float]:
    """Seconds per phase of one job, from its audit steps (the last step of each name)."""
    at: dict[str, float] = {}
    for step in steps:
        at[step["step"]] = float(step["time"])
    out: dict[str, float] = {}
    previous = at["queued"]
    for step, phase in PHASES:
        if step in at:
            out[phase] = at[step] - previous
            previous = at[step]
    out["in job"] = at.get("done", previous) - at["queued"]
    return out


def _wait_for_runner(job_id: str, timeout: float = 120.0) -> None:
    """Wait until the runner process that ran ``job_id`` has exited (and reap it)."""
    import sqlalchemy as sa

    from jupyter_mlops.store import current_store, schema
    from jupyter_mlops.store.process import is_alive

    jobs = schema.retraining_jobs
    with current_store().read() as conn:
        r = conn.execute(
            sa.select(jobs.c.host, jobs.c.pid, jobs.c.proc_start).where(jobs.c.job_id == job_id)
        ).one()
    deadline = time.monotonic() + timeout
    while is_alive(r.host, r.pid, r.proc_start) and time.monotonic() < deadline:
        time.sleep(0.05)
    try:  # the runner is our child (a session of its own): reap it
        os.waitpid(r.pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _retrain(reps: int) -> dict[str, Any]:
    """(a): retrain end to end, production reset to 1 before each repetition."""
    import jupyter_mlops as mlops

    total: list[float] = []
    phases: dict[str, list[float]] = {}
    for i in range(reps):
        mlops.set_alias("churn", "production", 1)
        t = now()
        job = mlops.retrain(
            "churn",
            data={"df": "churn_train@latest"},
            gate=GATE,
            holdout="churn_holdout@latest",
            timeout=600,
        )
        total.append(now() - t)
        _wait_for_runner(job.job_id)
        if job.status != "finished" or not job.promoted:
            raise RuntimeError(f"retraining job {job.job_id[:8]} {job.status}: {job.error}")
        for phase, seconds in _phases(job.steps).items():
            phases.setdefault(phase, []).append(seconds)
        log(f"{SCRIPT}: retrain {i + 1}/{reps}: {total[-1]:.2f} s, {job.challenger}")
    return {
        "retrain_ms": ms(median(total)),
        "retrain_all_ms": [ms(s) for s in total],
        "phases_ms": {k: ms(median(v)) for k, v in phases.items()},
    }


def _replay(run_id: str, reps: int) -> float:
    """(b): seconds of an in-process replay of the champion's run (median, after one)."""
    import jupyter_mlops as mlops

    mlops.replay(run_id, data={"df": "churn_train@latest"})
    times = []
    for _ in range(reps):
        t = now()
        run = mlops.replay(run_id, data={"df": "churn_train@latest"})
        times.append(now() - t)
        assert run.status == "finished", run.error
    return median(times)


def _gate(reps: int) -> dict[str, float]:
    """(c): the gate alone on a 100,000-row holdout (median of parse and of evaluate)."""
    from sklearn.linear_model import LogisticRegression

    from jupyter_mlops.retraining.gate import Candidate, Holdout, evaluate_gate, parse_gate
    from jupyter_mlops.tracking.estimators import signature

    old, new = churn_data(10, TRAIN_ROWS, 1.0), churn_data(11, TRAIN_ROWS, -1.0)
    frame = churn_data(12, GATE_ROWS, -1.0)
    holdout = Holdout(frame[FEATURES], frame.churned, "h@v1", "ab" * 32, len(frame), "churned")

    def candidate(label: str, data: Any) -> Candidate:
        x, y = data[FEATURES], data.churned
        model = LogisticRegression(max_iter=1000).fit(x, y)
        return Candidate(label, model, signature(model, x, y), [(f"{label}-train", x)])

    champion, challenger = candidate("churn@1", old), candidate("churn@2", new)
    parse_gate(GATE_ALONE)
    evaluate_gate(parse_gate(GATE_ALONE), challenger, champion, holdout)  # scorers imported
    parse, evaluate = [], []
    for _ in range(reps):
        t = now()
        items = parse_gate(GATE_ALONE)
        parse.append(now() - t)
        t = now()
        result = evaluate_gate(items, challenger, champion, holdout)
        evaluate.append(now() - t)
    assert result.passed, str(result)
    return {"parse_ms": ms(median(parse)), "evaluate_ms": ms(median(evaluate))}


def _policies(run_id: str, reps: int) -> dict[str, float]:
    """(d): 100 models with a policy each; run_due_policies with nothing due."""
    import jupyter_mlops as mlops
    from jupyter_mlops.retraining.policy import run_due_policies

    t = now()
    for i in range(POLICIES):
        mlops.register(run_id, f"m{i}")
        mlops.retrain_policy(f"m{i}", on=["drift", "new_data"], holdout="churn_holdout@v1")
    setup = now() - t
    run_due_policies(now=time.time(), start=False)
    times = []
    for _ in range(reps):
        t = now()
        fired = run_due_policies(now=time.time(), start=False)
        times.append(now() - t)
        assert fired == [], fired
    return {"policies_ms": ms(median(times)), "policies_setup_ms": ms(setup)}


def part_ours(quick: bool) -> None:
    import jupyter_mlops as mlops

    # A plain InteractiveShell, as the other benches use: IPython.testing.globalipapp (what
    # the tests use) imports pytest, which the bench venv does not have.
    ip = new_shell()
    _cell(ip, "%load_ext jupyter_mlops")
    t = now()
    mlops.snapshot(churn_data(0, TRAIN_ROWS, 1.0), "churn_train")
    _cell(ip, SETUP_CELL)
    _cell(ip, TRAIN_CELL)
    mlops.set_alias("churn", "production", 1)
    champion = mlops.get_model_version("churn@production")
    mlops.snapshot(churn_data(1, TRAIN_ROWS, -1.0), "churn_train")
    mlops.snapshot(churn_data(2, HOLDOUT_ROWS, -1.0), "churn_holdout")
    log(f"{SCRIPT}: champion {champion.ref} trained in {now() - t:.1f} s")
    out: dict[str, Any] = {}
    out.update(_retrain(1 if quick else 3))
    # The same with the store's warm launcher running (what %load_ext starts in a project
    # with registered models, and the first deploy): the runner is forked, not started.
    from jupyter_mlops.serving.launcher import ensure_launcher, socket_path, stop_launcher
    from jupyter_mlops.store import current_store
    from jupyter_mlops.store.process import store_env

    store = current_store()
    ensure_launcher(store.home, store_env(store))
    deadline = time.monotonic() + 120
    while not socket_path(store.home).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        warm = _retrain(1 if quick else 3)
    finally:
        stop_launcher(store.home)
    out["warm_retrain_ms"] = warm["retrain_ms"]
    out["warm_phases_ms"] = warm["phases_ms"]
    log(f"{SCRIPT}: replay in this process ...")
    out["replay_ms"] = ms(_replay(champion.run_id, 2 if quick else 5))
    log(f"{SCRIPT}: gate on {GATE_ROWS:,} rows ...")
    out.update(_gate(3 if quick else 7))
    log(f"{SCRIPT}: {POLICIES} policies ...")
    out.update(_policies(champion.run_id, 5 if quick else 20))
    out["reps"] = {
        "retrain": 1 if quick else 3,
        "replay": 2 if quick else 5,
        "gate": 3 if quick else 7,
        "policies": 5 if quick else 20,
    }
    emit_part(out)


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    if args.part == "ours":
        return part_ours(args.quick)
    started = time.time()
    log(f"{SCRIPT}: training a champion, then retraining it ...")
    ours = run_part(SCRIPT, "ours", quick=args.quick, env_extra={"TQDM_DISABLE": "1"})
    phases = ours["phases_ms"]
    reps = ours["reps"]
    rows = [
        row(
            "retrain: mlops.retrain() end to end (runner process)",
            ours["retrain_ms"],
            None,
            target="(info)",
        ),
        *(
            row(f"  retrain step: {phase}", phases[phase], None, target="(info)")
            for _, phase in PHASES
            if phase in phases
        ),
        row("  retrain: queued → done (in the job)", phases["in job"], None, target="(info)"),
        row(
            "retrain: end to end, runner forked by the warm launcher",
            ours["warm_retrain_ms"],
            None,
            target="(info)",
        ),
        *(
            row(
                f"  warm retrain step: {phase}",
                ours["warm_phases_ms"][phase],
                None,
                target="(info)",
            )
            for _, phase in PHASES
            if phase in ours["warm_phases_ms"]
        ),
        row(
            "retrain: mlops.replay() of the champion, in process",
            ours["replay_ms"],
            None,
            target="(info: vs training step)",
        ),
        row(
            f"gate: evaluate_gate, {GATE_ROWS:,}-row holdout, 3 metrics",
            ours["evaluate_ms"],
            None,
            target="(info)",
        ),
        row("gate: parse_gate (3 expressions)", ours["parse_ms"], None, target="(info)"),
        row(
            f"run_due_policies, {POLICIES} policies, none due",
            ours["policies_ms"],
            None,
            target="(info: every loop round)",
        ),
    ]
    notes = [
        f"retrain: median of {reps['retrain']} job(s) ({', '.join(f'{v:.0f}' for v in ours['retrain_all_ms'])} ms); "
        f"{TRAIN_ROWS:,} training rows, {HOLDOUT_ROWS:,} holdout rows, gate {GATE}; "
        "end to end includes checking the spec, queueing, and mlops.retrain's 0.2 s polling",
        "retrain steps from the job's audit times: start-up = queued → champion (spawn the "
        "runner, its imports, claim); training = the replay in the runner (cold imports "
        "included), compare with the in-process replay",
        f"replay: median of {reps['replay']} after one; gate: median of {reps['gate']} after "
        f"one, metrics accuracy, f1, roc_auc; run_due_policies: median of {reps['policies']} "
        f"calls (start=False; setting up {POLICIES} models + policies took "
        f"{ours['policies_setup_ms'] / 1000:.1f} s)",
    ]
    finish(SCRIPT, rows, notes, time.time() - started)
    return None


if __name__ == "__main__":
    main()
