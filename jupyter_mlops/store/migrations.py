"""Versioned schema migrations, applied in order, each exactly once per store.

A store outlives the version that created it: every change to the tables is a new
function appended to ``MIGRATIONS``, never an edit of an old one. Each migration
declares the tables it creates itself, so an old migration keeps producing the schema
of its day even after ``schema.py`` moves on. Only portable DDL is used (no SQLite-only
statements), so the same chain runs on PostgreSQL.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import sqlalchemy as sa

from .._version import __version__
from ..errors import StoreVersionError
from . import schema
from .monitoring_tables import monitoring_tables
from .registry_tables import registry_tables
from .retraining_tables import retraining_tables
from .serving_tables import rejection_tables, serving_tables

__all__ = ["LATEST_VERSION", "MIGRATIONS", "current_version", "migrate"]


def _m1_initial(conn: sa.Connection) -> None:
    """Experiments, runs, params, metric history, latest metrics and tags."""
    md = sa.MetaData()
    sa.Table(
        "experiments",
        md,
        sa.Column("experiment_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        sa.Column("created", sa.Float, nullable=False),
    )
    sa.Table(
        "runs",
        md,
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
        sa.Index("ix_runs_experiment_start", "experiment_id", "start_time"),
        sa.Index("ix_runs_status", "status"),
        sa.Index("ix_runs_parent", "parent_run_id"),
    )
    sa.Table(
        "params",
        md,
        sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.run_id"), primary_key=True),
        sa.Column("key", sa.String(250), primary_key=True),
        sa.Column("value", sa.Text, nullable=True),
        sa.Column("num", sa.Float, nullable=True),
        sa.Column("vtype", sa.String(8), nullable=False),
        sa.Index("ix_params_key_num", "key", "num"),
    )
    sa.Table(
        "metrics",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.run_id"), nullable=False),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("value", sa.Float, nullable=True),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("timestamp", sa.Float, nullable=False),
        sa.Index("ix_metrics_run_key_step", "run_id", "key", "step"),
    )
    sa.Table(
        "latest_metrics",
        md,
        sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.run_id"), primary_key=True),
        sa.Column("key", sa.String(250), primary_key=True),
        sa.Column("value", sa.Float, nullable=True),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("timestamp", sa.Float, nullable=False),
        sa.Index("ix_latest_metrics_key_value", "key", "value"),
    )
    sa.Table(
        "tags",
        md,
        sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.run_id"), primary_key=True),
        sa.Column("key", sa.String(250), primary_key=True),
        sa.Column("value", sa.Text, nullable=True),
    )
    md.create_all(conn)


def _m2_artifacts_inputs(conn: sa.Connection) -> None:
    """Objects, run artifacts (models, figures, files), data inputs, and metric sources."""
    md = sa.MetaData()
    md.reflect(conn, only=["runs", "experiments"])
    sa.Table(
        "objects",
        md,
        sa.Column("hash", sa.String(64), primary_key=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("created", sa.Float, nullable=False),
    )
    sa.Table(
        "artifacts",
        md,
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
    sa.Table(
        "inputs",
        md,
        sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.run_id"), primary_key=True),
        sa.Column("role", sa.String(8), primary_key=True),
        sa.Column("name", sa.String(250), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("shape", sa.Text, nullable=True),
        sa.Column("columns", sa.Text, nullable=True),
        sa.Index("ix_inputs_hash", "content_hash"),
    )
    md.create_all(conn, tables=[md.tables["objects"], md.tables["artifacts"], md.tables["inputs"]])
    conn.execute(sa.text("ALTER TABLE latest_metrics ADD COLUMN source TEXT"))


def _m3_data_versions(conn: sa.Connection) -> None:
    """Datasets, their versions (manifest, schema, stats), lineage, and inputs linked to versions."""
    md = sa.MetaData()
    md.reflect(conn, only=["runs"])
    sa.Table(
        "datasets",
        md,
        sa.Column("dataset_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        sa.Column("created", sa.Float, nullable=False),
    )
    sa.Table(
        "data_versions",
        md,
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
    sa.Table(
        "lineage",
        md,
        sa.Column("output_version_id", sa.Integer, primary_key=True),
        sa.Column("input_version_id", sa.Integer, primary_key=True),
        sa.Column("run_id", sa.String(32), primary_key=True),
        sa.Index("ix_lineage_input", "input_version_id"),
    )
    md.create_all(conn, tables=[md.tables[t] for t in ("datasets", "data_versions", "lineage")])
    conn.execute(sa.text("ALTER TABLE inputs ADD COLUMN data_version_id INTEGER"))


def _m4_run_summary(conn: sa.Connection) -> None:
    """A JSON summary (params, latest metrics, tags) per run, so listing runs reads one row
    per run; runs written before it have NULL and are read from the key-value tables."""
    conn.execute(sa.text("ALTER TABLE runs ADD COLUMN summary TEXT"))


def _m5_registry(conn: sa.Connection) -> None:
    """The model registry: models, immutable versions, aliases, and the audit trail."""
    md = sa.MetaData()
    registry_tables(md)
    md.create_all(conn)


def _m6_serving(conn: sa.Connection) -> None:
    """Deployments, the inference log and feedback labels."""
    md = sa.MetaData()
    serving_tables(md)
    md.create_all(conn)


def _m7_monitoring(conn: sa.Connection) -> None:
    """Monitors, the history of their checks, and alerts."""
    md = sa.MetaData()
    monitoring_tables(md)
    md.create_all(conn)


def _m8_retraining(conn: sa.Connection) -> None:
    """Retraining policies and retraining (and CI) jobs."""
    md = sa.MetaData()
    retraining_tables(md)
    md.create_all(conn)


def _m9_rejections(conn: sa.Connection) -> None:
    """The requests deployments refused, counted per reason (monitoring's rejection rate)."""
    md = sa.MetaData()
    rejection_tables(md)
    md.create_all(conn)


MIGRATIONS: list[Callable[[sa.Connection], None]] = [
    _m1_initial,
    _m2_artifacts_inputs,
    _m3_data_versions,
    _m4_run_summary,
    _m5_registry,
    _m6_serving,
    _m7_monitoring,
    _m8_retraining,
    _m9_rejections,
]
LATEST_VERSION = len(MIGRATIONS)


def current_version(conn: sa.Connection) -> int:
    """The schema version recorded in the store, 0 for an empty database."""
    if not sa.inspect(conn).has_table(schema.schema_version.name):
        return 0
    found = conn.execute(sa.select(sa.func.max(schema.schema_version.c.version))).scalar()
    return int(found or 0)


def check_supported(version: int, where: str) -> None:
    """Refuse a store whose schema is newer than this package understands."""
    if version > LATEST_VERSION:
        raise StoreVersionError(
            f"The store at {where} has schema version {version}, written by a newer "
            f"jupyter_mlops; this one ({__version__}) reads schema versions up to "
            f"{LATEST_VERSION}. Upgrade with `pip install -U jupyter_mlops`, or open "
            "another store (MLOPS_HOME or mlops.open_store(path))."
        )


def migrate(conn: sa.Connection, where: str, target: int = LATEST_VERSION) -> int:
    """Bring the schema in ``conn``'s transaction up to ``target``; return the version found.

    Runs inside the caller's write transaction, so concurrent openers serialize and each
    migration is applied once, with its version row, or not at all.
    """
    found = current_version(conn)
    check_supported(found, where)
    if found == 0 and target == LATEST_VERSION and not sa.inspect(conn).get_table_names():
        # A new store gets the current schema in one step; the test suite checks that this
        # equals what the migration chain produces.
        schema.metadata.create_all(conn)
        versions = range(1, target + 1)
    else:
        if found == 0:
            schema.schema_version.create(conn, checkfirst=True)
        versions = range(found + 1, target + 1)
        for version in versions:
            MIGRATIONS[version - 1](conn)
    now = time.time()
    for version in versions:
        conn.execute(
            schema.schema_version.insert().values(
                version=version, applied_at=now, package_version=__version__
            )
        )
    return found
