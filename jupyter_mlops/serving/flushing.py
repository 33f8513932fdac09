"""Asking running deployments to write their inference log now: what feedback sent right
after traffic needs, since a deployment otherwise writes its log about once a second.

Kept apart from ``deployments`` (which imports the serving app) so the inference log can
call it without an import cycle.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from ..store import Store, schema
from ..store.process import _host, is_alive

__all__ = ["flush_deployments", "post_flush"]


def post_flush(
    host: str, port: int | None, model: str, token: str | None, timeout: float
) -> dict[str, Any] | None:
    """POST a deployment's flush route; its answer, or None when it did not answer 200."""
    if not port:
        return None
    import http.client

    target = "127.0.0.1" if host in ("0.0.0.0", "") else ("::1" if host == "::" else host)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        conn = http.client.HTTPConnection(target, port, timeout=timeout)
        try:
            conn.request("POST", f"/v2/models/{model}/flush", headers=headers)
            response = conn.getresponse()
            body = response.read()
        finally:
            conn.close()
    except OSError:
        return None
    if response.status != 200:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


def flush_deployments(
    store: Store, model: str | None = None, *, skip: str | None = None, timeout: float = 5.0
) -> bool | None:
    """Ask every running deployment (of ``model``, all when None) to write its inference
    log now. None when none runs; True when each one answered and serves with one worker,
    so every prediction they answered before the call is in the store; False when that is
    not known (a token, several workers, another machine, no answer)."""
    dep = schema.deployments
    query = sa.select(dep).where(dep.c.status.in_(["running", "starting"]))
    if model is not None:
        query = query.where(dep.c.model_name == model)
    if not store.exists:
        return None
    with store.read() as conn:
        rows = list(conn.execute(query))
    rows = [r for r in rows if is_alive(r.machine, r.pid, r.proc_start) is not False]
    if not rows:
        return None
    certain = True
    for row in rows:
        if row.deployment_id == skip and row.workers == 1:
            continue  # the caller has just flushed it
        if row.token_hash or row.machine != _host():
            certain = False  # cannot ask it: its own next flush (within a second) is awaited
            continue
        answer = post_flush(row.host, row.port, row.model_name, None, min(timeout, 5.0))
        if answer is None or row.workers > 1:
            certain = False
    return certain
