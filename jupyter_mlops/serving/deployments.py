"""Deployments: a registered model served as a local REST endpoint in its own process.

The process outlives the kernel that started it (its own session, output to a log file
in the store), and its state (reference, version, host, port, pid, status) lives in the
store, so every kernel, the CLI and the server extension see the same list. Status is
checked, not assumed: the pid must be alive and ``/v2/health/ready`` must answer.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from ..errors import MlopsError, NotFoundError, ValidationError
from ..registry.references import parse_model_ref
from ..store import Store, current_store, schema
from ..store.process import _host, _proc_start, group_alive, is_alive
from .app import hash_token
from .server import is_loopback

__all__ = [
    "Deployment",
    "DeploymentError",
    "create_deployment",
    "deploy",
    "deployment_curl",
    "deployments",
    "get_deployment",
    "restart_deployment",
    "undeploy",
]

_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}
# A deployment that was deployed this long ago and never got a process is dead: deploy()
# waits at most 30 s for the launcher plus its ``wait`` (60 s) for the process.
_START_GRACE_S = 120.0


class DeploymentError(MlopsError):
    """A deployment could not start or stopped unexpectedly."""

    code = "deployment"


def _alive(row: Any) -> bool | None:
    """Whether the serving process of a deployment row (or Deployment) still runs."""
    if row.pid is None:
        return False
    child = _CHILDREN.get(row.pid)
    if child is not None and child.poll() is not None:
        return False
    return is_alive(row.machine, row.pid, row.proc_start)


def _ready(host: str, port: int | None, timeout: float = 1.0) -> bool:
    if not port:
        return False
    import http.client

    target = "127.0.0.1" if host in ("0.0.0.0", "") else ("::1" if host == "::" else host)
    try:
        conn = http.client.HTTPConnection(target, port, timeout=timeout)
        conn.request("GET", "/v2/health/ready")
        ok = conn.getresponse().status == 200
        conn.close()
        return ok
    except OSError:
        return False


def _tail(path: str | None, lines: int = 20) -> str:
    if not path:
        return ""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            text = fh.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


@dataclass
class Deployment:
    """A served model: where it listens, which version it serves, and its live status."""

    deployment_id: str
    reference: str
    model_name: str
    version: int | None
    host: str
    port: int | None
    workers: int
    pid: int | None
    state: str
    message: str | None
    created: float
    started: float | None
    log_path: str | None
    options: dict[str, Any] = field(default_factory=dict)
    machine: str | None = field(default=None, repr=False)
    proc_start: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    requests: int = 0
    _store: Store | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        # every object of this deployment in this process learns of its stop (undeploy by
        # id, reference or model name, d.stop(), a restart)
        refs = _OBJECTS.setdefault(self.deployment_id, [])
        refs[:] = [r for r in refs if r() is not None]
        refs.append(weakref.ref(self))

    @property
    def status(self) -> str:
        """The live status, checked now: running, starting, unhealthy, dead, failed, stopped
        (``state`` holds the status last read or checked; a stop in this process sets it
        on every object of the deployment)."""
        if self.state in ("stopped", "failed"):
            return self.state
        try:
            fresh = self.refresh()
        except NotFoundError:  # its store was deleted or replaced
            return self.state
        self._take(fresh)
        return self.state

    def _take(self, fresh: Deployment) -> None:
        """Take the state of a fresher read of the same deployment, in place."""
        for name in ("state", "message", "version", "port", "pid", "started", "requests"):
            setattr(self, name, getattr(fresh, name))
        self.proc_start = fresh.proc_start

    @property
    def url(self) -> str:
        """The base URL clients call."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def infer_url(self) -> str:
        """The Open Inference Protocol v2 endpoint."""
        return f"{self.url}/v2/models/{self.model_name}/infer"

    def refresh(self) -> Deployment:
        """This deployment's current state, health-checked."""
        return get_deployment(self.deployment_id, store=self._store)

    def logs(self, lines: int = 50) -> str:
        """The last lines the serving process wrote."""
        return _tail(self.log_path, lines)

    def stop(self) -> Deployment:
        """Stop serving (flushes the inference log) and record it as stopped; this object
        says so too (and is returned)."""
        _stop(self, self._store or current_store())
        self._take(self.refresh())
        return self

    def restart(self, *, trusted: bool = False) -> Deployment:
        """Stop and start again with every option it was deployed with (host, port, token,
        workers, ...); returns the new deployment. Trust is never read back from the store:
        pass ``trusted=True`` again for a model that needs it."""
        return restart_deployment(self.deployment_id, trusted=trusted, store=self._store)

    def curl(self) -> str:
        """A curl command that calls this deployment with one row the model takes: each
        column as its signature asks (text as ``BYTES``), valued from the newest row it
        served, else from its training data (see ``serving.example``)."""
        return deployment_curl(
            self._store or current_store(),
            self.model_name,
            self.version,
            self.infer_url,
            auth=bool(self.options.get("auth")),
            reference=self.reference,
        )

    def _current(self) -> None:
        """Before showing it: the status now (stopped from anywhere, dead, running)."""
        try:
            self.status  # noqa: B018 (a property that checks and updates the state)
        except Exception:  # showing an object never fails; it shows what it last knew
            pass

    def _repr_html_(self) -> str:
        from ..html import deployment_card

        self._current()
        return deployment_card(self)

    def __repr__(self) -> str:
        self._current()
        version = f"@{self.version}" if self.version is not None else ""
        token = f"\n  token (shown once, store it now): {self.token}" if self.token else ""
        return (
            f"<Deployment {self.deployment_id} {self.model_name}{version} "
            f"({self.reference}) {self.state} at {self.url}>{token}"
        )


_OBJECTS: dict[str, list[weakref.ref[Deployment]]] = {}


def _stopped_in_place(store: Store, deployment_id: str) -> None:
    """After a stop: every Deployment object of ``deployment_id`` in this process takes the
    recorded state (``stopped``, or ``failed`` with its message)."""
    dep = schema.deployments
    with store.read() as conn:
        row = conn.execute(sa.select(dep).where(dep.c.deployment_id == deployment_id)).first()
    if row is None or row.status not in ("stopped", "failed"):
        return
    for ref in _OBJECTS.get(deployment_id, []):
        obj = ref()
        if obj is not None:
            obj.state, obj.message = row.status, row.message


def deployment_curl(
    store: Store,
    model: str,
    version: int | None,
    infer_url: str,
    *,
    auth: bool = False,
    reference: str | None = None,
) -> str:
    """The "Try it" curl of a deployment of ``model`` (version ``version``, else the one
    ``reference`` names); a version that cannot be read gets a body naming its columns."""
    from ..registry.service import get_model_version
    from .example import curl_command, example_request

    try:
        mv = get_model_version(f"{model}@{version}" if version else str(reference), store)
        body = example_request(mv, store)
    except Exception:
        body = {"inputs": [{"name": "...", "shape": [1], "datatype": "FP64", "data": [0.0]}]}
    return curl_command(infer_url, body, auth=auth)


def _from_row(row: Any, store: Store, *, check: bool = True) -> Deployment:
    status, message = row.status, row.message
    if check and status == "starting" and row.pid is None:
        # recorded, its process not started yet (the launcher may still be importing)
        if time.time() - (row.created or 0) > _START_GRACE_S:
            status = "dead"
            message = (
                "Its serving process never started (whoever deployed it ended first). "
                "Start it again with mlops.deploy()."
            )
    elif check and status not in ("stopped", "failed"):
        alive = _alive(row)
        if alive is None:
            message = f"Runs on {row.machine}; its status is as recorded there."
        elif alive is False:
            tail = _tail(row.log_path, 5)
            status = "dead"
            message = (
                f"The serving process (pid {row.pid}) is gone"
                + (f"; its last lines:\n{tail}" if tail else ".")
                + " Start it again with mlops.deploy()."
            )
        elif alive and row.status == "running" and not _ready(row.host, row.port):
            status = "unhealthy"
            message = "The process runs but /v2/health/ready does not answer 200."
    options = json.loads(row.options) if row.options else {}
    return Deployment(
        deployment_id=row.deployment_id,
        reference=row.reference,
        model_name=row.model_name,
        version=row.version,
        host=row.host,
        port=row.port,
        workers=row.workers,
        pid=row.pid,
        state=status,
        message=message,
        created=row.created,
        started=row.started,
        log_path=row.log_path,
        options=options,
        machine=row.machine,
        proc_start=row.proc_start,
        _store=store,
    )


def _request_counts(store: Store, ids: list[str]) -> dict[str, int]:
    """Requests logged per deployment: online ones (counted in the log's segments) and
    batch entries."""
    if not ids:
        return {}
    log, seg = schema.inference_log, schema.inference_segments
    counts: dict[str, int] = {}
    with store.read() as conn:
        for query in (
            sa.select(seg.c.deployment_id, sa.func.sum(seg.c.requests))
            .where(seg.c.deployment_id.in_(ids))
            .group_by(seg.c.deployment_id),
            sa.select(log.c.deployment_id, sa.func.count())
            .where(log.c.deployment_id.in_(ids))
            .group_by(log.c.deployment_id),
        ):
            for deployment_id, count in conn.execute(query):
                counts[deployment_id] = counts.get(deployment_id, 0) + int(count or 0)
    return counts


def get_deployment(deployment_id: str, *, store: Store | None = None) -> Deployment:
    """One deployment by id, health-checked."""
    store = store or current_store()
    dep = schema.deployments
    row = None
    if store.exists:
        with store.read() as conn:
            row = conn.execute(sa.select(dep).where(dep.c.deployment_id == deployment_id)).first()
    if row is None:
        raise NotFoundError(f"No deployment {deployment_id!r}; see mlops.deployments().")
    found = _from_row(row, store)
    found.requests = _request_counts(store, [deployment_id]).get(deployment_id, 0)
    return found


def _rows(store: Store, model: str | None, include_stopped: bool) -> list[Any]:
    dep = schema.deployments
    query = sa.select(dep).order_by(dep.c.created)
    if model is not None:
        query = query.where(dep.c.model_name == parse_model_ref(model).name)
    if not include_stopped:
        query = query.where(dep.c.status.not_in(["stopped", "failed"]))
    if not store.exists:
        return []
    with store.read() as conn:
        return list(conn.execute(query))


def deployments(model: str | None = None, *, all: bool = False, store: Store | None = None) -> Any:
    """Deployments as a DataFrame with their live status (stopped and failed ones too with
    ``all=True``)."""
    import pandas as pd

    store = store or current_store()
    rows = _rows(store, model, all)
    if len(rows) > 1:  # health probes at once: one slow deployment does not add up
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(min(8, len(rows))) as pool:
            found = list(pool.map(lambda r: _from_row(r, store), rows))
    else:
        found = [_from_row(r, store) for r in rows]
    counts = _request_counts(store, [d.deployment_id for d in found])
    columns = [
        "deployment_id",
        "reference",
        "model",
        "version",
        "status",
        "url",
        "requests",
        "pid",
        "workers",
        "started",
        "message",
    ]
    frame = pd.DataFrame(
        [
            (
                d.deployment_id,
                d.reference,
                d.model_name,
                d.version,
                d.state,
                d.url if d.port else None,
                counts.get(d.deployment_id, 0),
                d.pid,
                d.workers,
                pd.Timestamp(d.started, unit="s") if d.started else pd.NaT,
                d.message,
            )
            for d in found
        ],
        columns=columns,
    )
    frame["version"] = frame["version"].astype("Int64")
    frame["pid"] = frame["pid"].astype("Int64")
    return frame


def _update(store: Store, deployment_id: str, **values: Any) -> None:
    dep = schema.deployments
    with store.write() as conn:
        conn.execute(dep.update().where(dep.c.deployment_id == deployment_id).values(**values))


def mark_stopped(store: Store, deployment_id: str) -> None:
    """Record a stop, keeping ``failed`` (and its message) when the start had failed."""
    dep = schema.deployments
    with store.write() as conn:
        conn.execute(
            dep.update()
            .where(dep.c.deployment_id == deployment_id, dep.c.status != "failed")
            .values(status="stopped", stopped=time.time())
        )


def _kill_group(pid: int, timeout: float = 45.0) -> None:
    """SIGTERM the deployment's process group and wait until every member (the server and
    any workers, which flush their inference log on the way out) has exited; SIGKILL what
    is left after ``timeout`` (longer than graceful shutdown plus the final flush)."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    except PermissionError:
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    child = _CHILDREN.get(pid)
    while time.monotonic() < deadline:
        if child is not None:
            child.poll()  # reap our own child so it does not linger as a zombie
        if not group_alive(pid):
            break
        time.sleep(0.05)
    else:
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if child is not None:
            child.wait(5)
    _CHILDREN.pop(pid, None)


def _stop(d: Deployment, store: Store) -> None:
    if d.machine not in (None, _host()) and d.state not in ("stopped", "failed"):
        raise MlopsError(
            f"Deployment {d.deployment_id} runs on {d.machine}; stop it there "
            f"(jupyter-mlops undeploy {d.deployment_id})."
        )
    if d.pid and d.state != "stopped" and (_alive(d) or group_alive(d.pid)):
        _kill_group(d.pid)
    mark_stopped(store, d.deployment_id)
    _stopped_in_place(store, d.deployment_id)


def _live_for(store: Store, reference: str, host: str, port: int | None) -> Deployment | None:
    for row in _rows(store, parse_model_ref(reference).name, False):
        if row.reference != reference or row.host != host:
            continue
        if port not in (None, 0) and row.port != port:
            continue
        found = _from_row(row, store)
        if found.state in ("running", "starting"):
            return found
    return None


def _log_dir(store: Store) -> Path:
    folder = store.home / "deployments"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def create_deployment(
    store: Store,
    mv: Any,
    reference: str,
    *,
    host: str,
    port: int | None,
    workers: int,
    token: str | None,
    options: dict[str, Any],
    insecure_no_auth: bool = False,
) -> tuple[str, str | None]:
    """Record a new deployment (status ``starting``); returns its id and the token to show
    once (generated when the host is not loopback and none was given)."""
    if token is not None and not token.strip():
        raise ValidationError(
            "The token is empty; pass a real secret, or leave token= out to have one generated."
        )
    auth = (not is_loopback(host) and not insecure_no_auth) or token is not None
    if auth and token is None:
        token = secrets.token_urlsafe(24)
    deployment_id = _insert_deployment(
        store,
        mv,
        reference,
        host=host,
        port=port,
        workers=workers,
        token_hash=hash_token(token) if auth and token else None,
        options={**options, "auth": auth},
    )
    return deployment_id, token if auth else None


def _insert_deployment(
    store: Store,
    mv: Any,
    reference: str,
    *,
    host: str,
    port: int | None,
    workers: int,
    token_hash: str | None,
    options: dict[str, Any],
) -> str:
    deployment_id = "d-" + uuid.uuid4().hex[:10]
    log_path = str(_log_dir(store) / f"{deployment_id}.log")
    options = {**options, "columns": [i["name"] for i in mv.signature.get("inputs", [])][:50]}
    with store.write() as conn:
        conn.execute(
            schema.deployments.insert().values(
                deployment_id=deployment_id,
                model_name=mv.name,
                reference=reference,
                version=mv.version,
                host=host,
                port=port or None,
                workers=workers,
                machine=_host(),
                status="starting",
                token_hash=token_hash,
                options=json.dumps(options),
                log_path=log_path,
                created=time.time(),
            )
        )
    return deployment_id


def deploy(
    reference: str,
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    workers: int = 1,
    token: str | None = None,
    retention: str | int | None = None,
    log: bool = True,
    trusted: bool = False,
    max_body_mb: float = 16,
    wait: float = 60.0,
    store: Store | None = None,
) -> Deployment:
    """Serve a registered model in its own process and wait until it answers.

    ``reference`` is ``name@alias``, ``name@N`` or ``name``; an alias is followed when it
    moves. A host other than loopback needs a bearer token: one is generated and shown
    once (``Deployment.token``) unless ``token=`` is given; only its hash is stored.
    Deploying a reference that is already served on the same host returns that deployment.
    """
    from ..registry.service import get_model_version

    store = store or current_store()
    if workers < 1:
        raise ValidationError("workers must be at least 1.")
    if port is not None and not 0 <= port <= 65535:
        raise ValidationError(f"port must be between 0 and 65535, got {port}.")
    mv = get_model_version(reference, store)  # a clear NotFoundError before any process starts
    existing = _live_for(store, reference, host, port)
    if existing is not None:
        existing.requests = _request_counts(store, [existing.deployment_id]).get(
            existing.deployment_id, 0
        )
        return existing
    deployment_id, shown_token = create_deployment(
        store,
        mv,
        reference,
        host=host,
        port=port,
        workers=workers,
        token=token,
        options={
            "retention": retention,
            "log": log,
            "trusted": trusted,
            "max_body_bytes": int(max_body_mb * 1024 * 1024),
        },
    )
    log_path = str(_log_dir(store) / f"{deployment_id}.log")
    pid = _start_process(store, deployment_id, port or 0, log_path, trusted=trusted)
    try:
        return _wait_ready(store, deployment_id, reference, pid, log_path, wait, shown_token)
    except KeyboardInterrupt:  # do not leave a half-started server behind
        _kill_group(pid, timeout=5)
        _update(store, deployment_id, status="failed", message="interrupted while starting")
        raise


def _wait_ready(
    store: Store,
    deployment_id: str,
    reference: str,
    pid: int,
    log_path: str,
    wait: float,
    shown_token: str | None,
) -> Deployment:
    deadline = time.monotonic() + wait
    while True:
        found = get_deployment(deployment_id, store=store)
        if found.state == "running" and _ready(found.host, found.port, 2.0):
            found.token = shown_token
            return found
        if found.state in ("failed", "dead"):
            _kill_group(pid)
            message = found.message or _tail(log_path, 10) or "the process exited"
            if found.state != "failed":
                _update(store, deployment_id, status="failed", message=message)
            raise DeploymentError(f"Deployment of {reference} failed to start: {message}")
        if time.monotonic() > deadline:
            _kill_group(pid)
            message = f"not ready after {wait:g} s; last log lines:\n{_tail(log_path, 10)}"
            _update(store, deployment_id, status="failed", message=message)
            raise DeploymentError(f"Deployment of {reference} failed to start: {message}")
        time.sleep(0.02)


def _start_process(
    store: Store, deployment_id: str, port: int, log_path: str, *, trusted: bool = False
) -> int:
    """Start the serving process: forked by the store's warm launcher when one runs
    (a fraction of a second; the first deployment of a store starts the launcher and waits
    for its imports), else a new interpreter. Returns the pid, recorded in the store.

    ``trusted`` goes to the process from here (its command line, or the launcher's local
    socket), never through the store: whoever can write the database must not be able to
    make a deployment load a model with trust."""
    from .launcher import (
        add_lease,
        ensure_launcher,
        launch,
        launcher_usable,
        spawn_detached,
        store_env,
        wait_for_launcher,
    )

    loc = store.location
    env = store_env(store)
    pid = None
    usable = os.environ.get("MLOPS_LAUNCHER", "1") != "0" and launcher_usable(loc.home)
    if usable:
        pid = launch(loc.home, deployment_id, port, env, log_path, trusted=trusted)
        if pid is None:  # start it (or join the one starting) and wait for its imports:
            started = ensure_launcher(loc.home, env)  # what a new process pays anyway
            pid = wait_for_launcher(
                loc.home,
                started,
                30.0,
                lambda: launch(loc.home, deployment_id, port, env, log_path, trusted=trusted),
            )
    if pid is None:
        command = [
            sys.executable,
            "-m",
            "jupyter_mlops.serving",
            "--deployment",
            deployment_id,
            "--port",
            str(port),
            *(["--trusted"] if trusted else []),
        ]
        child = spawn_detached(command, log_path, env)
        _CHILDREN[child.pid] = child
        pid = child.pid
        if usable:  # a launcher that starts later stays while this deployment runs
            add_lease(loc.home, pid, "deployment", deployment_id)
    _update(store, deployment_id, pid=pid, proc_start=_proc_start(pid))
    return pid


def restart_deployment(
    deployment_id: str, *, trusted: bool = False, wait: float = 60.0, store: Store | None = None
) -> Deployment:
    """Stop a deployment (when it still runs) and start it again exactly as it was
    deployed: the same reference, host, port, workers and token (its stored hash, so
    clients keep theirs; none is shown), logging, retention and body limit. The restart is
    a new deployment recording ``restarted_from``; the old one is stopped. Trust is the
    caller's to give again (``trusted=True``), never read back from the store."""
    from ..registry.service import get_model_version

    store = store or current_store()
    old = get_deployment(deployment_id, store=store)
    dep = schema.deployments
    with store.read() as conn:
        row = conn.execute(sa.select(dep).where(dep.c.deployment_id == deployment_id)).one()
    mv = get_model_version(row.reference, store)  # a clear error before anything stops
    if old.state not in ("stopped", "failed"):
        _stop(old, store)
    options = {k: v for k, v in old.options.items() if k != "columns"}
    options["trusted"] = trusted
    new_id = _insert_deployment(
        store,
        mv,
        row.reference,
        host=row.host,
        port=row.port,
        workers=row.workers,
        token_hash=row.token_hash,
        options={**options, "restarted_from": deployment_id},
    )
    log_path = str(_log_dir(store) / f"{new_id}.log")
    pid = _start_process(store, new_id, row.port or 0, log_path, trusted=trusted)
    try:
        return _wait_ready(store, new_id, row.reference, pid, log_path, wait, None)
    except KeyboardInterrupt:
        _kill_group(pid, timeout=5)
        _update(store, new_id, status="failed", message="interrupted while starting")
        raise


def undeploy(reference: str | Deployment, *, store: Store | None = None) -> list[Deployment]:
    """Stop deployments: a deployment id (or a Deployment), a reference
    (``churn@production``) stops that one, a bare model name stops all of that model's.
    Returns what was stopped; Deployment objects of them in this process say so too."""
    store = store or current_store()
    if isinstance(reference, Deployment):
        reference = reference.deployment_id
    if reference.startswith("d-"):
        targets = [get_deployment(reference, store=store)]
    else:
        parsed = parse_model_ref(reference)
        bare = "@" not in reference
        targets = [
            _from_row(r, store, check=False)
            for r in _rows(store, parsed.name, False)
            if bare or r.reference == reference
        ]
        if not targets:
            raise NotFoundError(
                f"No active deployment of {reference}; mlops.deployments() lists them."
            )
    stopped = []
    for d in targets:
        _stop(d, store)
        stopped.append(get_deployment(d.deployment_id, store=store))
    return stopped
