"""The metadata tables as the current schema version defines them (SQLAlchemy Core).

Queries use these objects; the tables are created and altered only by ``migrations``,
so this file must always describe what the latest migration produces.
"""

from __future__ import annotations

import sqlalchemy as sa

from .monitoring_tables import monitoring_tables
from .registry_tables import registry_tables
from .retraining_tables import retraining_tables
from .serving_tables import rejection_tables, serving_tables

__all__ = [
    "alerts",
    "artifacts",
    "data_versions",
    "datasets",
    "deployments",
    "experiments",
    "feedback",
    "inference_log",
    "inference_rejections",
    "inference_segments",
    "inputs",
    "latest_metrics",
    "lineage",
    "metadata",
    "metric_history",
    "model_aliases",
    "model_events",
    "model_versions",
    "models",
    "monitor_checks",
    "monitors",
    "objects",
    "params",
    "retraining_jobs",
    "retraining_policies",
    "runs",
    "schema_version",
    "tags",
]

metadata = sa.MetaData()

schema_version = sa.Table(
    "mlops_schema",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("applied_at", sa.Float, nullable=False),
    sa.Column("package_version", sa.String(32), nullable=False),
)

experiments = sa.Table(
    "experiments",
    metadata,
    sa.Column("experiment_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(255), nullable=False, unique=True),
    sa.Column("created", sa.Float, nullable=False),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("run_id", sa.String(32), primary_key=True),
    sa.Column(
        "experiment_id", sa.Integer, sa.ForeignKey("experiments.experiment_id"), nullable=False
    ),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("parent_run_id", sa.String(32), nullable=True),
    sa.Column("start_time", sa.Float, nullable=False),
    sa.Column("end_time", sa.Float, nullable=True),
    sa.Column("duration_s", sa.Float, nullable=True),
    sa.Column("user", sa.String(128), nullable=True),
    sa.Column("host", sa.String(255), nullable=True),
    sa.Column("pid", sa.Integer, nullable=True),
    sa.Column("proc_start", sa.String(32), nullable=True),
    sa.Column("notebook", sa.Text, nullable=True),
    sa.Column("source_code", sa.Text, nullable=True),
    sa.Column("code_slice", sa.Text, nullable=True),
    sa.Column("environment", sa.Text, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("stdout", sa.Text, nullable=True),
    sa.Column("stderr", sa.Text, nullable=True),
    sa.Column("summary", sa.Text, nullable=True),
    sa.Index("ix_runs_experiment_start", "experiment_id", "start_time"),
    sa.Index("ix_runs_status", "status"),
    sa.Index("ix_runs_parent", "parent_run_id"),
)

params = sa.Table(
    "params",
    metadata,
    sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.run_id"), primary_key=True),
    sa.Column("key", sa.String(250), primary_key=True),
    sa.Column("value", sa.Text, nullable=True),
    sa.Column("num", sa.Float, nullable=True),
    sa.Column("vtype", sa.String(8), nullable=False),
    sa.Index("ix_params_key_num", "key", "num"),
)

metric_history = sa.Table(
    "metrics",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.run_id"), nullable=False),
    sa.Column("key", sa.String(250), nullable=False),
    sa.Column("value", sa.Float, nullable=True),
    sa.Column("step", sa.Integer, nullable=False),
    sa.Column("timestamp", sa.Float, nullable=False),
    sa.Index("ix_metrics_run_key_step", "run_id", "key", "step"),
)

latest_metrics = sa.Table(
    "latest_metrics",
    metadata,
    sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.run_id"), primary_key=True),
    sa.Column("key", sa.String(250), primary_key=True),
    sa.Column("value", sa.Float, nullable=True),
    sa.Column("step", sa.Integer, nullable=False),
    sa.Column("timestamp", sa.Float, nullable=False),
    sa.Column("source", sa.Text, nullable=True),
    sa.Index("ix_latest_metrics_key_value", "key", "value"),
)

tags = sa.Table(
    "tags",
    metadata,
    sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.run_id"), primary_key=True),
    sa.Column("key", sa.String(250), primary_key=True),
    sa.Column("value", sa.Text, nullable=True),
)

objects = sa.Table(
    "objects",
    metadata,
    sa.Column("hash", sa.String(64), primary_key=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("created", sa.Float, nullable=False),
)

artifacts = sa.Table(
    "artifacts",
    metadata,
    sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.run_id"), primary_key=True),
    sa.Column("name", sa.String(250), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("object_hash", sa.String(64), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("format", sa.String(32), nullable=False),
    sa.Column("meta", sa.Text, nullable=True),
    sa.Column("created", sa.Float, nullable=False),
    sa.Index("ix_artifacts_hash", "object_hash"),
)

inputs = sa.Table(
    "inputs",
    metadata,
    sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.run_id"), primary_key=True),
    sa.Column("role", sa.String(8), primary_key=True),
    sa.Column("name", sa.String(250), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("shape", sa.Text, nullable=True),
    sa.Column("columns", sa.Text, nullable=True),
    sa.Column("data_version_id", sa.Integer, nullable=True),
    sa.Index("ix_inputs_hash", "content_hash"),
)

datasets = sa.Table(
    "datasets",
    metadata,
    sa.Column("dataset_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(255), nullable=False, unique=True),
    sa.Column("created", sa.Float, nullable=False),
)

data_versions = sa.Table(
    "data_versions",
    metadata,
    sa.Column("version_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("dataset_id", sa.Integer, sa.ForeignKey("datasets.dataset_id"), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("manifest_hash", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("n_rows", sa.BigInteger, nullable=False),
    sa.Column("n_columns", sa.Integer, nullable=False),
    sa.Column("schema", sa.Text, nullable=True),
    sa.Column("stats", sa.Text, nullable=True),
    sa.Column("size_bytes", sa.BigInteger, nullable=False),
    sa.Column("new_bytes", sa.BigInteger, nullable=False),
    sa.Column("run_id", sa.String(32), nullable=True),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("created", sa.Float, nullable=False),
    sa.UniqueConstraint("dataset_id", "version", name="uq_data_versions_dataset_version"),
    sa.Index("ix_data_versions_hash", "content_hash"),
)

lineage = sa.Table(
    "lineage",
    metadata,
    sa.Column("output_version_id", sa.Integer, primary_key=True),
    sa.Column("input_version_id", sa.Integer, primary_key=True),
    sa.Column("run_id", sa.String(32), primary_key=True),
    sa.Index("ix_lineage_input", "input_version_id"),
)

# The model registry (migration 5 creates these same tables).
registry_tables(metadata)
models = metadata.tables["models"]
model_versions = metadata.tables["model_versions"]
model_aliases = metadata.tables["model_aliases"]
model_events = metadata.tables["model_events"]

# Serving: deployments, the inference log and feedback (migration 6 creates these).
serving_tables(metadata)
deployments = metadata.tables["deployments"]
inference_log = metadata.tables["inference_log"]
inference_segments = metadata.tables["inference_segments"]
feedback = metadata.tables["feedback"]
# the requests deployments refused, counted per reason (migration 9 creates it)
rejection_tables(metadata)
inference_rejections = metadata.tables["inference_rejections"]

# Monitoring: monitors, their checks and alerts (migration 7 creates these).
monitoring_tables(metadata)
monitors = metadata.tables["monitors"]
monitor_checks = metadata.tables["monitor_checks"]
alerts = metadata.tables["alerts"]

# Retraining: policies and jobs (migration 8 creates these).
retraining_tables(metadata)
retraining_policies = metadata.tables["retraining_policies"]
retraining_jobs = metadata.tables["retraining_jobs"]
