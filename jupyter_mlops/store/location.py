"""Where the store lives: one resolution rule for kernels, the server, serving processes and the CLI.

``MLOPS_HOME`` if set, else the nearest ``.mlops/`` found walking up from the working
directory, else ``./.mlops/`` (created on first write). Team mode replaces the embedded
database and object folder with ``MLOPS_DB_URL`` (any SQLAlchemy URL) and
``MLOPS_ARTIFACTS_URL`` (any fsspec URL).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..redact import redact

__all__ = ["STORE_DIRNAME", "StoreLocation", "resolve_location"]

STORE_DIRNAME = ".mlops"
DB_FILENAME = "mlops.db"
OBJECTS_DIRNAME = "objects"


@dataclass(frozen=True)
class StoreLocation:
    """The resolved addresses of a store: a home folder, a database URL and an artifacts URL."""

    home: Path
    db_url: str
    artifacts_url: str
    reason: str

    @property
    def embedded(self) -> bool:
        """True when the metadata database is the SQLite file inside ``home``."""
        return self.db_url == _sqlite_url(self.home)

    def describe(self) -> str:
        """One line for humans: where the data goes and why this store was chosen."""
        if self.embedded and self.artifacts_url == str(self.home / OBJECTS_DIRNAME):
            return f"{self.home} ({self.reason})"
        return f"db {redact(self.db_url)}, artifacts {redact(self.artifacts_url)} ({self.reason})"


def _sqlite_url(home: Path) -> str:
    return f"sqlite:///{home / DB_FILENAME}"


def _find_upwards(start: Path) -> Path | None:
    for folder in (start, *start.parents):
        candidate = folder / STORE_DIRNAME
        if candidate.is_dir():
            return candidate
    return None


def resolve_location(
    path_or_url: str | os.PathLike[str] | None = None,
    *,
    artifacts_url: str | None = None,
    cwd: str | os.PathLike[str] | None = None,
) -> StoreLocation:
    """Apply the resolution rule; an explicit folder or database URL wins over the environment."""
    env = os.environ
    start = Path(cwd) if cwd is not None else Path.cwd()
    db_url: str | None = None
    if path_or_url is not None:
        text = os.fspath(path_or_url)
        if "://" in text and not text.startswith("file://"):
            db_url = text
            home = Path(env.get("MLOPS_HOME") or start / STORE_DIRNAME).resolve()
            reason = "given URL"
        else:
            home = Path(text.removeprefix("file://")).expanduser().resolve()
            reason = "given path"
    elif env.get("MLOPS_HOME"):
        home = Path(env["MLOPS_HOME"]).expanduser().resolve()
        reason = "MLOPS_HOME"
    else:
        found = _find_upwards(start.resolve())
        home = found if found is not None else (start / STORE_DIRNAME).resolve()
        reason = "found walking up" if found is not None else "new, created on first write"
    if db_url is None:
        db_url = env.get("MLOPS_DB_URL") or _sqlite_url(home)
        if env.get("MLOPS_DB_URL"):
            reason += ", MLOPS_DB_URL"
    artifacts = artifacts_url or env.get("MLOPS_ARTIFACTS_URL") or str(home / OBJECTS_DIRNAME)
    return StoreLocation(home=home, db_url=db_url, artifacts_url=artifacts, reason=reason)
