"""The ``Store``: one metadata database (SQLAlchemy) plus one object store (fsspec).

SQLite is the embedded default, in WAL mode with a busy timeout; write transactions
start with ``BEGIN IMMEDIATE`` so several kernels, the server extension and serving
processes can write at once without deadlocking on lock upgrades. Nothing here assumes
SQLite beyond that connection setup.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConflictError, StoreError, StoreLockedError
from ..redact import redact
from .location import StoreLocation, resolve_location
from .reaper import close_dead_runs, dead_runs

if TYPE_CHECKING:
    import sqlalchemy as sa

    from .objects import ObjectStore

__all__ = ["Store", "open_store"]

_LOCK_RETRIES = 3


def _busy_timeout_s() -> float:
    return float(os.environ.get("MLOPS_BUSY_TIMEOUT", "30"))


class Store:
    """A handle on one store; cheap to create, it connects on first use."""

    def __init__(self, location: StoreLocation):
        self.location = location
        self._lock = threading.Lock()
        self._read_engine: sa.Engine | None = None
        self._write_engine: sa.Engine | None = None
        self._objects: ObjectStore | None = None
        self._ready = False

    # -- description -------------------------------------------------------------------
    @property
    def home(self) -> Path:
        """The store's folder (holds the SQLite file and objects in embedded mode)."""
        return self.location.home

    def describe(self) -> str:
        """Where this store keeps its data, for messages to the user."""
        return self.location.describe()

    def __repr__(self) -> str:
        return f"<Store {self.describe()}>"

    @property
    def exists(self) -> bool:
        """Whether the store has been created (always True for a database server)."""
        if not self.location.embedded:
            return True
        return (self.home / "mlops.db").exists()

    # -- engines -------------------------------------------------------------------------
    def _make_engine(self, immediate: bool) -> sa.Engine:
        import sqlalchemy as sa

        url = self.location.db_url
        if not url.startswith("sqlite"):
            return sa.create_engine(url, pool_pre_ping=True)
        timeout = _busy_timeout_s()
        engine = sa.create_engine(
            url, connect_args={"timeout": timeout, "check_same_thread": False}
        )
        begin = "BEGIN IMMEDIATE" if immediate else "BEGIN"

        @sa.event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            cur.execute("PRAGMA journal_mode = WAL")
            cur.execute("PRAGMA synchronous = NORMAL")
            cur.close()

        @sa.event.listens_for(engine, "begin")
        def _on_begin(conn: Any) -> None:
            conn.exec_driver_sql(begin)

        return engine

    def _engines(self) -> tuple[sa.Engine, sa.Engine]:
        if self._read_engine is None or self._write_engine is None:
            with self._lock:
                if self._write_engine is None:
                    if self.location.embedded:
                        try:
                            self.home.mkdir(parents=True, exist_ok=True)
                        except OSError as exc:
                            raise StoreError(
                                f"Cannot create the store folder {self.home}: {exc}. "
                                "Set MLOPS_HOME to a writable folder."
                            ) from exc
                    write = self._make_engine(immediate=True)
                    read = (
                        self._make_engine(immediate=False)
                        if self.location.db_url.startswith("sqlite")
                        else write
                    )
                    self._read_engine, self._write_engine = read, write
        assert self._read_engine is not None and self._write_engine is not None
        return self._read_engine, self._write_engine

    def _ensure_ready(self) -> None:
        if self._ready:
            return
        import sqlalchemy as sa

        from .migrations import LATEST_VERSION, check_supported, current_version, migrate

        read, write = self._engines()
        with self._translate_errors():
            with read.connect() as conn:
                version = current_version(conn)
            check_supported(version, self.describe())
            if version < LATEST_VERSION:
                with write.begin() as conn:
                    migrate(conn, self.describe())
            self._ready = True
            try:
                with read.connect() as conn:
                    dead = dead_runs(conn)
                if dead:
                    with write.begin() as conn:
                        close_dead_runs(conn, dead)
            except (StoreError, sa.exc.SQLAlchemyError):
                pass

    @contextmanager
    def _translate_errors(self) -> Iterator[None]:
        import sqlalchemy as sa

        try:
            yield
        except sa.exc.OperationalError as exc:
            raise _store_error(exc, self.describe()) from exc

    @contextmanager
    def read(self) -> Iterator[sa.Connection]:
        """A connection for reading (a deferred transaction: never blocks writers)."""
        self._ensure_ready()
        read, _ = self._engines()
        with self._translate_errors(), read.connect() as conn:
            yield conn

    @contextmanager
    def write(self) -> Iterator[sa.Connection]:
        """A write transaction, committed on exit; on SQLite it holds the write lock."""
        self._ensure_ready()
        _, write = self._engines()
        with self._translate_errors(), write.begin() as conn:
            yield conn

    def write_retrying(self, work: Any) -> Any:
        """Run ``work(conn)`` in a write transaction, retrying a few times if the lock stays
        busy or a concurrent writer took the same unique key first (a database server does
        not serialize writers the way SQLite does)."""
        import sqlalchemy as sa

        for attempt in range(_LOCK_RETRIES):
            try:
                with self.write() as conn:
                    return work(conn)
            except (StoreLockedError, sa.exc.IntegrityError) as exc:
                if attempt == _LOCK_RETRIES - 1:
                    if isinstance(exc, sa.exc.IntegrityError):
                        raise ConflictError(
                            f"Another process wrote the same record at the same time ({exc.orig}); "
                            "try again."
                        ) from exc
                    raise
                time.sleep(0.05 * (attempt + 1))
        return None

    @property
    def objects(self) -> ObjectStore:
        """The content-addressed object store of this store."""
        if self._objects is None:
            from .objects import ObjectStore

            self._objects = ObjectStore(self.location.artifacts_url)
        return self._objects

    def dispose(self) -> None:
        """Close pooled connections (after a fork, or before deleting the folder)."""
        for engine in {self._read_engine, self._write_engine} - {None}:
            engine.dispose()  # type: ignore[union-attr]
        self._read_engine = self._write_engine = None
        self._ready = False


def _store_error(exc: Exception, where: str) -> StoreError:
    text = redact(getattr(exc, "orig", exc)).lower()
    if "locked" in text or "busy" in text:
        return StoreLockedError(
            f"The store at {where} stayed locked for more than {_busy_timeout_s():.0f} s "
            "(another process holds a long write). Try again, or raise MLOPS_BUSY_TIMEOUT."
        )
    if "readonly" in text or "read-only" in text or "unable to open" in text:
        return StoreError(
            f"The store at {where} cannot be written ({text}). Make the folder writable "
            "or point MLOPS_HOME at a writable folder."
        )
    if "disk" in text and "full" in text:
        return StoreError(f"The disk holding the store at {where} is full. Free some space.")
    if "malformed" in text or "not a database" in text:
        return StoreError(
            f"The metadata database of the store at {where} is damaged ({text}). "
            "Run `jupyter-mlops doctor` and restore it from a backup."
        )
    return StoreError(
        f"The store at {where} failed: {text}. Run `jupyter-mlops doctor` to check it; if it "
        "reports damage, restore the store folder from a backup."
    )


_current: Store | None = None
_current_lock = threading.Lock()


def open_store(
    path_or_url: str | os.PathLike[str] | None = None, *, artifacts_url: str | None = None
) -> Store:
    """Select the store this process uses (a folder or a SQLAlchemy URL) and return it.

    With no argument, the DESIGN resolution rule applies: ``MLOPS_HOME``, else the nearest
    ``.mlops/`` walking up from the working directory, else ``./.mlops/``.
    """
    global _current
    store = Store(resolve_location(path_or_url, artifacts_url=artifacts_url))
    with _current_lock:
        if _current is not None and _current.location != store.location:
            _current.dispose()
        _current = store
    return store


def current_store() -> Store:
    """The store chosen by ``open_store``, or the one the resolution rule finds."""
    global _current
    with _current_lock:
        if _current is None:
            _current = Store(resolve_location())
        return _current


def reset_current_store() -> None:
    """Forget the selected store so the next use resolves it again (tests, ``chdir``)."""
    global _current
    with _current_lock:
        if _current is not None:
            _current.dispose()
        _current = None
