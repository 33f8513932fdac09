"""Benchmark 2: logging one run with 10 params and 10 metrics through the Python API.

* jupyter_mlops: ``with mlops.track(name, capture=False) as run:`` then ``run.log_param``
  x10 and ``run.log_metric`` x10 (committed when the block exits); also with the default
  ``capture=True`` and with the working folder inside a git work tree (the run records the
  commit), for information.
* MLflow: ``with mlflow.start_run():`` + ``mlflow.log_params`` + ``mlflow.log_metrics``
  against a SQLite tracking store.

Store creation and imports are done before timing. Target: >= 10x faster.
"""

from __future__ import annotations

import logging
import os
import random
import subprocess
import sys
import time
from pathlib import Path

from _common import emit_part, finish, log, median, ms, now, parser, row, run_part

SCRIPT = "bench_log_api.py"


def _values(i: int) -> tuple[dict[str, object], dict[str, float]]:
    rnd = random.Random(i)
    params: dict[str, object] = {f"p{j}": rnd.randint(1, 100) for j in range(4)}
    params.update({f"lr{j}": rnd.random() for j in range(3)})
    params.update({f"opt{j}": rnd.choice(["adam", "sgd", "lbfgs"]) for j in range(3)})
    metrics = {f"m{j}": rnd.random() for j in range(10)}
    return params, metrics


def part_ours(quick: bool) -> None:
    reps = 30 if quick else 200
    t0 = now()
    import jupyter_mlops as mlops

    import_s = now() - t0
    mlops.open_store(Path.cwd() / "store")

    def one(i: int, capture: bool) -> float:
        params, metrics = _values(i)
        t = now()
        with mlops.track(f"run-{i}", experiment="bench", capture=capture) as run:
            for key, value in params.items():
                run.log_param(key, value)
            for key, value in metrics.items():
                run.log_metric(key, value)
        return now() - t

    first = one(-1, False)  # creates the store
    for i in range(10):
        one(i, False)
    plain = [one(i, False) for i in range(reps)]
    captured = [one(i, True) for i in range(reps // 2)]
    repo = Path.cwd() / "gitrepo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    (repo / "README").write_text("x\n")
    subprocess.run(["git", "add", "README"], cwd=repo, check=True)
    subprocess.run(
        ["git", "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "x"],
        cwd=repo,
        check=True,
    )
    os.chdir(repo)
    one(-2, False)
    in_git = [one(i, False) for i in range(reps // 2)]
    n = len(mlops.runs(experiment="bench"))
    emit_part(
        {
            "import_ms": ms(import_s),
            "first_run_ms": ms(first),
            "capture_false_ms": ms(median(plain)),
            "capture_true_ms": ms(median(captured)),
            "in_git_ms": ms(median(in_git)),
            "reps": reps,
            "runs_recorded": n,
        }
    )


def part_mlflow(quick: bool) -> None:
    reps = 8 if quick else 40
    t0 = now()
    import mlflow

    import_s = now() - t0
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    logging.getLogger("alembic").setLevel(logging.ERROR)
    mlflow.set_tracking_uri(f"sqlite:///{Path.cwd() / 'mlflow.db'}")
    t0 = now()
    mlflow.set_experiment("bench")
    create_s = now() - t0

    def one(i: int) -> float:
        params, metrics = _values(i)
        t = now()
        with mlflow.start_run(run_name=f"run-{i}"):
            mlflow.log_params(params)
            mlflow.log_metrics(metrics)
        return now() - t

    for i in range(3):
        one(i)
    times = [one(i) for i in range(reps)]
    n = len(mlflow.search_runs())
    emit_part(
        {
            "import_ms": ms(import_s),
            "create_store_ms": ms(create_s),
            "run_ms": ms(median(times)),
            "reps": reps,
            "runs_recorded": n,
        }
    )


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    if args.part == "ours":
        return part_ours(args.quick)
    if args.part == "mlflow":
        return part_mlflow(args.quick)
    started = time.time()
    log(f"{SCRIPT}: jupyter_mlops runs ...")
    ours = run_part(SCRIPT, "ours", quick=args.quick)
    log(f"{SCRIPT}: MLflow runs ...")
    mlf = run_part(SCRIPT, "mlflow", quick=args.quick)
    o, m = ours["capture_false_ms"], mlf["run_ms"]
    rows = [
        row(
            "2. run with 10 params + 10 metrics (capture=False)",
            o,
            m,
            target="≥10×",
            ok=m / o >= 10,
        ),
        row(
            "2b. same, default track() (capture=True)", ours["capture_true_ms"], m, target="(info)"
        ),
        row("2c. same, capture=False, cwd in a git repo", ours["in_git_ms"], m, target="(info)"),
    ]
    notes = [
        f"medians over {ours['reps']} runs (capture=False), {ours['reps'] // 2} (capture=True, "
        f"and in a git repo) for jupyter_mlops; {mlf['reps']} runs for MLflow (slower per run)",
        f"not counted: import jupyter_mlops {ours['import_ms']:.0f} ms, its first run incl. store "
        f"creation {ours['first_run_ms']:.0f} ms; import mlflow {mlf['import_ms']:.0f} ms, "
        f"set_experiment creating the SQLite store {mlf['create_store_ms']:.0f} ms",
        "MLflow's fluent start_run reads the git commit of the script's repo (bench/ is in one); "
        "row 2c puts jupyter_mlops' working folder in a git repo so it records a commit too",
    ]
    finish(SCRIPT, rows, notes, time.time() - started)
    return None


if __name__ == "__main__":
    sys.exit(main())
