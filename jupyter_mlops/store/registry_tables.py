"""The model registry's tables as migration 5 creates them.

Shared by that migration and by ``schema`` while they agree; a later migration that
changes these tables must copy this definition into itself first, so that migration 5
keeps producing the schema of its day.
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = ["registry_tables"]


def registry_tables(md: sa.MetaData) -> None:
    """Declare the registry tables of migration 5 on ``md``."""
    sa.Table(
        "models",
        md,
        sa.Column("model_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        sa.Column("description", sa.Text, nullable=True),
        sa.Column("created", sa.Float, nullable=False),
    )
    sa.Table(
        "model_versions",
        md,
        sa.Column("version_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model_id", sa.Integer, sa.ForeignKey("models.model_id"), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("artifact", sa.String(250), nullable=False),
        sa.Column("object_hash", sa.String(64), nullable=False),
        sa.Column("format", sa.String(32), nullable=False),
        sa.Column("flavor", sa.String(255), nullable=True),
        sa.Column("signature", sa.Text, nullable=True),
        sa.Column("requirements", sa.Text, nullable=True),
        sa.Column("data", sa.Text, nullable=True),
        sa.Column("metrics", sa.Text, nullable=True),
        sa.Column("params", sa.Text, nullable=True),
        sa.Column("description", sa.Text, nullable=True),
        sa.Column("archived", sa.Boolean, nullable=False, default=False),
        sa.Column("created", sa.Float, nullable=False),
        sa.Column("created_by", sa.String(128), nullable=True),
        sa.UniqueConstraint("model_id", "version", name="uq_model_versions_model_version"),
        sa.Index("ix_model_versions_run", "run_id"),
    )
    sa.Table(
        "model_aliases",
        md,
        sa.Column("model_id", sa.Integer, primary_key=True),
        sa.Column("alias", sa.String(64), primary_key=True),
        sa.Column("version_id", sa.Integer, nullable=False),
        sa.Column("updated", sa.Float, nullable=False),
    )
    sa.Table(
        "model_events",
        md,
        sa.Column("event_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model_id", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("alias", sa.String(64), nullable=True),
        sa.Column("from_version", sa.Integer, nullable=True),
        sa.Column("to_version", sa.Integer, nullable=True),
        sa.Column("detail", sa.Text, nullable=True),
        sa.Column("user", sa.String(128), nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("time", sa.Float, nullable=False),
        sa.Index("ix_model_events_model_time", "model_id", "time"),
    )
