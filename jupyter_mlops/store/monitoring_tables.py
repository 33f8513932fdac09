"""The monitoring tables as migration 7 creates them: a monitor per model, the history of
its checks, and the alerts they raised.

Shared by that migration and by ``schema`` while they agree; a later migration that
changes these tables must copy this definition into itself first.
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = ["monitoring_tables"]


def monitoring_tables(md: sa.MetaData) -> None:
    """Declare the monitoring tables of migration 7 on ``md``."""
    sa.Table(
        "monitors",
        md,
        sa.Column("model_name", sa.String(255), primary_key=True),
        sa.Column("reference", sa.String(320), nullable=False),
        sa.Column("config", sa.Text, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False, default=True),
        sa.Column("created", sa.Float, nullable=False),
        sa.Column("updated", sa.Float, nullable=False),
        sa.Column("last_check", sa.Float, nullable=True),
    )
    sa.Table(
        "monitor_checks",
        md,
        sa.Column("check_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model_name", sa.String(255), nullable=False),
        sa.Column("version", sa.Integer, nullable=True),
        sa.Column("time", sa.Float, nullable=False),
        sa.Column("window_start", sa.Float, nullable=True),
        sa.Column("window_end", sa.Float, nullable=True),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("drift_share", sa.Float, nullable=True),
        sa.Column("summary", sa.Text, nullable=True),
        sa.Index("ix_monitor_checks_model_time", "model_name", "time"),
    )
    sa.Table(
        "alerts",
        md,
        sa.Column("alert_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model_name", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(320), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("details", sa.Text, nullable=True),
        sa.Column("reference", sa.Text, nullable=True),
        sa.Column("window_start", sa.Float, nullable=True),
        sa.Column("window_end", sa.Float, nullable=True),
        sa.Column("first_seen", sa.Float, nullable=False),
        sa.Column("last_seen", sa.Float, nullable=False),
        sa.Column("occurrences", sa.Integer, nullable=False),
        sa.Column("resolved", sa.Float, nullable=True),
        sa.Column("notified", sa.Text, nullable=True),
        sa.Index("ix_alerts_model_status", "model_name", "status"),
    )
