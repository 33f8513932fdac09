"""The ``jupyter-mlops`` command line: thin wrappers over the services."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ._version import __version__
from .errors import MlopsError, ValidationError

__all__ = ["main"]


def _cmd_runs(args: argparse.Namespace) -> int:
    from .tracking.search import runs

    wanted = [c.strip() for c in (args.columns or "").split(",") if c.strip()]
    # columns named: any param may be among them, a hidden default too
    every = "all" if wanted else None
    frame = runs(args.experiment or "*", args.filter, args.order_by, args.limit, params=every)
    if wanted:
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
        for column in ("run_id", "parent_run_id"):
            if column in shown:
                shown[column] = shown[column].str[:8]
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


def _parameters(pairs: list[str]) -> dict[str, object]:
    """``-p name=value`` pairs; values read as YAML scalars (200, 0.5, true, text)."""
    import yaml

    out: dict[str, object] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise ValidationError(f"-p {pair!r}: write -p name=value.")
        out[name.strip()] = yaml.safe_load(value) if value.strip() else ""
    return out


def _cmd_ci_run(args: argparse.Namespace) -> int:
    import signal

    from .ci.run import ci_run

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # a cancelled CI run ends its job as failed, not "running"

    signal.signal(signal.SIGTERM, stop)

    result = ci_run(
        args.notebook,
        parameters=_parameters(args.parameter),
        gates=args.gate,
        register=args.register,
        promote=args.promote,
        champion=args.champion,
        holdout=args.holdout,
        target=args.target,
        junit=args.junit,
        summary=args.summary,
        output=args.output,
        timeout=args.timeout,
        dry_run=args.dry_run,
    )
    for line in result.lines():
        print(line)
    return result.exit_code


def _cmd_ci_init(args: argparse.Namespace) -> int:
    from .ci.workflow import write_github_workflow

    if not args.github:
        raise ValidationError("Say which CI system: --github (GitHub Actions).")
    path = write_github_workflow(
        args.root,
        force=args.force,
        notebook=args.notebook,
        gates=args.gate or None,
        register=args.register,
        promote=args.promote,
        holdout=args.holdout,
        branch=args.branch,
    )
    print(f"wrote {path}: it runs `jupyter-mlops ci run {args.notebook}` on every push")
    return 0


def _cmd_scheduler(args: argparse.Namespace) -> int:
    from .retraining.scheduler import run_scheduler

    return run_scheduler(interval=args.interval, once=args.once, monitors=not args.no_monitors)


def _cmd_jobs(args: argparse.Namespace) -> int:
    import pandas as pd

    from .retraining.jobs import retraining_jobs

    frame = retraining_jobs(args.model, limit=args.limit)
    if frame.empty:
        print("no retraining or CI jobs")
        return 0
    shown = frame[
        [
            "job_id",
            "model",
            "kind",
            "status",
            "trigger",
            "challenger",
            "passed",
            "promoted",
            "error",
        ]
    ].copy()
    shown["job_id"] = shown["job_id"].str[:8]
    with pd.option_context("display.width", 200):
        print(shown.to_string(index=False, max_colwidth=40))
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from .serving.__main__ import main as serve_main

    argv = [
        args.model,
        "--host",
        args.host,
        "--port",
        str(args.port),
        "--workers",
        str(args.workers),
    ]
    if args.retention:
        argv += ["--retention", args.retention]
    if args.no_log:
        argv.append("--no-log")
    if args.trusted:
        argv.append("--trusted")
    if args.insecure_no_auth:
        argv.append("--insecure-no-auth")
    return serve_main(argv)


def _cmd_deployments(args: argparse.Namespace) -> int:
    import pandas as pd

    from .serving.deployments import deployments

    frame = deployments(args.model, all=args.all)
    if frame.empty:
        print("no deployments")
    else:
        with pd.option_context("display.max_columns", 12, "display.width", 200):
            print(frame.drop(columns=["message"]).to_string(index=False))
        for row in frame.itertuples():
            if row.message:
                print(f"{row.deployment_id}: {row.message}")
    if args.all:
        _print_launchers()
    return 0


def _print_launchers() -> None:
    """The warm launchers on this machine: one per store at most, each exits once idle."""
    import time

    import pandas as pd

    from .serving.launcher import launchers

    found = launchers()
    if not found:
        print("\nno launchers")
        return

    def idle(item: dict) -> str:
        if item["status"] != "ready":
            return "starting"
        if item["idle_since"] is None:
            return "in use"
        left = item["idle_exit_s"] - (time.time() - item["idle_since"])
        since = time.strftime("%H:%M:%S", time.localtime(item["idle_since"]))
        return f"{since} (exits in {max(left, 0):.0f} s)"

    table = pd.DataFrame(
        [
            {
                "pid": item["pid"],
                "store": item["store"],
                "idle since": idle(item),
                "deployments": ", ".join(item["deployments"]) or "—",
                "kernels": item["kernels"],
            }
            for item in found
        ]
    )
    print("\nlaunchers (one per store; a launcher exits once idle):")
    with pd.option_context("display.max_columns", 12, "display.width", 200):
        print(table.to_string(index=False))


def _cmd_undeploy(args: argparse.Namespace) -> int:
    from .serving.deployments import undeploy

    for d in undeploy(args.reference):
        print(f"stopped {d.deployment_id} ({d.reference})")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from .serving.export import describe_export, export_model

    folder = export_model(
        args.reference, args.format, args.outdir, trusted=args.trusted, image=args.image
    )
    for line in describe_export(folder):
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
    p.add_argument("-e", "--experiment", default=None, help="Only this experiment (default: all).")
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
    p = sub.add_parser(
        "serve", help="Serve a model in the foreground (OIP v2, /invocations, /metrics)."
    )
    p.add_argument("model", help="A model reference (churn@production) or an exported folder.")
    p.add_argument("--host", default="127.0.0.1", help="Non-loopback hosts need a bearer token.")
    p.add_argument("--port", type=int, default=8080, help="0 picks a free port.")
    p.add_argument("--workers", type=int, default=1, help="Worker processes sharing the port.")
    p.add_argument("--retention", default=None, help="Keep the inference log: 30d or 1000000.")
    p.add_argument("--no-log", action="store_true", help="Do not write the inference log.")
    p.add_argument("--trusted", action="store_true", help="Load types not known to be safe.")
    p.add_argument(
        "--insecure-no-auth",
        action="store_true",
        help="No token on a non-loopback host (only behind an authenticating proxy).",
    )
    p.set_defaults(func=_cmd_serve)
    p = sub.add_parser("deployments", help="List deployments with their live status.")
    p.add_argument("model", nargs="?", default=None)
    p.add_argument(
        "--all",
        action="store_true",
        help="Include stopped deployments, and list the warm launchers on this machine.",
    )
    p.set_defaults(func=_cmd_deployments)
    p = sub.add_parser("undeploy", help="Stop a deployment (reference, model name or id).")
    p.add_argument("reference")
    p.set_defaults(func=_cmd_undeploy)
    p = sub.add_parser(
        "export",
        help="Export a model for other platforms: MLflow, ONNX, a Docker image, KServe.",
    )
    p.add_argument("reference", help="A model reference (churn@production).")
    p.add_argument(
        "--format",
        required=True,
        metavar="{mlflow,onnx,docker,kserve}",
        help="mlflow (MLflow model folder), onnx (model.onnx, checked in onnxruntime), "
        "docker (image build context) or kserve (docker context plus an InferenceService).",
    )
    p.add_argument("outdir", help="A new or empty folder, or a previous export to replace.")
    p.add_argument(
        "--image", default=None, help="Image tag to build and run (default: NAME:VERSION)."
    )
    p.add_argument("--trusted", action="store_true", help="Load types not known to be safe.")
    p.set_defaults(func=_cmd_export)
    ci = sub.add_parser("ci", help="CI/CD for models: run a notebook, gate, register, promote.")
    ci_sub = ci.add_subparsers(dest="ci_command", required=True)
    p = ci_sub.add_parser(
        "run",
        help="Execute a training notebook headless, gate its model, register and promote it.",
    )
    p.add_argument("notebook")
    p.add_argument(
        "-p", "--parameter", action="append", default=[], metavar="NAME=VALUE",
        help="A papermill parameter for the cell tagged 'parameters' (repeatable).",
    )  # fmt: skip
    p.add_argument(
        "--gate", action="append", default=[], metavar="CHECK",
        help="A check (repeatable): 'accuracy>=0.9' or 'f1>=champion-0.01' scored on "
        "--holdout; 'metrics.NAME>=0.9' on the value the run recorded; 'mypkg.gates:fn'.",
    )  # fmt: skip
    p.add_argument("--register", metavar="MODEL", help="Register the model as MODEL if it passes.")
    p.add_argument("--promote", metavar="ALIAS", help="Then move MODEL@ALIAS to it.")
    p.add_argument(
        "--champion", metavar="ALIAS", help="Compare with MODEL@ALIAS (default: --promote's)."
    )
    p.add_argument("--holdout", metavar="DATA", help="Data version both models are scored on.")
    p.add_argument("--target", metavar="COLUMN", help="The holdout's label column.")
    p.add_argument("--junit", metavar="FILE", help="Write a JUnit XML report.")
    p.add_argument("--summary", metavar="FILE", help="Write a Markdown summary.")
    p.add_argument("--output", metavar="FILE", help="Keep the executed notebook here too.")
    p.add_argument(
        "--timeout", type=float, default=None, help="Seconds each cell may run (not the whole run)."
    )
    p.add_argument(
        "--dry-run", action="store_true", help="Gate only: register and promote nothing."
    )
    p.set_defaults(func=_cmd_ci_run)
    p = ci_sub.add_parser("init", help="Write a CI workflow that runs `ci run` on push.")
    p.add_argument("--github", action="store_true", help="GitHub Actions (.github/workflows).")
    p.add_argument("--notebook", default="notebooks/train.ipynb")
    p.add_argument("--gate", action="append", default=[], metavar="CHECK")
    p.add_argument("--register", default="model", metavar="MODEL")
    p.add_argument("--promote", default="staging", metavar="ALIAS")
    p.add_argument("--holdout", default=None, metavar="DATA")
    p.add_argument("--branch", default="main")
    p.add_argument("--root", default=".", help="The repository's root folder.")
    p.add_argument("--force", action="store_true", help="Replace an existing workflow.")
    p.set_defaults(func=_cmd_ci_init)
    p = sub.add_parser(
        "scheduler",
        help="Run due monitors and retraining policies in a loop (what the server "
        "extension does inside JupyterLab).",
    )
    p.add_argument("--interval", type=float, default=30.0, help="Seconds between rounds.")
    p.add_argument("--once", action="store_true", help="One round, then exit.")
    p.add_argument("--no-monitors", action="store_true", help="Only retraining policies.")
    p.set_defaults(func=_cmd_scheduler)
    p = sub.add_parser("jobs", help="List retraining and CI jobs.")
    p.add_argument("model", nargs="?", default=None)
    p.add_argument("--limit", type=int, default=50)
    p.set_defaults(func=_cmd_jobs)
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
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
