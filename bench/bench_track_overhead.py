"""Benchmark 1: what tracking adds to a training cell.

A cell splits load_breast_cancer (as a DataFrame), fits LogisticRegression and scores it
with accuracy_score. We time it untracked and tracked, interleaved, in one warm IPython
shell, and report median(tracked) - median(untracked):

* jupyter_mlops: ``%%track baseline`` on the cell (params, metrics, data fingerprints,
  model saved with skops, code slice, environment, run card displayed);
* MLflow: the same cell with ``mlflow.sklearn.autolog()`` on (default: logs the model),
  and with ``autolog(log_models=False)``, against a SQLite tracking store.

Target: ours <= 1/10 of MLflow autolog's overhead, and under 30 ms.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

from _common import emit_part, finish, log, median, ms, now, parser, row, run_part
from _shell import SETUP_CELL, TRAIN_CELL, new_shell, run

SCRIPT = "bench_track_overhead.py"


def _interleaved(ip, plain: str, tracked: str, reps: int) -> tuple[list[float], list[float]]:
    """(untracked times, tracked times), alternating which one goes first."""
    untracked, tracked_t = [], []
    for i in range(reps):
        if i % 2:
            tracked_t.append(run(ip, tracked))
            untracked.append(run(ip, plain))
        else:
            untracked.append(run(ip, plain))
            tracked_t.append(run(ip, tracked))
    return untracked, tracked_t


def part_ours(quick: bool) -> None:
    reps, warm = (8, 2) if quick else (30, 4)
    ip = new_shell()
    run(ip, SETUP_CELL)
    t0 = now()
    run(ip, "%load_ext jupyter_mlops")
    load_ext = now() - t0
    tracked_cell = "%%track baseline -e bench\n" + TRAIN_CELL
    _interleaved(ip, TRAIN_CELL, tracked_cell, warm)
    untracked, tracked = _interleaved(ip, TRAIN_CELL, tracked_cell, reps)
    import jupyter_mlops as mlops

    n_runs = len(mlops.runs(experiment="bench"))
    emit_part(
        {
            "load_ext_ms": ms(load_ext),
            "untracked_ms": ms(median(untracked)),
            "tracked_ms": ms(median(tracked)),
            "overhead_ms": ms(median(tracked) - median(untracked)),
            "paired_ms": ms(median([t - u for u, t in zip(untracked, tracked, strict=True)])),
            "reps": reps,
            "runs_recorded": n_runs,
        }
    )


def part_mlflow(quick: bool) -> None:
    reps_models, reps_nomodels, warm = (3, 5, 1) if quick else (12, 30, 2)
    ip = new_shell()
    run(ip, SETUP_CELL)
    t0 = now()
    import mlflow
    import mlflow.sklearn

    import_s = now() - t0
    for name in ("mlflow", "alembic", "git", "urllib3"):
        logging.getLogger(name).setLevel(logging.ERROR)
    mlflow.set_tracking_uri(f"sqlite:///{Path.cwd() / 'mlflow.db'}")
    mlflow.set_experiment("bench")
    out: dict[str, float | int] = {"import_ms": ms(import_s)}
    for label, kwargs, reps in (
        ("autolog", {}, reps_models),
        ("autolog_nomodels", {"log_models": False}, reps_nomodels),
    ):
        ip.user_ns["_autolog_kwargs"] = kwargs
        on = "import mlflow.sklearn\nmlflow.sklearn.autolog(silent=True, **_autolog_kwargs)"
        off = "mlflow.sklearn.autolog(disable=True, silent=True)"
        ip.user_ns["mlflow"] = mlflow
        untracked: list[float] = []
        tracked: list[float] = []
        for i in range(warm + reps):
            order = (False, True) if i % 2 == 0 else (True, False)
            for autolog in order:
                run(ip, on if autolog else off)
                elapsed = run(ip, TRAIN_CELL)
                if i >= warm:
                    (tracked if autolog else untracked).append(elapsed)
        run(ip, off)
        out[f"{label}_untracked_ms"] = ms(median(untracked))
        out[f"{label}_tracked_ms"] = ms(median(tracked))
        out[f"{label}_overhead_ms"] = ms(median(tracked) - median(untracked))
        diffs = [t - u for u, t in zip(untracked, tracked, strict=True)]
        out[f"{label}_paired_ms"] = ms(median(diffs))
        out[f"{label}_reps"] = reps
    out["runs_recorded"] = len(mlflow.search_runs(search_all_experiments=True))
    emit_part(out)


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    if args.part == "ours":
        return part_ours(args.quick)
    if args.part == "mlflow":
        return part_mlflow(args.quick)
    started = time.time()
    log(f"{SCRIPT}: jupyter_mlops %%track overhead ...")
    ours = run_part(SCRIPT, "ours", quick=args.quick)
    log(f"{SCRIPT}: MLflow autolog overhead (slow: logs a model per fit) ...")
    mlf = run_part(SCRIPT, "mlflow", quick=args.quick)
    o = ours["overhead_ms"]
    a, b = mlf["autolog_overhead_ms"], mlf["autolog_nomodels_overhead_ms"]
    rows = [
        row(
            "1. %%track overhead vs mlflow.sklearn.autolog()",
            o,
            a,
            target="≥10× and ours < 30 ms",
            ok=(a / o >= 10 if o > 0 else True) and o < 30,
        ),
        row(
            "1b. %%track overhead vs autolog(log_models=False)",
            o,
            b,
            target="(info)",
        ),
        row("1c. the untracked cell itself", ours["untracked_ms"], mlf["autolog_untracked_ms"]),
    ]
    notes = [
        f"medians over {ours['reps']} tracked + {ours['reps']} untracked cells for jupyter_mlops, "
        f"{mlf['autolog_reps']} (autolog, scaled down: it logs a model per fit) and "
        f"{mlf['autolog_nomodels_reps']} (log_models=False) for MLflow, interleaved, after warm-up",
        f"ours: tracked cell {ours['tracked_ms']:.1f} ms vs untracked {ours['untracked_ms']:.1f} "
        f"ms; {ours['runs_recorded']} runs recorded; %load_ext took {ours['load_ext_ms']:.0f} ms",
        "median of paired differences (tracked - untracked, adjacent cells): "
        f"ours {ours['paired_ms']:.1f} ms, autolog {mlf['autolog_paired_ms']:.0f} ms, "
        f"log_models=False {mlf['autolog_nomodels_paired_ms']:.0f} ms",
        f"MLflow autolog: tracked {mlf['autolog_tracked_ms']:.0f} ms vs untracked "
        f"{mlf['autolog_untracked_ms']:.1f} ms; log_models=False: tracked "
        f"{mlf['autolog_nomodels_tracked_ms']:.1f} ms; import mlflow took "
        f"{mlf['import_ms']:.0f} ms (not counted)",
    ]
    finish(SCRIPT, rows, notes, time.time() - started)
    return None


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    sys.exit(main())
