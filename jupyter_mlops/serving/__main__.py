"""``python -m jupyter_mlops.serving``: the serving process.

Either a deployment recorded in the store (``--deployment ID``, started by
``mlops.deploy``), or a model served in the foreground (``jupyter-mlops serve REF`` or an
exported folder, which is what a container runs).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m jupyter_mlops.serving", description="Serve a registered or exported model."
    )
    p.add_argument(
        "model", nargs="?", help="A model reference (churn@production) or an exported folder."
    )
    p.add_argument("--deployment", help="Serve the deployment with this id (as mlops.deploy does).")
    p.add_argument("--host", default=os.environ.get("MLOPS_SERVE_HOST", "127.0.0.1"))
    p.add_argument("--port", type=int, default=int(os.environ.get("MLOPS_SERVE_PORT", "0") or 0))
    p.add_argument("--workers", type=int, default=int(os.environ.get("MLOPS_SERVE_WORKERS", "1")))
    p.add_argument("--retention", default=None, help="Keep the inference log by age (30d) or rows.")
    p.add_argument("--no-log", action="store_true", help="Do not write the inference log.")
    p.add_argument("--trusted", action="store_true", help="Load model types not known to be safe.")
    p.add_argument("--max-body-mb", type=float, default=16.0)
    p.add_argument(
        "--insecure-no-auth",
        action="store_true",
        help="Serve a non-loopback host without a token (only behind an authenticating proxy).",
    )
    return p


def _serve_deployment(args: argparse.Namespace) -> int:
    import json

    import sqlalchemy as sa

    from ..errors import MlopsError
    from ..registry.service import get_model_version
    from ..store import current_store, schema
    from ..store.process import this_process
    from .app import ServeConfig
    from .deployments import _update
    from .memory import use_system_allocator
    from .model import load_version
    from .server import bind, run

    use_system_allocator()  # before the model loads
    store = current_store()
    dep = schema.deployments
    with store.read() as conn:
        row = conn.execute(sa.select(dep).where(dep.c.deployment_id == args.deployment)).first()
    if row is None:
        print(f"error: no deployment {args.deployment} in {store.describe()}", file=sys.stderr)
        return 2
    options = json.loads(row.options or "{}")
    machine, pid, proc_start = this_process()
    _update(store, row.deployment_id, pid=pid, proc_start=proc_start, machine=machine)
    try:
        sock = bind(row.host, args.port or row.port or 0)
        mv = get_model_version(row.reference, store)
        # trust comes from whoever started this process, never from the store's row
        model = load_version(mv, trusted=bool(args.trusted))
    except MlopsError as exc:
        _update(store, row.deployment_id, status="failed", message=str(exc))
        print(f"error: {exc}", file=sys.stderr)
        return 3
    port = sock.getsockname()[1]
    config = ServeConfig(
        reference=row.reference,
        deployment_id=row.deployment_id,
        token_hash=row.token_hash,
        max_body_bytes=int(options.get("max_body_bytes") or 16 * 1024 * 1024),
        log=bool(options.get("log", True)),
        retention=options.get("retention"),
        trusted=bool(args.trusted),
    )

    def started() -> None:
        _update(
            store,
            row.deployment_id,
            port=port,
            version=model.version,
            status="running",
            started=time.time(),
            message=None,
        )
        print(f"serving {model.ref} ({row.reference}) on http://{row.host}:{port}", flush=True)

    run(
        config,
        sock,
        workers=row.workers,
        model=model if row.workers <= 1 else None,
        on_started=started,
    )
    return 0


def _serve_foreground(args: argparse.Namespace) -> int:
    """``jupyter-mlops serve``: a reference is recorded as a deployment and served here;
    an exported folder is served as is (what a container runs)."""
    from pathlib import Path

    from .app import ServeConfig, hash_token
    from .server import bind, is_loopback, run

    if not args.model:
        print(
            "error: give a model reference (churn@production) or an exported folder",
            file=sys.stderr,
        )
        return 2
    token = os.environ.get("MLOPS_SERVE_TOKEN") or None
    needs_token = not is_loopback(args.host) and not args.insecure_no_auth
    if not Path(args.model).is_dir():
        return _serve_reference(args, token)
    if needs_token and token is None:
        import secrets

        token = secrets.token_urlsafe(24)
        print(f"bearer token (shown once, store it now): {token}", flush=True)
    config = ServeConfig(
        directory=args.model,
        token_hash=hash_token(token) if token else None,
        max_body_bytes=int(args.max_body_mb * 1024 * 1024),
        log=not args.no_log,
        retention=args.retention,
        trusted=args.trusted,
    )
    # load (and check the folder) before listening: a bad folder is one clear error line
    from .memory import use_system_allocator
    from .model import load_directory

    use_system_allocator()

    model = load_directory(args.model, trusted=args.trusted)
    sock = bind(args.host, args.port)
    port = sock.getsockname()[1]

    def started() -> None:
        print(f"serving {args.model} on http://{args.host}:{port} (Ctrl-C stops)", flush=True)

    run(
        config,
        sock,
        workers=args.workers,
        model=model if args.workers <= 1 else None,
        on_started=started,
    )
    return 0


def _serve_reference(args: argparse.Namespace, token: str | None) -> int:
    from ..registry.service import get_model_version
    from ..store import current_store
    from .deployments import create_deployment, mark_stopped

    store = current_store()
    mv = get_model_version(args.model, store)
    deployment_id, shown = create_deployment(
        store,
        mv,
        args.model,
        host=args.host,
        port=args.port,
        workers=args.workers,
        token=token,
        insecure_no_auth=args.insecure_no_auth,
        options={
            "retention": args.retention,
            "log": not args.no_log,
            "trusted": args.trusted,
            "max_body_bytes": int(args.max_body_mb * 1024 * 1024),
        },
    )
    if shown and not token:
        print(f"bearer token (shown once, store it now): {shown}", flush=True)
    args.deployment = deployment_id
    try:
        return _serve_deployment(args)
    finally:
        mark_stopped(store, deployment_id)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the serving process."""
    # before anything loads pyarrow, which reads it once (see serving.memory)
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
    from ..errors import MlopsError

    args = _parser().parse_args(argv)
    try:
        if args.deployment:
            return _serve_deployment(args)
        return _serve_foreground(args)
    except MlopsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
