"""Benchmark: drift monitoring: our ``drift_report`` vs Evidently 0.7's data drift preset.

* 1. Speed and memory: one drift report of 1,000,000 reference rows against 1,000,000
  current rows x 20 columns (15 float64 of five distribution families, 5 string columns
  with 10, 5, 20, 8 and 15 categories; ``--quick`` 100,000 rows). Ours:
  ``drift_report(reference, current)``; Evidently: ``Report([DataDriftPreset()])`` then
  ``.run(current_data=..., reference_data=...)``. Both read the same two Parquet files,
  written once by a data part (reading excluded; pandas 3 gives ours ``str`` columns,
  pandas 2 gives Evidently ``object`` ones). Peak memory: the subprocess's peak RSS
  (``resource.getrusage``) during the report minus its RSS just before it, the peak reset
  first through ``/proc/self/clear_refs`` (so loading the frames does not count).
* 2. Detection: the current frame of 1. carries one injected shift in each of five columns
  (numeric: mean +0.5 sd, spread x1.5, mean +0.2 sd, 10% of values moved by +3 sd;
  categorical: one category from 10% to 30% of rows); the other 15 columns are fresh draws
  of the reference's distributions. Per column: drifted by ours? by Evidently? The check:
  we flag every column Evidently flags, and no column it leaves alone that has no shift.
* 3. The inference log: 1,000,000 logged 1-row predictions (10 float features, an int
  ``predict``; ``--quick`` 100,000) written with ``InferenceLogger.add`` (``NumericRows``)
  and a flush every tenth of them, then ``inference_log("churn")`` (the monitoring panel's
  read; its target is < 2 s, info here) and ``drift_report`` of that frame against a
  reference of as many rows. Ours only.

Each tool runs in its own fresh subprocess with one BLAS/OpenMP thread; each does a small
warm-up report first (imports and lazy set-up are timed apart). Evidently 0.7 needs
pandas < 3, so its part runs in ``.bench-evidently-venv`` (``make bench`` creates it); when
that venv is missing, Evidently's figures are skipped with a note. Target: ours >= 20x
faster. In the tables the "mlflow" column holds Evidently's figures.
"""

from __future__ import annotations

import gc
import json
import resource
import subprocess
import time
from pathlib import Path
from typing import Any

from _common import (
    BENCH_DIR,
    PART_PREFIX,
    REPO,
    clean_env,
    emit_part,
    finish,
    log,
    median,
    ms,
    now,
    parser,
    row,
    run_part,
    temp_dir,
)

SCRIPT = "bench_monitoring.py"
EVIDENTLY_PYTHON = REPO / ".bench-evidently-venv" / "bin" / "python"
NUMERIC = [f"n{i:02d}" for i in range(15)]
CATEGORICAL = [f"c{i}" for i in range(5)]
N_CATEGORIES = [10, 5, 20, 8, 15]
FAMILIES = ["normal", "lognormal", "uniform", "exponential", "gamma"]
SHIFTS = {
    "n00": "mean +0.5 sd",
    "n01": "spread x1.5",
    "n02": "mean +0.2 sd",
    "n03": "10% of values +3 sd",
    "c0": "one category 10% -> 30%",
}
FEATURES = [f"x{i}" for i in range(10)]  # the inference log's features
MILD_SD = 0.005  # 1c: every numeric column moved by this many sd at 1M rows (x sqrt(1M/n))


def _sizes(quick: bool) -> dict[str, int]:
    if quick:
        return {"rows": 100_000, "ours_reps": 3, "evidently_reps": 2, "log_rows": 100_000}
    return {"rows": 1_000_000, "ours_reps": 5, "evidently_reps": 3, "log_rows": 1_000_000}


def _load_one(folder: str, name: str) -> Any:
    import pandas as pd

    return pd.read_parquet(Path(folder) / f"{name}.parquet")


# -- memory ----------------------------------------------------------------------------------
def _rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _reset_peak() -> bool:
    """Reset the process's peak RSS to its current RSS (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _measure(fn: Any, reps: int) -> tuple[list[float], list[float], bool, Any]:
    """Seconds and peak-RSS growth (MB) of each call of ``fn``; whether the peak was reset
    before each call; the last result."""
    times, peaks = [], []
    reset_ok = True
    result = None
    for i in range(reps):
        result = None
        gc.collect()
        reset = _reset_peak()
        reset_ok = reset_ok and reset
        base = _rss_mb()
        t = now()
        result = fn()
        times.append(now() - t)
        if reset or i == 0:  # without a reset only the first call's peak is its own
            peaks.append(_peak_mb() - base)
    return times, peaks, reset_ok, result


# -- the frames (data part, in .bench-venv) ----------------------------------------------------
def _numeric(rng: Any, family: str, i: int, n: int) -> Any:
    loc, scale = float(i), 1.0 + i / 5
    if family == "normal":
        return rng.normal(loc, scale, n)
    if family == "lognormal":
        return loc + rng.lognormal(0.0, 0.5, n) * scale
    if family == "uniform":
        return rng.uniform(loc - scale, loc + scale, n)
    if family == "exponential":
        return loc + rng.exponential(scale, n)
    return loc + rng.gamma(2.0, scale, n)


def _category_probs(k: int, uniform: bool) -> Any:
    import numpy as np

    if uniform:
        return np.full(k, 1.0 / k)
    weights = 1.0 / np.arange(1, k + 1) ** 0.8
    return weights / weights.sum()


def _frame(seed: int, n: int, shifted: bool) -> Any:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    cols: dict[str, Any] = {}
    for i, name in enumerate(NUMERIC):
        cols[name] = _numeric(rng, FAMILIES[i % len(FAMILIES)], i, n)
    for j, (name, k) in enumerate(zip(CATEGORICAL, N_CATEGORIES, strict=True)):
        probs = _category_probs(k, uniform=j == 0)
        if shifted and name == "c0":  # one category takes 30% of the rows (from 10%)
            probs = np.concatenate([[0.3], np.full(k - 1, 0.7 / (k - 1))])
        labels = np.array([f"{name}_k{c:02d}" for c in range(k)], dtype=object)
        cols[name] = labels[rng.choice(k, size=n, p=probs)]
    frame = pd.DataFrame(cols)
    if shifted:
        # shifts in units of the column's own (population-like) sd, estimated on the draw
        x = frame["n00"].to_numpy()
        frame["n00"] = x + 0.5 * x.std()
        x = frame["n01"].to_numpy()
        frame["n01"] = x.mean() + (x - x.mean()) * 1.5
        x = frame["n02"].to_numpy()
        frame["n02"] = x + 0.2 * x.std()
        x = frame["n03"].to_numpy().copy()
        moved = rng.random(n) < 0.10
        x[moved] += 3.0 * x.std()
        frame["n03"] = x
    return frame


def part_data(quick: bool, folder: str) -> None:
    """Write the reference and the (shifted) current frame as Parquet files."""
    n = _sizes(quick)["rows"]
    t = now()
    ref = _frame(1, n, shifted=False)
    cur = _frame(2, n, shifted=True)
    ref.to_parquet(Path(folder) / "ref.parquet", index=False)
    cur.to_parquet(Path(folder) / "cur.parquet", index=False)
    mild = _frame(3, n, shifted=False)
    for name in NUMERIC:  # a shift too small to matter, yet "significant": KS p < 0.05
        x = mild[name].to_numpy()
        mild[name] = x + MILD_SD * (1e6 / n) ** 0.5 * x.std()
    mild.to_parquet(Path(folder) / "mild.parquet", index=False)
    emit_part({"rows": n, "write_s": round(now() - t, 2)})


def _load(folder: str) -> tuple[Any, Any, float]:
    import pandas as pd

    t = now()
    ref = pd.read_parquet(Path(folder) / "ref.parquet")
    cur = pd.read_parquet(Path(folder) / "cur.parquet")
    return ref, cur, now() - t


# -- ours ------------------------------------------------------------------------------------
def part_ours(quick: bool, folder: str) -> None:
    reps = _sizes(quick)["ours_reps"]
    t = now()
    import pandas as pd

    from jupyter_mlops.monitoring.drift import drift_report

    import_s = now() - t
    ref, cur, read_s = _load(folder)
    t = now()
    drift_report(ref.head(2000), cur.head(2000))  # lazy imports (scipy)
    warm_s = now() - t
    gc.collect()
    loaded_mb = _rss_mb()
    times, peaks, reset_ok, report = _measure(lambda: drift_report(ref, cur), reps)
    columns = {}
    for c in report.columns:
        columns[c.column] = {
            "drifted": c.drifted,
            "kind": c.kind,
            "pvalue": c.pvalue,
            **{k: round(float(v), 5) for k, v in c.stats.items()},
        }
    dataset_drift = report.dataset_drift
    del report
    mild = _load_one(folder, "mild")
    mild_s, mild_peaks, _, report = _measure(lambda: drift_report(ref, mild), max(2, reps - 2))
    mild_p = [c.pvalue for c in report.columns if c.kind == "numeric"]
    mild_flagged = report.drifted
    report = None
    emit_part(
        {
            "pandas": pd.__version__,
            "rows": len(ref),
            "mild_ms": [ms(s) for s in mild_s],
            "mild_peak_mb": [round(p, 1) for p in mild_peaks],
            "mild_pvalues": [min(mild_p), max(mild_p)],
            "mild_drifted": mild_flagged,
            "dtypes": sorted({str(d) for d in ref.dtypes}),
            "import_ms": ms(import_s),
            "read_ms": ms(read_s),
            "warm_ms": ms(warm_s),
            "loaded_mb": round(loaded_mb, 1),
            "times_ms": [ms(s) for s in times],
            "peak_mb": [round(p, 1) for p in peaks],
            "peak_reset": reset_ok,
            "columns": columns,
            "dataset_drift": dataset_drift,
        }
    )


# -- Evidently (in .bench-evidently-venv) --------------------------------------------------------
def _evidently_flags(snapshot: Any) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Per column: method, threshold, score and the verdict, from the snapshot's metrics
    (distance methods drift at score >= threshold, p-value tests at p < threshold); and the
    preset's drifted-columns count."""
    columns: dict[str, dict[str, Any]] = {}
    count: dict[str, Any] = {}
    for metric in snapshot.dict()["metrics"]:
        config = metric.get("config", {})
        kind = str(config.get("type", ""))
        if kind.endswith(":ValueDrift"):
            method = str(config.get("method"))
            threshold = float(config.get("threshold"))
            score = float(metric["value"])
            drifted = score < threshold if "p_value" in method else score >= threshold
            columns[config["column"]] = {
                "method": method,
                "threshold": threshold,
                "score": round(score, 5),
                "drifted": bool(drifted),
            }
        elif kind.endswith(":DriftedColumnsCount"):
            count = dict(metric["value"])
    return columns, count


def part_evidently(quick: bool, folder: str) -> None:
    reps = _sizes(quick)["evidently_reps"]
    t = now()
    import pandas as pd
    from evidently import Report
    from evidently.presets import DataDriftPreset

    import_s = now() - t
    from importlib.metadata import version

    ref, cur, read_s = _load(folder)

    def run(r: Any, c: Any) -> Any:
        return Report([DataDriftPreset()]).run(current_data=c, reference_data=r)

    t = now()
    run(ref.head(2000), cur.head(2000))
    warm_s = now() - t
    gc.collect()
    loaded_mb = _rss_mb()
    times, peaks, reset_ok, snapshot = _measure(lambda: run(ref, cur), reps)
    columns, count = _evidently_flags(snapshot)
    emit_part(
        {
            "version": version("evidently"),
            "pandas": pd.__version__,
            "rows": len(ref),
            "dtypes": sorted({str(d) for d in ref.dtypes}),
            "import_ms": ms(import_s),
            "read_ms": ms(read_s),
            "warm_ms": ms(warm_s),
            "loaded_mb": round(loaded_mb, 1),
            "times_ms": [ms(s) for s in times],
            "peak_mb": [round(p, 1) for p in peaks],
            "peak_reset": reset_ok,
            "columns": columns,
            "drifted_count": count,
        }
    )


def _run_evidently(quick: bool, folder: Path) -> dict[str, Any]:
    """``run_part`` with Evidently's venv interpreter instead of this one."""
    with temp_dir("evidently") as work:
        env = clean_env(work)
        env["DO_NOT_TRACK"] = "1"
        env["EVIDENTLY_DISABLE_TELEMETRY"] = "1"
        cmd = [str(EVIDENTLY_PYTHON), str(BENCH_DIR / SCRIPT), "--part", "evidently"]
        cmd += ["--arg", str(folder)] + (["--quick"] if quick else [])
        proc = subprocess.run(
            cmd, cwd=work, env=env, stdout=subprocess.PIPE, text=True, timeout=3600
        )
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(PART_PREFIX):
            return json.loads(line[len(PART_PREFIX) :])
    tail = proc.stdout[-3000:].strip()
    raise RuntimeError(f"{SCRIPT} --part evidently failed (exit {proc.returncode}):\n{tail}")


# -- the inference log (ours) -------------------------------------------------------------------
def part_log(quick: bool) -> None:
    import numpy as np
    import pandas as pd

    from jupyter_mlops.monitoring.drift import drift_report
    from jupyter_mlops.serving.inference_log import InferenceLogger, inference_log
    from jupyter_mlops.serving.segments import NumericRows
    from jupyter_mlops.store import current_store

    n = _sizes(quick)["log_rows"]
    every = n // 10
    reps = 3 if quick else 5
    rng = np.random.default_rng(7)
    X = rng.standard_normal((n, len(FEATURES)))
    predict = (X[:, 0] + X[:, 1] > 0).astype(np.int64)
    logger = InferenceLogger(current_store(), deployment_id="d-b")
    add_s = flush_s = 0.0
    t = now()
    for i in range(n):
        logger.add(
            f"req-{i}",
            "churn",
            1,
            1,
            NumericRows(FEATURES, X[i : i + 1]),
            {"predict": predict[i : i + 1]},
            1.0,
        )
        if (i + 1) % every == 0:
            add_s += now() - t
            t = now()
            logger.flush()
            flush_s += now() - t
            t = now()
    closed = logger.close()
    del X, predict
    ref_x = np.random.default_rng(8).standard_normal((n, len(FEATURES)))
    reference = pd.DataFrame(ref_x, columns=FEATURES)
    reference["predict"] = (ref_x[:, 0] + ref_x[:, 1] > 0).astype(np.int64)
    inference_log("churn", last=100)  # imports
    drift_report(reference.head(2000), reference.tail(2000))  # lazy imports (scipy)
    read_s = []
    frame = None
    for _ in range(reps):
        frame = None
        gc.collect()
        t = now()
        frame = inference_log("churn")
        read_s.append(now() - t)
    assert frame is not None and len(frame) == n, None if frame is None else len(frame)
    drift_s = []
    report = None
    for _ in range(reps):
        report = None
        t = now()
        report = drift_report(reference, frame, prediction="predict")
        drift_s.append(now() - t)
    assert report is not None
    emit_part(
        {
            "rows": n,
            "flush_every": every,
            "add_ms": ms(add_s),
            "flush_ms": ms(flush_s),
            "closed": closed,
            "read_ms": [ms(s) for s in read_s],
            "drift_ms": [ms(s) for s in drift_s],
            "frame_columns": list(frame.columns),
            "frame_mb": round(frame.memory_usage(deep=True).sum() / 1e6, 1),
            "drifted": report.drifted,
            "prediction_drifted": report.prediction.drifted if report.prediction else None,
            "new_in_current": report.new_in_current,
        }
    )


def part_panel(quick: bool) -> None:
    """The monitoring panel's first render in a fresh process (imports, reading the log,
    the drift of the window's newest rows, the charts), then a second render."""
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    import jupyter_mlops as mlops
    from jupyter_mlops.serving.inference_log import InferenceLogger
    from jupyter_mlops.serving.segments import NumericRows
    from jupyter_mlops.store import current_store

    n = _sizes(quick)["log_rows"]
    rng = np.random.default_rng(11)
    train = pd.DataFrame(rng.standard_normal((20_000, len(FEATURES))), columns=FEATURES)
    target = (train[FEATURES[0]] + train[FEATURES[1]] > 0).astype(int)
    with mlops.track("fit") as run:
        model = LogisticRegression(max_iter=500).fit(train, target)
    mlops.register(run.run_id, "churn")
    mlops.set_alias("churn", "production", 1)
    mlops.set_monitor("churn@production", window="1d", min_rows=100)
    X = rng.standard_normal((n, len(FEATURES)))
    X[:, 2] += 0.5  # one drifted feature, so the panel has something to show
    predict = model.predict(pd.DataFrame(X, columns=FEATURES))
    logger = InferenceLogger(current_store(), deployment_id="d-panel")
    every = n // 10
    for i in range(n):
        logger.add(
            f"r{i}",
            "churn",
            1,
            1,
            NumericRows(FEATURES, X[i : i + 1]),
            {"predict": predict[i : i + 1]},
            1.0,
        )
        if (i + 1) % every == 0:
            logger.flush()
    logger.close()
    del X, predict
    gc.collect()
    t = now()
    view = mlops.monitor("churn@production")
    first = now() - t
    time.sleep(8)  # the panel loads the chart runtime in the background after showing
    t = now()
    view.refresh()
    second = now() - t
    emit_part(
        {
            "rows": n,
            "first_ms": ms(first),
            "second_ms": ms(second),
            "state": view.evaluation.outcome.state,
            "drift_rows": view.evaluation.outcome.rows,
            "drifted": view.evaluation.outcome.report.drifted,
        }
    )


# -- the report ---------------------------------------------------------------------------------
def _ours_effect(c: dict[str, Any]) -> str:
    if c["kind"] == "numeric":
        return f"PSI {c['psi']:.3f}, W/sd {c['wasserstein_norm']:.3f}, KS p {c['pvalue']:.2g}"
    return f"PSI {c['psi']:.3f}, JS {c['jensen_shannon']:.3f}, chi2 p {c['pvalue']:.2g}"


def _detection(ours: dict[str, Any], ev: dict[str, Any] | None) -> tuple[list[str], bool | None]:
    """The per-column table (printed) and the PASS/FAIL check (None without Evidently)."""
    names = NUMERIC + CATEGORICAL
    lines = []
    header = ["column", "injected shift", "ours", "Evidently", "ours: effect", "Evidently: score"]
    table = []
    for name in names:
        o = ours["columns"][name]
        e = (ev or {}).get("columns", {}).get(name)
        table.append(
            [
                name,
                SHIFTS.get(name, "-"),
                "DRIFT" if o["drifted"] else "ok",
                "—" if e is None else ("DRIFT" if e["drifted"] else "ok"),
                _ours_effect(o),
                "—" if e is None else f"{e['method']} {e['score']:.3f} (thr {e['threshold']:g})",
            ]
        )
    widths = [max(len(str(x)) for x in col) for col in zip(header, *table, strict=True)]
    lines.append("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in table]
    if ev is None:
        return lines, None
    missed = [n for n in names if ev["columns"][n]["drifted"] and not ours["columns"][n]["drifted"]]
    extra = [
        n
        for n in names
        if ours["columns"][n]["drifted"] and not ev["columns"][n]["drifted"] and n not in SHIFTS
    ]
    ok = not missed and not extra
    verdict = "PASS" if ok else "FAIL"
    lines.append(
        f"check (we flag every column Evidently flags, and no column it leaves alone that has "
        f"no injected shift): {verdict}"
        + (f"; Evidently flags, we do not: {missed}" if missed else "")
        + (f"; we flag, Evidently does not, no shift: {extra}" if extra else "")
    )
    return lines, ok


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    parts = {
        "data": lambda: part_data(args.quick, args.arg),
        "ours": lambda: part_ours(args.quick, args.arg),
        "evidently": lambda: part_evidently(args.quick, args.arg),
        "log": lambda: part_log(args.quick),
        "panel": lambda: part_panel(args.quick),
    }
    if args.part in parts:
        return parts[args.part]()
    started = time.time()
    notes: list[str] = []
    ev = None
    with temp_dir("monitoring") as shared:
        log(f"{SCRIPT}: writing the frames ...")
        data = run_part(SCRIPT, "data", quick=args.quick, arg=str(shared))
        log(f"{SCRIPT}: our drift reports ...")
        ours = run_part(SCRIPT, "ours", quick=args.quick, arg=str(shared))
        if EVIDENTLY_PYTHON.exists():
            log(f"{SCRIPT}: Evidently's drift reports ...")
            ev = _run_evidently(args.quick, shared)
        else:
            notes.append(
                f"Evidently skipped: {EVIDENTLY_PYTHON.relative_to(REPO)} is missing "
                "(`make bench` creates it: evidently>=0.7,<0.8 with pandas<3)"
            )
    log(f"{SCRIPT}: the inference log ...")
    logged = run_part(SCRIPT, "log", quick=args.quick, env_extra={"TQDM_DISABLE": "1"})
    log(f"{SCRIPT}: the monitoring panel ...")
    panel = run_part(SCRIPT, "panel", quick=args.quick, env_extra={"TQDM_DISABLE": "1"})

    n = data["rows"]
    size = f"{n // 10**6}M" if n >= 1_000_000 else f"{n // 1000}k"
    o_ms = round(median(ours["times_ms"]), 3)
    e_ms = round(median(ev["times_ms"]), 3) if ev else None
    rows = [
        row(
            f"monitor 1. drift report {size}×{size} rows × 20 cols (15 num, 5 cat)",
            o_ms,
            e_ms,
            target="≥20× faster",
            ok=None if e_ms is None else e_ms >= 20 * o_ms,
            note="Evidently: Report([DataDriftPreset()]).run",
        ),
        row(
            "monitor 1b. peak memory during the report (over the loaded frames)",
            round(median(ours["peak_mb"]), 1),
            round(median(ev["peak_mb"]), 1) if ev else None,
            unit="MB",
            target="(info)",
        ),
    ]
    mild_ms = round(median(ours["mild_ms"]), 3)
    rows.append(
        row(
            f"monitor 1c. drift report {size}×{size}, every numeric column shifted slightly",
            mild_ms,
            None,
            target="(info)",
            note=f"{mild_ms / o_ms:.1f}× the time of 1.",
        )
    )
    lines, ok = _detection(ours, ev)
    flagged_ours = sum(bool(c["drifted"]) for c in ours["columns"].values())
    flagged_ev = sum(bool(c["drifted"]) for c in ev["columns"].values()) if ev else None
    rows.append(
        row(
            f"monitor 2. detection: columns flagged ({len(SHIFTS)} shifted of 20)",
            flagged_ours,
            flagged_ev,
            unit="cols",
            target="⊇ Evidently's, no false alarm",
            ok=ok,
        )
    )
    rows[-1]["ratio"] = None
    lrows = logged["rows"]
    lsize = f"{lrows // 10**6}M" if lrows >= 1_000_000 else f"{lrows // 1000}k"
    read_ms = round(median(logged["read_ms"]), 3)
    rows += [
        row(
            f'monitor 3. inference_log("churn"), {lsize} logged 1-row predictions',
            read_ms,
            None,
            target="(info; panel: < 2 s)",
            note="under 2 s" if read_ms < 2000 else "over 2 s",
        ),
        row(
            f"monitor 3b. drift_report(log frame vs {lsize}-row reference)",
            round(median(logged["drift_ms"]), 3),
            None,
            target="(info)",
        ),
        row(
            f"monitor 4. mlops.monitor() first render, {lsize} logged predictions (fresh process)",
            panel["first_ms"],
            None,
            target="< 2 s",
            ok=panel["first_ms"] < 2000,
            note=f"again: {panel['second_ms']} ms; drift on the newest {panel['drift_rows']:,} "
            f"rows; drifted {panel['drifted']}",
        ),
        row(
            f"monitor 3c. logging {lsize} 1-row predictions (add + flush every "
            f"{logged['flush_every'] // 1000}k)",
            round(logged["add_ms"] + logged["flush_ms"], 3),
            None,
            target="(info)",
        ),
    ]

    print()
    print(f"Detection at {size} rows (current frame of 1.; shifts injected in {list(SHIFTS)}):")
    for line in lines:
        print("  " + line)

    def sides(key: str) -> str:
        text = f"ours {ours[key]}"
        return text + (f", Evidently {ev[key]}" if ev else "")

    notes += [
        f"1. {n:,} reference rows vs {n:,} current rows; the same Parquet files for both "
        f"(written in {data['write_s']} s); the current frame is the shifted one of 2. Our "
        f"report: median of {len(ours['times_ms'])} ({ours['times_ms']} ms)"
        + (
            f"; Evidently {ev['version']}: median of {len(ev['times_ms'])} ({ev['times_ms']} ms)"
            if ev
            else ""
        ),
        f"pandas: ours {ours['pandas']} (columns {ours['dtypes']})"
        + (f", Evidently {ev['pandas']} (columns {ev['dtypes']})" if ev else "")
        + f"; read time (excluded) ms: {sides('read_ms')}; imports ms: {sides('import_ms')}; "
        f"warm-up report on 2,000 rows ms: {sides('warm_ms')}",
        f"memory: RSS after loading the frames (MB): {sides('loaded_mb')}; peak growth "
        f"during each report (MB): ours {ours['peak_mb']}"
        + (f", Evidently {ev['peak_mb']}" if ev else "")
        + (
            "; peak reset before each report via /proc/self/clear_refs"
            if ours["peak_reset"] and (ev is None or ev["peak_reset"])
            else "; /proc/self/clear_refs not writable: ru_maxrss growth over the first report"
        ),
    ]
    lo, hi = ours["mild_pvalues"]
    notes.append(
        f"1c. the reference of 1. against fresh draws with every numeric column moved by "
        f"{MILD_SD * (1e6 / n) ** 0.5:.4g} sd (categorical unchanged): KS p from {lo:.2g} to "
        f"{hi:.2g}, no effect size over its threshold (drifted: {ours['mild_drifted']}); ours "
        f"median of {len(ours['mild_ms'])} ({ours['mild_ms']} ms), peak growth "
        f"{ours['mild_peak_mb']} MB. Evidently's cost does not depend on the p-values (its "
        "default methods at this size are distances), so it was not run again"
    )
    if ev:
        count = ev.get("drifted_count", {})
        notes.append(
            "Evidently's methods: "
            + ", ".join(
                sorted({f"{c['method']} (thr {c['threshold']:g})" for c in ev["columns"].values()})
            )
            + f"; its DriftedColumnsCount {count.get('count')} (verdicts read per column: "
            f"{flagged_ev}); ours dataset_drift={ours['dataset_drift']}"
        )
    notes += [
        "2. detection: " + lines[-1] if ok is not None else "2. detection: no Evidently verdicts",
        f"3. inference log: {lrows:,} entries via InferenceLogger.add (1 row each, NumericRows "
        f"of 10 float64 + predict), flush every {logged['flush_every']:,}: add "
        f"{logged['add_ms']:.0f} ms, flushes {logged['flush_ms']:.0f} ms; {logged['closed']}. "
        f"inference_log('churn') ms: {logged['read_ms']} ({logged['frame_mb']} MB frame, "
        f"columns {logged['frame_columns']}); drift_report vs a {lrows:,}-row reference "
        f"(prediction='predict') ms: {logged['drift_ms']}; drifted {logged['drifted']}, "
        f"prediction drifted {logged['prediction_drifted']} (same distributions: none expected)",
    ]
    finish(SCRIPT, rows, notes, time.time() - started)


if __name__ == "__main__":
    main()
