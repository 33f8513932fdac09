"""Benchmark 5: the first tracked cell in a new folder, store creation included.

Each sample is a fresh process in a fresh temporary folder, with scikit-learn and pandas
imported and the data loaded before anything is timed; the training cell of benchmark 1
is run untracked first (warm-up, then the baseline time).

* jupyter_mlops: time ``%load_ext jupyter_mlops``, then the first ``%%track`` cell (which
  creates ``mlops.db`` and ``objects/``) minus the untracked cell. Run twice: right after
  ``%load_ext`` (the background warm-up thread is still importing), and after a 2 s pause.
* MLflow: on a new SQLite store (``sqlite:///.../mlflow.db``), after ``import mlflow``
  (timed apart), time ``set_experiment`` + ``start_run`` + ``log_param`` + ``log_metric``
  + ``end_run``.

Medians over 7 processes per variant (``--quick``: 2). Target: ours <= 1/10 of MLflow.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

from _common import emit_part, finish, log, median, ms, now, parser, row, run_part
from _shell import SETUP_CELL, TRAIN_CELL, new_shell, run

SCRIPT = "bench_first_cell.py"
PAUSE_S = 2.0


def part_ours(pause: float) -> None:
    ip = new_shell()
    run(ip, SETUP_CELL)
    run(ip, TRAIN_CELL)
    baseline = median([run(ip, TRAIN_CELL) for _ in range(3)])
    home = Path(os.environ["MLOPS_HOME"])
    assert not home.exists()
    load_ext = run(ip, "%load_ext jupyter_mlops")
    if pause:
        time.sleep(pause)
    first = run(ip, "%%track first -e bench\n" + TRAIN_CELL)
    assert (home / "mlops.db").exists()
    second = run(ip, "%%track second -e bench\n" + TRAIN_CELL)
    emit_part(
        {
            "baseline_ms": ms(baseline),
            "load_ext_ms": ms(load_ext),
            "first_ms": ms(first),
            "first_overhead_ms": ms(first - baseline),
            "second_overhead_ms": ms(second - baseline),
        }
    )


def part_mlflow() -> None:
    ns: dict[str, object] = {}
    exec(SETUP_CELL, ns)
    t0 = now()
    import mlflow

    import_s = now() - t0
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    logging.getLogger("alembic").setLevel(logging.ERROR)
    db = Path.cwd() / "new-folder" / "mlflow.db"
    db.parent.mkdir()
    mlflow.set_tracking_uri(f"sqlite:///{db}")

    def first_run() -> None:
        mlflow.set_experiment("bench")
        mlflow.start_run(run_name="first")
        mlflow.log_param("max_iter", 200)
        mlflow.log_metric("accuracy", 0.95)
        mlflow.end_run()

    t0 = now()
    first_run()
    first = now() - t0
    assert db.exists()
    t0 = now()
    first_run()
    second = now() - t0
    emit_part({"import_ms": ms(import_s), "first_ms": ms(first), "second_ms": ms(second)})


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    if args.part == "ours":
        return part_ours(float(args.arg or 0))
    if args.part == "mlflow":
        return part_mlflow()
    started = time.time()
    n = 2 if args.quick else 7
    samples: dict[str, list[dict[str, float]]] = {}
    for i in range(n):
        log(f"{SCRIPT}: fresh processes, round {i + 1}/{n} ...")
        samples.setdefault("now", []).append(run_part(SCRIPT, "ours", quick=args.quick, arg="0"))
        samples.setdefault("pause", []).append(
            run_part(SCRIPT, "ours", quick=args.quick, arg=str(PAUSE_S))
        )
        samples.setdefault("mlflow", []).append(run_part(SCRIPT, "mlflow", quick=args.quick))

    def med(kind: str, key: str) -> float:
        return round(median([s[key] for s in samples[kind]]), 3)

    o_now, o_pause = med("now", "first_overhead_ms"), med("pause", "first_overhead_ms")
    m_first, m_import = med("mlflow", "first_ms"), med("mlflow", "import_ms")
    ext = med("now", "load_ext_ms")
    rows = [
        row(
            "5. first %%track cell in a new folder (right after %load_ext)",
            o_now,
            m_first,
            target="≥10×",
            ok=m_first / o_now >= 10,
        ),
        row(
            f"5b. same, {PAUSE_S:g} s pause after %load_ext",
            o_pause,
            m_first,
            target="≥10×",
            ok=m_first / o_pause >= 10,
        ),
        row("5c. %load_ext jupyter_mlops vs import mlflow", ext, m_import, target="(info)"),
        row(
            "5d. %load_ext + first cell vs import mlflow + first run",
            round(ext + o_now, 3),
            round(m_import + m_first, 3),
            target="(info)",
        ),
        row(
            "5e. second tracked cell / second run",
            med("now", "second_overhead_ms"),
            med("mlflow", "second_ms"),
            target="(info)",
        ),
    ]
    notes = [
        f"medians of {n} fresh processes per variant; jupyter_mlops figures are the tracked "
        "cell minus the same cell untracked (median "
        f"{med('now', 'baseline_ms'):.0f} ms); MLflow figures are set_experiment + start_run "
        "+ log_param + log_metric + end_run (no training inside), on a new SQLite file",
    ]
    finish(SCRIPT, rows, notes, time.time() - started)
    return None


if __name__ == "__main__":
    sys.exit(main())
