"""Keep a served model in step with its alias: when ``churn@production`` moves, load the
new version in the background and swap it in. Requests already running keep the model
object they started with, so none is dropped; the switch is an audit event.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from ..registry.references import parse_model_ref
from ..store import Store, schema
from .model import ServedModel, load_version

__all__ = ["AliasFollower", "record_switch"]


def _alias_version(store: Store, name: str, alias: str) -> int | None:
    m, mv, al = schema.models, schema.model_versions, schema.model_aliases
    with store.read() as conn:
        return conn.execute(
            sa.select(mv.c.version)
            .select_from(al.join(m, m.c.model_id == al.c.model_id))
            .join(mv, mv.c.version_id == al.c.version_id)
            .where(m.c.name == name, al.c.alias == alias)
        ).scalar()


def record_switch(
    store: Store, deployment_id: str | None, name: str, alias: str, old: int, new: int
) -> bool:
    """Record the deployment's new version and the audit event, once across workers: only
    the worker whose conditional update wins writes the event."""
    dep, m = schema.deployments, schema.models
    with store.write() as conn:
        if deployment_id is not None:
            changed = conn.execute(
                dep.update()
                .where(dep.c.deployment_id == deployment_id, dep.c.version == old)
                .values(version=new)
            ).rowcount
            if not changed:
                return False
        model_id = conn.execute(sa.select(m.c.model_id).where(m.c.name == name)).scalar()
        conn.execute(
            schema.model_events.insert().values(
                model_id=model_id,
                kind="deployment_switched",
                alias=alias,
                from_version=old,
                to_version=new,
                detail=f"deployment {deployment_id or '(foreground)'} now serves {name}@{new}",
                user=None,
                reason=f"alias {alias} moved",
                time=time.time(),
            )
        )
    return True


class AliasFollower:
    """Polls the alias a deployment serves and swaps in the new version when it moves."""

    def __init__(
        self,
        store: Store,
        reference: str,
        current: Callable[[], ServedModel],
        swap: Callable[[ServedModel], None],
        *,
        deployment_id: str | None = None,
        interval: float = 1.0,
        trusted: bool | list[str] = False,
    ):
        ref = parse_model_ref(reference)
        self.store = store
        self.name = ref.name
        self.alias = ref.alias
        self.current = current
        self.swap = swap
        self.deployment_id = deployment_id
        self.interval = interval
        self.trusted = trusted
        self.error: str | None = None
        self._unrecorded: list[tuple[int, int]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start polling, if the reference is an alias (a fixed version never moves)."""
        if self.alias is None or self.alias == "latest" or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="mlops-follow", daemon=True)
        self._thread.start()

    def check(self) -> bool:
        """Look once; swap if the alias points elsewhere. True when a switch happened."""
        from ..registry.service import get_model_version

        assert self.alias is not None
        version = _alias_version(self.store, self.name, self.alias)
        served = self.current()
        if version is None:
            self.error = (
                f"alias {self.alias} was removed from {self.name}; still serving {served.ref}"
            )
            return False
        if version == served.version:
            self.error = None
            return False
        mv = get_model_version(f"{self.name}@{version}", self.store)
        fresh = load_version(mv, trusted=self.trusted)
        self.swap(fresh)
        self._unrecorded.append((served.version, version))
        self.error = None
        self._record()
        return True

    def _record(self) -> None:
        """Write the switches not yet in the store (retried on the next poll if it is busy)."""
        assert self.alias is not None
        while self._unrecorded:
            old, new = self._unrecorded[0]
            record_switch(self.store, self.deployment_id, self.name, self.alias, old, new)
            self._unrecorded.pop(0)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self._record()
                self.check()
            except Exception as exc:  # keep serving the current version
                self.error = f"{type(exc).__name__}: {exc}"

    def stop(self) -> None:
        """Stop polling."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None


def describe(follower: AliasFollower | None) -> dict[str, Any]:
    """The follower's state for health output."""
    if follower is None or follower.alias is None:
        return {}
    return {"follows": f"{follower.name}@{follower.alias}", "follow_error": follower.error}
