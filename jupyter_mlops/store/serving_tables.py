"""The serving tables as migration 6 creates them: deployments, the inference log (batch
entries, and the segments that hold online predictions), and feedback (ground-truth
labels that arrive after a prediction).

Shared by that migration and by ``schema`` while they agree; a later migration that
changes these tables must copy this definition into itself first.
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = ["rejection_tables", "serving_tables"]


def serving_tables(md: sa.MetaData) -> None:
    """Declare the serving tables of migration 6 on ``md``."""
    sa.Table(
        "deployments",
        md,
        sa.Column("deployment_id", sa.String(32), primary_key=True),
        sa.Column("model_name", sa.String(255), nullable=False),
        sa.Column("reference", sa.String(320), nullable=False),
        sa.Column("version", sa.Integer, nullable=True),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("port", sa.Integer, nullable=True),
        sa.Column("workers", sa.Integer, nullable=False),
        sa.Column("machine", sa.String(255), nullable=True),
        sa.Column("pid", sa.Integer, nullable=True),
        sa.Column("proc_start", sa.String(32), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("message", sa.Text, nullable=True),
        sa.Column("token_hash", sa.String(64), nullable=True),
        sa.Column("options", sa.Text, nullable=True),
        sa.Column("log_path", sa.Text, nullable=True),
        sa.Column("created", sa.Float, nullable=False),
        sa.Column("started", sa.Float, nullable=True),
        sa.Column("stopped", sa.Float, nullable=True),
        sa.Index("ix_deployments_model", "model_name", "status"),
    )
    sa.Table(
        "inference_log",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("deployment_id", sa.String(32), nullable=True),
        sa.Column("model_name", sa.String(255), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("time", sa.Float, nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("input_version_id", sa.Integer, nullable=True),
        sa.Column("output_version_id", sa.Integer, nullable=True),
        sa.Column("latency_ms", sa.Float, nullable=False),
        sa.Index("ix_inference_log_model_time", "model_name", "time"),
        sa.Index("ix_inference_log_request", "request_id"),
    )
    sa.Table(
        "inference_segments",
        md,
        sa.Column("segment_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("deployment_id", sa.String(32), nullable=True),
        sa.Column("model_name", sa.String(255), nullable=False),
        sa.Column("version_min", sa.Integer, nullable=False),
        sa.Column("version_max", sa.Integer, nullable=False),
        sa.Column("time_min", sa.Float, nullable=False),
        sa.Column("time_max", sa.Float, nullable=False),
        sa.Column("requests", sa.Integer, nullable=False),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("object_hash", sa.String(64), nullable=False),
        sa.Column("columns", sa.Text, nullable=False),
        sa.Index("ix_inference_segments_model_time", "model_name", "time_max"),
        sa.Index("ix_inference_segments_deployment", "deployment_id"),
    )
    sa.Table(
        "feedback",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("model_name", sa.String(255), nullable=True),
        sa.Column("label", sa.Text, nullable=False),
        sa.Column("time", sa.Float, nullable=False),
        sa.Index("ix_feedback_request", "request_id"),
    )


def rejection_tables(md: sa.MetaData) -> None:
    """Declare the table of migration 9 on ``md``: the requests a deployment refused,
    counted per reason and minute (the writer adds to its minute's row), with the last
    error message of each as an example."""
    sa.Table(
        "inference_rejections",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("deployment_id", sa.String(32), nullable=True),
        sa.Column("model_name", sa.String(255), nullable=False),
        sa.Column("version", sa.Integer, nullable=True),
        sa.Column("time", sa.Float, nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("requests", sa.Integer, nullable=False),
        sa.Column("example", sa.Text, nullable=True),
        sa.Index("ix_inference_rejections_model_time", "model_name", "time"),
    )
