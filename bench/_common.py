"""Shared helpers for the benchmark scripts: timing, subprocess parts, results, the table.

Every bench script compares jupyter_mlops with MLflow (SQLite backend). Each side runs in
its own fresh subprocess (``--part ours`` / ``--part mlflow``) so neither pays for the
other's imports or patches. A part prints one line ``BENCH_PART {json}``; the script prints
one line ``BENCH_JSON {json}`` with its rows, which ``run_all.py`` collects.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
PART_PREFIX = "BENCH_PART "
JSON_PREFIX = "BENCH_JSON "

now = time.perf_counter


def median(values: list[float]) -> float:
    """The median, or NaN for no values."""
    return statistics.median(values) if values else float("nan")


def ms(seconds: float) -> float:
    """Seconds to milliseconds, rounded for printing and JSON."""
    return round(seconds * 1000.0, 3)


def timed(fn: Callable[[], Any]) -> float:
    """Seconds taken by one call of ``fn``."""
    t0 = now()
    fn()
    return now() - t0


def parser(description: str) -> argparse.ArgumentParser:
    """The common command line: ``--quick`` and the internal ``--part``."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="fewer repetitions, smaller sizes")
    p.add_argument("--part", default=None, help=argparse.SUPPRESS)
    p.add_argument("--arg", default=None, help=argparse.SUPPRESS)
    return p


@contextmanager
def temp_dir(prefix: str) -> Iterator[Path]:
    """A fresh temporary folder, removed afterwards (never the repo's own .mlops)."""
    path = Path(tempfile.mkdtemp(prefix=f"mlops-bench-{prefix}-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def clean_env(workdir: Path) -> dict[str, str]:
    """Environment for a part: its store, IPython dir and MLflow home all in ``workdir``."""
    env = dict(os.environ)
    for key in ("MLOPS_HOME", "MLOPS_DB_URL", "MLOPS_ARTIFACTS_URL", "MLFLOW_TRACKING_URI"):
        env.pop(key, None)
    env["IPYTHONDIR"] = str(workdir / ".ipython")
    env["MPLBACKEND"] = "Agg"
    env["PYTHONWARNINGS"] = "ignore"
    env["MLFLOW_ENABLE_ASYNC_LOGGING"] = "false"
    env["GIT_PYTHON_REFRESH"] = "quiet"
    env["PYTHONHASHSEED"] = "0"
    # One BLAS/OpenMP thread: the same work for both tools, less noise on a shared 2-core box.
    for key in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[key] = "1"
    env["MLOPS_HOME"] = str(workdir / "mlops-store")
    return env


def emit_part(data: dict[str, Any]) -> None:
    """Hand a part's measurements to the parent process."""
    sys.stdout.flush()
    print(PART_PREFIX + json.dumps(data), flush=True)


def run_part(
    script: str,
    part: str,
    *,
    quick: bool,
    arg: str | None = None,
    cwd: Path | None = None,
    env_extra: dict[str, str] | None = None,
    timeout: float = 1800,
) -> dict[str, Any]:
    """Run ``script --part part`` in a fresh interpreter and return what it emitted."""
    with temp_dir(part) as work:
        run_dir = cwd or work
        env = clean_env(work)
        env.update(env_extra or {})
        cmd = [sys.executable, str(BENCH_DIR / script), "--part", part]
        if quick:
            cmd.append("--quick")
        if arg is not None:
            cmd += ["--arg", arg]
        # stdout (cell output, run cards) is kept for the result line; stderr (progress,
        # warnings, tracebacks) goes straight to the terminal.
        proc = subprocess.run(
            cmd, cwd=run_dir, env=env, stdout=subprocess.PIPE, text=True, timeout=timeout
        )
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(PART_PREFIX):
            return json.loads(line[len(PART_PREFIX) :])
    tail = proc.stdout[-3000:].strip()
    raise RuntimeError(f"{script} --part {part} failed (exit {proc.returncode}):\n{tail}")


def row(
    name: str,
    ours: float | None,
    mlflow: float | None,
    *,
    target: str = "",
    unit: str = "ms",
    ok: bool | None = None,
    note: str = "",
) -> dict[str, Any]:
    """One line of the results table; ``ratio`` is how many times faster jupyter_mlops is."""
    ratio = None
    if ours is not None and mlflow is not None and ours > 0:
        ratio = round(mlflow / ours, 2)
    return {
        "name": name,
        "ours": ours,
        "mlflow": mlflow,
        "ratio": ratio,
        "unit": unit,
        "target": target,
        "ok": ok,
        "note": note,
    }


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if value != value:  # NaN
        return "n/a"
    if not isinstance(value, int | float):
        return str(value)
    if unit == "ms":
        if value >= 10_000:
            return f"{value / 1000:.2f} s"
        if value >= 100:
            return f"{value:.0f} ms"
        return f"{value:.2f} ms"
    return f"{value:g} {unit}"


def format_table(rows: list[dict[str, Any]]) -> str:
    """An aligned text table: name, jupyter_mlops, mlflow, ratio, target, met."""
    header = ["benchmark", "jupyter_mlops", "mlflow", "ratio (mlflow/ours)", "target", "met"]
    lines = []
    for r in rows:
        ratio = "—" if r.get("ratio") is None else f"{r['ratio']:.1f}×"
        met = {True: "yes", False: "NO"}.get(r.get("ok"), "")
        unit = r.get("unit", "ms")
        lines.append(
            [
                r.get("name", "?"),
                _fmt(r.get("ours"), unit),
                _fmt(r.get("mlflow"), unit),
                ratio,
                r.get("target", ""),
                met,
            ]
        )
    widths = [max(len(str(x)) for x in col) for col in zip(header, *lines, strict=False)]
    out = [
        "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)),
        "  ".join("-" * w for w in widths),
    ]
    out += ["  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)) for line in lines]
    return "\n".join(out)


def finish(script: str, rows: list[dict[str, Any]], notes: list[str], elapsed_s: float) -> None:
    """Print a script's table, its notes and the machine-readable line for run_all.py."""
    print()
    print(format_table(rows))
    for note in notes:
        print(f"  note: {note}")
    print(f"  ({script} took {elapsed_s:.0f} s)")
    print(
        JSON_PREFIX
        + json.dumps({"script": script, "rows": rows, "notes": notes, "elapsed_s": elapsed_s}),
        flush=True,
    )


def log(message: str) -> None:
    """Progress on stderr, so stdout stays a clean report."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)
