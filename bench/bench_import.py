"""Benchmark 4: the cost of getting started in a fresh kernel.

Each sample is a fresh Python process. IPython is imported and a shell created first (a
kernel already has them), then timed with perf_counter inside the process:

* jupyter_mlops: ``import jupyter_mlops`` + ``%load_ext jupyter_mlops``;
* MLflow: ``import mlflow``; and ``import mlflow`` after scikit-learn and pandas are
  already loaded (the usual notebook order: MLflow reuses some of their imports).

Medians over 7 processes (``--quick``: 2). Target: ours <= 1/10 of ``import mlflow``.
"""

from __future__ import annotations

import sys
import time

from _common import emit_part, finish, log, median, ms, now, parser, row, run_part

SCRIPT = "bench_import.py"


def part(kind: str) -> None:
    from IPython.core.interactiveshell import InteractiveShell

    ip = InteractiveShell.instance()
    if kind.endswith("_ml"):
        import pandas  # noqa: F401
        import sklearn.linear_model  # noqa: F401
    out: dict[str, float] = {}
    if kind.startswith("ours"):
        t0 = now()
        import jupyter_mlops  # noqa: F401

        t1 = now()
        ip.run_line_magic("load_ext", "jupyter_mlops")
        t2 = now()
        out = {"import_ms": ms(t1 - t0), "load_ext_ms": ms(t2 - t1), "total_ms": ms(t2 - t0)}
    else:
        t0 = now()
        import mlflow  # noqa: F401

        out = {"total_ms": ms(now() - t0)}
    emit_part(out)


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    if args.part:
        return part(args.part)
    started = time.time()
    n = 2 if args.quick else 7
    samples: dict[str, list[dict[str, float]]] = {}
    for i in range(n):
        log(f"{SCRIPT}: fresh processes, round {i + 1}/{n} ...")
        for kind in ("ours", "mlflow", "ours_ml", "mlflow_ml"):
            samples.setdefault(kind, []).append(run_part(SCRIPT, kind, quick=args.quick))

    def med(kind: str, key: str = "total_ms") -> float:
        return round(median([s[key] for s in samples[kind]]), 3)

    ours, ours_ml = med("ours"), med("ours_ml")
    mlf, mlf_ml = med("mlflow"), med("mlflow_ml")
    rows = [
        row(
            "4. import jupyter_mlops + %load_ext vs import mlflow",
            ours,
            mlf,
            target="≥10×",
            ok=mlf / ours >= 10,
        ),
        row(
            "4b. same, sklearn + pandas already imported",
            ours_ml,
            mlf_ml,
            target="≥10×",
            ok=mlf_ml / ours_ml >= 10,
        ),
    ]
    notes = [
        f"medians of {n} fresh processes each; IPython imported and a shell created before "
        "timing in every process (a kernel has them)",
        f"jupyter_mlops split: import {med('ours', 'import_ms'):.1f} ms + %load_ext "
        f"{med('ours', 'load_ext_ms'):.1f} ms (its warm-up thread keeps importing in the "
        "background; benchmark 5 shows what the first cell still pays)",
    ]
    finish(SCRIPT, rows, notes, time.time() - started)
    return None


if __name__ == "__main__":
    sys.exit(main())
