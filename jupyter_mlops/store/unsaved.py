"""Outcomes of runs that ended while the store could not be written (a full disk, a
read-only folder, a database that stayed locked).

The process keeps the whole run in memory and saves it when the store can be written
again; this module keeps only the outcome (status, end time, error) in a small file in the
system's temporary folder, so that if the process ends first, the reaper records the run
with its true outcome instead of calling it a crash that did not happen.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["forget", "recall", "remember"]


def _folder() -> Path:
    return Path(tempfile.gettempdir()) / f"jupyter_mlops-unsaved-{os.getuid()}"


def _path(run_id: str) -> Path:
    if not run_id.isalnum():
        raise ValueError(f"not a run id: {run_id!r}")
    return _folder() / f"{run_id}.json"


def remember(run_id: str, outcome: dict[str, Any]) -> bool:
    """Keep ``outcome`` for ``run_id``; False when even this small file cannot be written."""
    try:
        folder = _folder()
        folder.mkdir(mode=0o700, exist_ok=True)
        tmp = folder / f".{run_id}.tmp"
        tmp.write_text(json.dumps(outcome, default=str))
        os.replace(tmp, _path(run_id))
        return True
    except OSError:
        return False


def recall(run_id: str) -> dict[str, Any] | None:
    """The outcome kept for ``run_id`` by a process of this user, if any."""
    try:
        path = _path(run_id)
        if path.stat().st_uid != os.getuid() or path.parent.stat().st_uid != os.getuid():
            return None  # only this user's processes may vouch for this user's runs
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def forget(run_id: str) -> None:
    """Drop the outcome once the run is saved."""
    try:
        _path(run_id).unlink(missing_ok=True)
    except (OSError, ValueError):
        pass
