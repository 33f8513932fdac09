"""Store maintenance services behind ``jupyter-mlops doctor`` and ``jupyter-mlops gc``.

``check_store`` verifies the schema version, re-hashes every object and checks that every
reference (run artifacts, data-version manifests and their chunks) points at an object
that exists. ``collect_garbage`` removes objects nothing references, such as the chunks
of a snapshot that was interrupted before its version was recorded.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

import sqlalchemy as sa

from .errors import StoreError
from .store import Store, schema
from .store.migrations import LATEST_VERSION, current_version

__all__ = ["DoctorReport", "GcReport", "check_store", "collect_garbage", "referenced_objects"]

GC_GRACE_S = 3600.0


@dataclass
class DoctorReport:
    """What ``check_store`` found."""

    store: str
    schema_version: int
    objects_checked: int = 0
    runs: int = 0
    running: int = 0
    data_versions: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing is damaged."""
        return not self.problems

    def lines(self) -> list[str]:
        """The report as lines of text."""
        out = [
            f"store: {self.store}",
            f"schema version: {self.schema_version} (this jupyter_mlops: {LATEST_VERSION})",
            f"runs: {self.runs} ({self.running} running)",
            f"data versions: {self.data_versions}",
            f"objects verified: {self.objects_checked}",
        ]
        out += [f"PROBLEM: {p}" for p in self.problems]
        out.append("ok" if self.ok else f"{len(self.problems)} problem(s) found")
        return out


def referenced_objects(store: Store, problems: list[str] | None = None) -> dict[str, str]:
    """{object hash: what refers to it} for every artifact, manifest, data chunk,
    inference log segment and pickled gate function."""
    from .data.chunks.manifest import chunk_hashes

    refs: dict[str, str] = {}
    with store.read() as conn:
        for run_id, name, digest in conn.execute(
            sa.select(
                schema.artifacts.c.run_id, schema.artifacts.c.name, schema.artifacts.c.object_hash
            )
        ):
            refs[digest] = f"run {run_id[:8]} artifact {name!r}"
        for model, segment, digest in conn.execute(
            sa.select(
                schema.inference_segments.c.model_name,
                schema.inference_segments.c.segment_id,
                schema.inference_segments.c.object_hash,
            )
        ):
            refs[digest] = f"{model} inference log segment {segment}"
        versions = conn.execute(
            sa.select(
                schema.datasets.c.name,
                schema.data_versions.c.version,
                schema.data_versions.c.manifest_hash,
            ).join(
                schema.datasets, schema.datasets.c.dataset_id == schema.data_versions.c.dataset_id
            )
        ).all()
    for dataset, version, manifest_hash in versions:
        label = f"{dataset}@v{version}"
        refs[manifest_hash] = f"{label} manifest"
        try:
            manifest = json.loads(store.objects.get(manifest_hash))
        except Exception as exc:
            if problems is not None:
                problems.append(f"{label}: manifest {manifest_hash[:12]}… unreadable ({exc})")
            continue
        for digest in chunk_hashes(manifest):
            refs.setdefault(digest, f"{label} chunk")
    return refs


def check_store(store: Store) -> DoctorReport:
    """Verify the schema version and re-hash every object; list each problem found."""
    with store.read() as conn:
        report = DoctorReport(store.describe(), current_version(conn))
        count = sa.select(sa.func.count())
        report.runs = int(conn.execute(count.select_from(schema.runs)).scalar() or 0)
        report.running = int(
            conn.execute(
                count.select_from(schema.runs).where(schema.runs.c.status == "running")
            ).scalar()
            or 0
        )
        report.data_versions = int(
            conn.execute(count.select_from(schema.data_versions)).scalar() or 0
        )
    objects = store.objects
    present = set()
    for digest in objects:
        present.add(digest)
        report.objects_checked += 1
        if not objects.verify(digest):
            report.problems.append(f"object {digest} is corrupt (its bytes do not match its hash)")
    refs = referenced_objects(store, report.problems)
    absent = [d for d in refs if d not in present and not objects.exists(d)]
    if absent:  # written or replaced while the objects were listed (a deployment flushing)?
        again = referenced_objects(store)
        absent = [d for d in absent if d in again and not objects.exists(d)]
    for digest in absent:
        report.problems.append(f"{refs[digest]}: object {digest[:12]}… is missing")
    return report


@dataclass
class GcReport:
    """What ``collect_garbage`` removed (or would remove with ``dry_run``)."""

    removed: int = 0
    bytes_freed: int = 0
    kept_recent: int = 0
    dry_run: bool = False

    def lines(self) -> list[str]:
        """The report as lines of text."""
        verb = "would remove" if self.dry_run else "removed"
        return [
            f"{verb} {self.removed} unreferenced object(s), {self.bytes_freed} bytes",
            f"kept {self.kept_recent} unreferenced object(s) younger than {GC_GRACE_S:.0f} s "
            "(a snapshot may still be writing them)",
        ]


def collect_garbage(
    store: Store, *, grace_s: float = GC_GRACE_S, dry_run: bool = False
) -> GcReport:
    """Delete objects no run, data version or manifest references, older than ``grace_s``."""
    problems: list[str] = []
    refs = referenced_objects(store, problems)
    if problems:
        raise StoreError(
            "Garbage collection stopped before deleting anything: "
            + "; ".join(problems)
            + ". Run `jupyter-mlops doctor` and repair or restore the store first."
        )
    report = GcReport(dry_run=dry_run)
    now = time.time()
    objects = store.objects
    for digest in list(objects):
        if digest in refs:
            continue
        written = objects.modified(digest)
        if written is not None and now - written < grace_s:
            report.kept_recent += 1
            continue
        report.removed += 1
        report.bytes_freed += objects.size(digest)
        if not dry_run:
            objects.delete(digest)
    return report
