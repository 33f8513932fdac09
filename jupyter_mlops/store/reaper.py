"""Close runs whose process died outright (SIGKILL, power loss): they become ``killed``.

Called whenever a process opens a store, so a run is never left ``running`` forever. A run
whose cell completed but whose process could not write it (a full disk) and then ended is
closed with the outcome that process kept (``unsaved``), not as killed.
"""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa

from . import schema
from .process import is_alive
from .unsaved import forget, recall

__all__ = ["close_dead_runs", "dead_runs"]


def dead_runs(conn: sa.Connection) -> list[Any]:
    """The running runs whose writer process on this host is gone (a read)."""
    runs = schema.runs
    rows = conn.execute(
        sa.select(runs.c.run_id, runs.c.host, runs.c.pid, runs.c.proc_start).where(
            runs.c.status == "running"
        )
    ).all()
    return [r for r in rows if is_alive(r.host, r.pid, r.proc_start) is False]


def close_dead_runs(conn: sa.Connection, dead: list[Any]) -> list[str]:
    """Close ``dead`` runs in a write transaction: ``killed``, or the outcome their process
    kept when it could not write the run itself."""
    runs = schema.runs
    now = time.time()
    kept = {r.run_id: recall(r.run_id) for r in dead}
    for r in dead:
        outcome = kept[r.run_id]
        values: dict[str, object] = {
            "status": "killed",
            "end_time": now,
            "error": "The process running this cell died (killed or crashed) before it finished.",
        }
        if outcome and outcome.get("status") in ("finished", "failed", "interrupted"):
            values = {
                "status": outcome["status"],
                "end_time": float(outcome.get("end_time") or now),
                "duration_s": outcome.get("duration_s"),
                "error": "\n".join(
                    filter(
                        None,
                        [
                            outcome.get("error"),
                            f"[jupyter_mlops] The cell {outcome['status']}, but its process "
                            "could not save what it captured (params, metrics, models): "
                            f"{outcome.get('why')}",
                        ],
                    )
                ),
            }
        conn.execute(
            runs.update()
            .where(runs.c.run_id == r.run_id, runs.c.status == "running")
            .values(**values)
        )
    for run_id in kept:
        forget(run_id)
    return [r.run_id for r in dead]
