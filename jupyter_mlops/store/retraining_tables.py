"""The retraining tables as migration 8 creates them: a retraining policy per model and
the retraining jobs (also CI runs) with their steps, gate results and outcome.

Shared by that migration and by ``schema`` while they agree; a later migration that
changes these tables must copy this definition into itself first.
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = ["retraining_tables"]


def retraining_tables(md: sa.MetaData) -> None:
    """Declare the retraining tables of migration 8 on ``md``."""
    sa.Table(
        "retraining_policies",
        md,
        sa.Column("model_name", sa.String(255), primary_key=True),
        sa.Column("config", sa.Text, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False, default=True),
        sa.Column("created", sa.Float, nullable=False),
        sa.Column("updated", sa.Float, nullable=False),
        # What the policy has already seen, so each alert, data version or scheduled time
        # triggers once: JSON {"alert_id": n, "data": {dataset: version}, "schedule": t}.
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("pending", sa.Text, nullable=True),  # triggers held back by the cooldown
        sa.Column("last_job", sa.String(32), nullable=True),
        sa.Column("last_job_time", sa.Float, nullable=True),
    )
    sa.Table(
        "retraining_jobs",
        md,
        sa.Column("job_id", sa.String(32), primary_key=True),
        sa.Column("model_name", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),  # retrain | ci
        sa.Column("status", sa.String(16), nullable=False),  # queued running finished failed
        sa.Column("triggers", sa.Text, nullable=False),  # JSON list, merged triggers appended
        sa.Column("spec", sa.Text, nullable=False),
        sa.Column("step", sa.String(64), nullable=True),
        sa.Column("steps", sa.Text, nullable=True),  # JSON audit list [{time, step, detail}]
        sa.Column("created", sa.Float, nullable=False),
        sa.Column("started", sa.Float, nullable=True),
        sa.Column("ended", sa.Float, nullable=True),
        sa.Column("host", sa.String(255), nullable=True),
        sa.Column("pid", sa.Integer, nullable=True),
        sa.Column("proc_start", sa.String(32), nullable=True),
        sa.Column("champion", sa.String(320), nullable=True),
        sa.Column("challenger", sa.String(320), nullable=True),
        sa.Column("run_id", sa.String(32), nullable=True),
        sa.Column("parent_run_id", sa.String(32), nullable=True),
        sa.Column("holdout", sa.Text, nullable=True),  # JSON {ref, content_hash, rows, ...}
        sa.Column("gate", sa.Text, nullable=True),  # JSON result: lines, scores, passed
        sa.Column("passed", sa.Boolean, nullable=True),
        sa.Column("promoted", sa.Boolean, nullable=False, default=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Index("ix_retraining_jobs_model_status", "model_name", "status"),
        sa.Index("ix_retraining_jobs_created", "created"),
    )
