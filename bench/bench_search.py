"""Benchmark 3: querying runs as a DataFrame over a store of 10,000 runs.

Both stores get the same N runs (10 params and 10 metrics each, ``acc`` uniform in [0, 1]):
jupyter_mlops through its Python API in one process, MLflow through
``MlflowClient.create_run`` + ``log_batch`` + ``set_terminated`` (its fastest client path).
Then, timed:

* filtered: ``mlops.runs(filter="metrics.acc > 0.5", order_by="-metrics.acc", limit=1000)``
  vs ``mlflow.search_runs(filter_string="metrics.acc > 0.5",
  order_by=["metrics.acc DESC"], max_results=1000)``. Target >= 50x, ours < 50 ms.
* everything: ``mlops.runs()`` vs ``mlflow.search_runs()``. Aim: ours < 500 ms.

N = 10,000 (``--quick``: 500). Populating MLflow takes a few minutes.
"""

from __future__ import annotations

import logging
import random
import sys
import time
from pathlib import Path

from _common import emit_part, finish, log, median, ms, now, parser, row, run_part

SCRIPT = "bench_search.py"
FILTER = "metrics.acc > 0.5"


def _values(i: int) -> tuple[dict[str, object], dict[str, float]]:
    rnd = random.Random(i)
    params: dict[str, object] = {f"p{j}": rnd.randint(1, 100) for j in range(4)}
    params.update({f"lr{j}": round(rnd.random(), 6) for j in range(3)})
    params.update({f"opt{j}": rnd.choice(["adam", "sgd", "lbfgs"]) for j in range(3)})
    metrics = {"acc": rnd.random()}
    metrics.update({f"m{j}": rnd.random() for j in range(9)})
    return params, metrics


def _expected(n: int) -> int:
    return sum(1 for i in range(n) if _values(i)[1]["acc"] > 0.5)


def _sizes(quick: bool) -> tuple[int, int, int]:
    """(runs, repetitions of the filtered query, repetitions of the full load) for ours."""
    return (500, 10, 5) if quick else (10_000, 30, 10)


def part_ours(quick: bool) -> None:
    n, reps_f, reps_all = _sizes(quick)
    import jupyter_mlops as mlops

    mlops.open_store(Path.cwd() / "store")
    t0 = now()
    for i in range(n):
        params, metrics = _values(i)
        with mlops.track(f"run-{i}", experiment="bench", capture=False) as run:
            for key, value in params.items():
                run.log_param(key, value)
            for key, value in metrics.items():
                run.log_metric(key, value)
        if i and i % 2000 == 0:
            print(f"ours: {i} runs", file=sys.stderr, flush=True)
    populate = now() - t0

    def filtered():
        return mlops.runs("bench", filter=FILTER, order_by="-metrics.acc", limit=1000)

    def everything():
        return mlops.runs("bench")  # the experiment's runs, as MLflow's experiment_ids=[...]

    frame = filtered()
    assert len(frame) == min(1000, _expected(n)), len(frame)
    assert frame["metrics.acc"].is_monotonic_decreasing
    shape_all = everything().shape
    assert shape_all[0] == n, shape_all
    t_f = []
    for _ in range(reps_f):
        t = now()
        filtered()
        t_f.append(now() - t)
    t_all = []
    for _ in range(reps_all):
        t = now()
        everything()
        t_all.append(now() - t)
    emit_part(
        {
            "n": n,
            "populate_s": round(populate, 1),
            "filtered_ms": ms(median(t_f)),
            "all_ms": ms(median(t_all)),
            "reps_filtered": reps_f,
            "reps_all": reps_all,
            "columns": shape_all[1],
        }
    )


def _mlflow_fill(exp_id: str, start: int, stop: int, who: str) -> None:
    """Log runs ``start..stop-1`` with the client's fastest path, retrying a busy database."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param

    client = MlflowClient()

    def retry(fn, *a, **kw):
        for attempt in range(20):
            try:
                return fn(*a, **kw)
            except Exception as exc:  # SQLite "database is locked" (e.g. a busy disk)
                if "locked" not in str(exc).lower() or attempt == 19:
                    raise
                time.sleep(0.05 * (attempt + 1))
        return None

    t0 = now()
    for i in range(start, stop):
        params, metrics = _values(i)
        ts = int(time.time() * 1000)
        run = retry(client.create_run, exp_id, run_name=f"run-{i}")
        retry(
            client.log_batch,
            run.info.run_id,
            metrics=[Metric(k, v, ts, 0) for k, v in metrics.items()],
            params=[Param(k, str(v)) for k, v in params.items()],
        )
        retry(client.set_terminated, run.info.run_id)
        if (i - start) and (i - start) % 1000 == 0:
            print(f"mlflow ({who}): {i - start} runs, {now() - t0:.0f} s", file=sys.stderr)


def part_mlflow(quick: bool) -> None:
    n, _, _ = _sizes(quick)
    reps_f, reps_all = (3, 2) if quick else (5, 3)
    import mlflow

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    logging.getLogger("alembic").setLevel(logging.ERROR)
    mlflow.set_tracking_uri(f"sqlite:///{Path.cwd() / 'mlflow.db'}")
    exp_id = mlflow.set_experiment("bench").experiment_id
    t0 = now()
    _mlflow_fill(exp_id, 0, n, "one writer")
    populate = now() - t0

    def filtered():
        return mlflow.search_runs(
            experiment_ids=[exp_id],
            filter_string=FILTER,
            order_by=["metrics.acc DESC"],
            max_results=1000,
        )

    def everything():
        return mlflow.search_runs(experiment_ids=[exp_id])

    frame = filtered()
    assert len(frame) == min(1000, _expected(n)), len(frame)
    t_f = []
    for _ in range(reps_f):
        t = now()
        filtered()
        t_f.append(now() - t)
    t_all = []
    shape_all = None
    for _ in range(reps_all):
        t = now()
        shape_all = everything().shape
        t_all.append(now() - t)
    assert shape_all is not None and shape_all[0] == n, shape_all
    emit_part(
        {
            "n": n,
            "populate_s": round(populate, 1),
            "filtered_ms": ms(median(t_f)),
            "all_ms": ms(median(t_all)),
            "reps_filtered": reps_f,
            "reps_all": reps_all,
            "columns": shape_all[1],
        }
    )


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    if args.part == "ours":
        return part_ours(args.quick)
    if args.part == "mlflow":
        return part_mlflow(args.quick)
    started = time.time()
    n = _sizes(args.quick)[0]
    log(f"{SCRIPT}: jupyter_mlops: populating {n} runs and querying ...")
    ours = run_part(SCRIPT, "ours", quick=args.quick)
    log(f"{SCRIPT}: MLflow: populating {n} runs (minutes for 10,000) and querying ...")
    mlf = run_part(SCRIPT, "mlflow", quick=args.quick)
    of, mf = ours["filtered_ms"], mlf["filtered_ms"]
    oa, ma = ours["all_ms"], mlf["all_ms"]
    rows = [
        row(
            f"3. runs(filter, order_by, limit=1000) over {n:,} runs",
            of,
            mf,
            target="≥50× and ours < 50 ms",
            ok=mf / of >= 50 and of < 50,
        ),
        row(
            f"3b. all {n:,} runs as a DataFrame",
            oa,
            ma,
            target="ours < 500 ms",
            ok=oa < 500,
        ),
    ]
    notes = [
        f"same {n:,} runs in both stores (10 params, 10 metrics each); medians over "
        f"{ours['reps_filtered']}/{ours['reps_all']} queries (ours), "
        f"{mlf['reps_filtered']}/{mlf['reps_all']} (MLflow, slower per query)",
        f"populating took {ours['populate_s']:.0f} s for jupyter_mlops (track() per run) and "
        f"{mlf['populate_s']:.0f} s for MLflow (create_run + log_batch + set_terminated)",
        f"DataFrame columns: {ours['columns']} (jupyter_mlops), {mlf['columns']} (MLflow)",
    ]
    if args.quick:
        notes.append("--quick: 500 runs, not the 10,000 of the target")
    finish(SCRIPT, rows, notes, time.time() - started)
    return None


if __name__ == "__main__":
    sys.exit(main())
