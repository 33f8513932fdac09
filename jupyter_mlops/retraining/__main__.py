"""``python -m jupyter_mlops.retraining --model NAME``: the detached runner that executes a
model's waiting retraining jobs one after another, then exits."""

from __future__ import annotations

import argparse
import signal
import sys


def _stop(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # ends the current job as failed ("interrupted"), cleanly


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jupyter_mlops.retraining")
    parser.add_argument("--model", required=True)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _stop)
    from ..store import current_store
    from .runner import run_jobs

    try:
        count = run_jobs(args.model, current_store())
    except KeyboardInterrupt:
        return 130
    print(f"jupyter_mlops retraining: {count} job(s) of {args.model} done", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
