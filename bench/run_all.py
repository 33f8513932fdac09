"""Run every benchmark script and print one table of all figures (``make bench``).

Usage: ``.bench-venv/bin/python bench/run_all.py [--quick] [--only NAME ...] [--json PATH]``.
Each script runs in its own process with this interpreter; its output is shown as it
comes, and the ``BENCH_JSON`` line it prints at the end is collected for the final table.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _common import BENCH_DIR, JSON_PREFIX, REPO, format_table

# The MLflow comparisons first (in this order, the slowest last), then any other bench_*.py.
ORDER = [
    "bench_import.py",
    "bench_log_api.py",
    "bench_first_cell.py",
    "bench_track_overhead.py",
    "bench_search.py",
    "bench_serving.py",
    "bench_monitoring.py",
]
SCRIPTS = ORDER + sorted(p.name for p in BENCH_DIR.glob("bench_*.py") if p.name not in ORDER)


def _versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    parts = [f"python {sys.version.split()[0]}"]
    for dist in ("jupyter_mlops", "mlflow", "scikit-learn", "pandas", "SQLAlchemy", "skops"):
        try:
            parts.append(f"{dist} {version(dist)}")
        except PackageNotFoundError:
            parts.append(f"{dist} (not installed)")
    return ", ".join(parts)


def run_script(script: str, quick: bool) -> dict[str, Any] | None:
    """Run one script, echo its output, return its parsed BENCH_JSON (None if it failed)."""
    cmd = [sys.executable, str(BENCH_DIR / script)] + (["--quick"] if quick else [])
    result = None
    with subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, text=True, bufsize=1) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith(JSON_PREFIX):
                result = json.loads(line[len(JSON_PREFIX) :])
            else:
                print(line, end="", flush=True)
    if proc.returncode != 0 or result is None:
        print(f"!! {script} failed (exit {proc.returncode})", flush=True)
        return None
    return result


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer repetitions, smaller sizes")
    p.add_argument("--only", nargs="*", default=None, help="substrings of script names to run")
    p.add_argument("--json", default=None, help="also write all results to this JSON file")
    args = p.parse_args()
    scripts = [s for s in SCRIPTS if not args.only or any(o in s for o in args.only)]
    started = time.time()
    print(f"jupyter_mlops vs MLflow (SQLite backend); {_versions()}", flush=True)
    if args.quick:
        print("--quick: fewer repetitions and smaller stores; figures are indicative only")
    results, failed = [], []
    for script in scripts:
        print(f"\n=== {script} ===", flush=True)
        t0 = time.time()
        result = run_script(script, args.quick)
        if result is None:
            failed.append(script)
        else:
            results.append(result)
        print(f"=== {script}: {time.time() - t0:.0f} s ===", flush=True)
    rows = [r for res in results for r in res.get("rows", [])]
    total = time.time() - started
    print("\n" + "=" * 100)
    print("All figures (medians; ratio = MLflow time / jupyter_mlops time, higher is better)")
    print("=" * 100)
    print(format_table(rows))
    print()
    for res in results:
        for note in res.get("notes", []):
            print(f"- [{res['script']}] {note}")
    if failed:
        print(f"\nFAILED: {', '.join(failed)}")
    missed = [r.get("name", "?") for r in rows if r.get("ok") is False]
    print(
        f"\ntargets met: {sum(r['ok'] is True for r in rows)}/{sum(r['ok'] is not None for r in rows)}"
    )
    for name in missed:
        print(f"  missed: {name}")
    print(f"total bench time: {total / 60:.1f} min")
    if args.json:
        Path(args.json).write_text(
            json.dumps({"results": results, "failed": failed, "total_s": total}, indent=1)
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
