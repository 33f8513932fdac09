"""Benchmark: what loop metrics cost per logged value.

A cell runs a training-like loop of 10,000 steps (``--quick``: 2,000) that assigns three
metric-named floats per step (``loss``, ``acc``, ``f1``). Under ``%%track`` each becomes a
stepped metric with no ``log_metric`` (the cell is rewritten to record them). We time, in
one warm IPython shell, interleaved:

* the cell untracked;
* ``%%track`` (30,000 values recorded, all written to the store when the cell returns);
* ``%%track --no-steps`` (final values only: the fixed cost of a tracked cell).

and report (tracked - untracked) / values, the whole overhead of tracking spread over
the values, and (tracked - no-steps) / values, the cost of the curves alone (rewrite,
recording, and storing them). With PyTorch installed, the same loop also runs a real
``nn.Linear`` step, its ``loss`` a 0-d tensor. MLflow's figure is ``mlflow.log_metric``
per value (synchronous, SQLite store), when MLflow is installed (``make bench``).

Target: ≤ 5 µs added per value on average, ≥ 20× less than ``mlflow.log_metric``, and
every value stored.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

from _common import emit_part, finish, log, median, now, parser, row, run_part
from _shell import new_shell, run

SCRIPT = "bench_loop_metrics.py"
METRICS = 3

FLOAT_LOOP = """\
w = 0.0
for step in range(STEPS):
    w = w + 0.001 * (1.0 - w)
    loss = (1.0 - w) ** 2
    acc = 1.0 - loss
    f1 = acc * 0.9
"""

TORCH_SETUP = """\
import torch
torch.manual_seed(0)
torch.set_num_threads(1)
net = torch.nn.Linear(8, 1)
opt = torch.optim.SGD(net.parameters(), lr=0.01)
xb, yb = torch.randn(16, 8), torch.randn(16, 1)
"""

TORCH_LOOP = """\
for step in range(STEPS):
    opt.zero_grad()
    loss = torch.nn.functional.mse_loss(net(xb), yb)
    loss.backward()
    opt.step()
    acc = 1.0 / (1.0 + step)
    f1 = acc * 0.9
"""


def _stored(run_id: str) -> int:
    import sqlalchemy as sa

    from jupyter_mlops.store import current_store, schema

    mh = schema.metric_history
    with current_store().read() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count()).select_from(mh).where(mh.c.run_id == run_id)
            ).scalar()
        )


def _measure(ip, loop: str, label: str, steps: int, reps: int, warm: int) -> dict[str, float]:
    """Interleaved medians of the loop untracked, tracked and tracked --no-steps."""
    import jupyter_mlops as mlops

    ip.user_ns["STEPS"] = steps
    cells = {
        "untracked": loop,
        "tracked": f"%%track {label} -e bench\n" + loop,
        "nosteps": f"%%track {label}-nosteps -e bench --no-steps\n" + loop,
    }
    times: dict[str, list[float]] = {k: [] for k in cells}
    order = list(cells)
    for i in range(warm + reps):
        for key in order[i % 3 :] + order[: i % 3]:  # rotate which goes first
            elapsed = run(ip, cells[key])
            if i >= warm:
                times[key].append(elapsed)
    values = steps * METRICS
    runs = mlops.runs(experiment="bench", filter=f"name = '{label}'")
    stored = _stored(runs.run_id[0]) if len(runs) else 0
    med = {k: median(v) for k, v in times.items()}
    return {
        f"{label}_untracked_ms": round(med["untracked"] * 1e3, 2),
        f"{label}_tracked_ms": round(med["tracked"] * 1e3, 2),
        f"{label}_nosteps_ms": round(med["nosteps"] * 1e3, 2),
        f"{label}_per_value_us": round((med["tracked"] - med["untracked"]) / values * 1e6, 3),
        f"{label}_steps_per_value_us": round((med["tracked"] - med["nosteps"]) / values * 1e6, 3),
        f"{label}_values": values,
        f"{label}_stored": stored,
    }


def _in_loop(steps: int, reps: int) -> float:
    """µs per value the rewritten loop spends recording (no store, no capture): the same
    loop compiled as written and as ``%%track`` rewrites it, best of ``reps``."""
    from jupyter_mlops.tracking.capture import is_metric_name
    from jupyter_mlops.tracking.steps import StepRecorder

    plain = compile(FLOAT_LOOP, "<plain>", "exec")
    best_plain, best_rewritten = float("inf"), float("inf")
    for _ in range(reps):
        recorder = StepRecorder(is_metric_name, exclude={"step"})
        rewritten = recorder.compile(FLOAT_LOOP, "<rewritten>")
        t0 = now()
        exec(plain, {"STEPS": steps})
        best_plain = min(best_plain, now() - t0)
        t0 = now()
        exec(rewritten, {"STEPS": steps})
        best_rewritten = min(best_rewritten, now() - t0)
        assert len(recorder) == steps * METRICS
    return round((best_rewritten - best_plain) / (steps * METRICS) * 1e6, 3)


def part_ours(quick: bool) -> None:
    steps = 2_000 if quick else 10_000
    reps, warm = (5, 1) if quick else (15, 2)
    ip = new_shell()
    run(ip, "%load_ext jupyter_mlops")
    out: dict[str, float | int | str] = {"steps": steps, "reps": reps}
    out |= _measure(ip, FLOAT_LOOP, "floats", steps, reps, warm)
    out["in_loop_us"] = _in_loop(steps, 3 * reps)
    try:
        import torch  # noqa: F401
    except ImportError:
        out["torch"] = "not installed"
    else:
        run(ip, TORCH_SETUP)
        out |= _measure(ip, TORCH_LOOP, "torch", steps, max(3, reps // 3), 1)
    emit_part(out)


def part_mlflow(quick: bool) -> None:
    try:
        import mlflow
    except ImportError:
        emit_part({"skipped": "MLflow is not installed (make bench installs it in .bench-venv)"})
        return
    for name in ("mlflow", "alembic", "git", "urllib3"):
        logging.getLogger(name).setLevel(logging.ERROR)
    mlflow.set_tracking_uri(f"sqlite:///{Path.cwd() / 'mlflow.db'}")
    mlflow.set_experiment("bench")
    n, reps = (100, 3) if quick else (300, 5)
    per_value = []
    with mlflow.start_run():
        for i in range(5):  # warm-up: the first calls create tables, caches
            mlflow.log_metric("warm", float(i), step=i, synchronous=True)
        for rep in range(reps):
            t0 = now()
            for step in range(n):
                mlflow.log_metric("loss", 1.0 / (step + 1), step=rep * n + step, synchronous=True)
            per_value.append((now() - t0) / n)
    emit_part({"per_value_us": round(median(per_value) * 1e6, 1), "values": n, "reps": reps})


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    if args.part == "ours":
        return part_ours(args.quick)
    if args.part == "mlflow":
        return part_mlflow(args.quick)
    started = time.time()
    log(f"{SCRIPT}: loop metrics under %%track ...")
    ours = run_part(SCRIPT, "ours", quick=args.quick)
    log(f"{SCRIPT}: mlflow.log_metric per value ...")
    mlf = run_part(SCRIPT, "mlflow", quick=args.quick)
    theirs = mlf.get("per_value_us")
    per_value = ours["floats_per_value_us"]
    all_stored = ours["floats_stored"] == ours["floats_values"]
    rows = [
        row(
            f"loop metrics: µs added per value ({ours['floats_values']:,} values)",
            per_value,
            theirs,
            unit="µs",
            target="≤ 5 µs, ≥ 20× less than log_metric",
            ok=per_value <= 5 and (theirs is None or theirs / max(per_value, 1e-9) >= 20),
        ),
        row(
            "loop metrics: the curves alone (tracked − --no-steps), per value",
            ours["floats_steps_per_value_us"],
            None,
            unit="µs",
            target="(info)",
        ),
        row(
            "loop metrics: recording in the loop alone, per value (no store)",
            ours["in_loop_us"],
            None,
            unit="µs",
            target="(info)",
        ),
        row(
            "loop metrics: values stored when the cell returns",
            ours["floats_stored"],
            None,
            unit="values",
            target=f"all {ours['floats_values']:,}",
            ok=all_stored,
        ),
    ]
    if "torch_per_value_us" in ours:
        rows.append(
            row(
                "loop metrics, PyTorch step (loss a 0-d tensor): µs added per value",
                ours["torch_per_value_us"],
                theirs,
                unit="µs",
                target="≤ 5 µs",
                ok=ours["torch_per_value_us"] <= 5 and ours["torch_stored"] == ours["torch_values"],
            )
        )
    notes = [
        f"medians over {ours['reps']} interleaved repetitions of each cell, {ours['steps']:,} "
        f"steps × {METRICS} metrics: untracked {ours['floats_untracked_ms']:.1f} ms, tracked "
        f"{ours['floats_tracked_ms']:.1f} ms, tracked --no-steps {ours['floats_nosteps_ms']:.1f} ms",
        "tracked − untracked includes the fixed cost of a tracked cell (run start, capture, "
        "run card), spread over the values; most of the rest is inserting the "
        f"{ours['floats_values']:,} rows into SQLite when the cell ends (one transaction)",
    ]
    if "torch_per_value_us" in ours:
        notes.append(
            f"PyTorch loop: untracked {ours['torch_untracked_ms']:.0f} ms, tracked "
            f"{ours['torch_tracked_ms']:.0f} ms, {ours['torch_stored']:,} values stored"
        )
    else:
        notes.append("PyTorch is not installed: the PyTorch loop was not run")
    if theirs is None:
        notes.append(f"MLflow: {mlf.get('skipped', 'no figure')}")
    else:
        notes.append(
            f"MLflow: mlflow.log_metric(synchronous=True) on a SQLite store, median over "
            f"{mlf['reps']} × {mlf['values']} calls"
        )
    finish(SCRIPT, rows, notes, time.time() - started)
    return None


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    sys.exit(main())
