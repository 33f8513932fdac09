"""The ``jupyter-mlops`` command line: thin wrappers over the services."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ._version import __version__
from .errors import MlopsError

__all__ = ["main"]


def _cmd_runs(args: argparse.Namespace) -> int:
    from .tracking.search import runs

    frame = runs(args.experiment, args.filter, args.order_by, args.limit)
    if args.columns:
        wanted = [c.strip() for c in args.columns.split(",") if c.strip()]
        frame = frame[[c for c in frame.columns if c in wanted]]
    if args.format == "csv":
        frame.to_csv(sys.stdout, index=False)
    elif args.format == "json":
        print(frame.to_json(orient="records", date_format="iso"))
    else:
        import pandas as pd

        if frame.empty:
            print("no runs")
            return 0
        shown = frame.copy()
        if "run_id" in shown:
            shown["run_id"] = shown["run_id"].str[:8]
        with pd.option_context("display.max_columns", 12, "display.width", 200):
            print(shown.to_string(index=False, max_colwidth=30))
    return 0


def _cmd_doctor(args: argparse.Namespace) -> int:
    from .maintenance import check_store
    from .store import current_store

    report = check_store(current_store())
    for line in report.lines():
        print(line)
    return 0 if report.ok else 1


def _cmd_gc(args: argparse.Namespace) -> int:
    from .maintenance import collect_garbage
    from .store import current_store

    report = collect_garbage(current_store(), grace_s=args.grace, dry_run=args.dry_run)
    for line in report.lines():
        print(line)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jupyter-mlops", description="jupyter_mlops: track, version and serve models."
    )
    parser.add_argument("--version", action="version", version=f"jupyter_mlops {__version__}")
    parser.add_argument(
        "--store",
        default=None,
        help="Store folder or database URL (default: MLOPS_HOME or .mlops).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("runs", help="List runs as a table.")
    p.add_argument("-e", "--experiment", default=None)
    p.add_argument("-f", "--filter", default=None, help='e.g. "metrics.accuracy > 0.9"')
    p.add_argument("-o", "--order-by", default=None, help="e.g. -metrics.accuracy")
    p.add_argument("-n", "--limit", type=int, default=50)
    p.add_argument("-c", "--columns", default=None, help="Comma-separated columns to show.")
    p.add_argument("--format", choices=["table", "csv", "json"], default="table")
    p.set_defaults(func=_cmd_runs)
    p = sub.add_parser("doctor", help="Verify the store: schema version and every object's hash.")
    p.set_defaults(func=_cmd_doctor)
    p = sub.add_parser("gc", help="Remove objects nothing references (interrupted snapshots).")
    p.add_argument("--dry-run", action="store_true", help="Only report what would be removed.")
    p.add_argument(
        "--grace", type=float, default=3600.0, help="Keep objects younger than this (seconds)."
    )
    p.set_defaults(func=_cmd_gc)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``jupyter-mlops`` command."""
    args = _parser().parse_args(argv)
    try:
        if args.store:
            from .store import open_store

            open_store(args.store)
        return int(args.func(args))
    except MlopsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
