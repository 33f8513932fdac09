"""Store verification: the schema version, every object's hash, and every reference to an
object. ``jupyter-mlops doctor`` prints the report and exits non-zero on damage."""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa

from . import schema
from .migrations import LATEST_VERSION, current_version
from .store import Store

__all__ = ["DoctorReport", "check_store"]


@dataclass
class DoctorReport:
    """What ``check_store`` found."""

    store: str
    schema_version: int
    objects_checked: int = 0
    runs: int = 0
    running: int = 0
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
            f"objects verified: {self.objects_checked}",
        ]
        out += [f"PROBLEM: {p}" for p in self.problems]
        out.append("ok" if self.ok else f"{len(self.problems)} problem(s) found")
        return out


def check_store(store: Store) -> DoctorReport:
    """Verify the schema version and re-hash every object; list each problem found."""
    with store.read() as conn:
        version = current_version(conn)
        report = DoctorReport(store.describe(), version)
        report.runs = int(
            conn.execute(sa.select(sa.func.count()).select_from(schema.runs)).scalar() or 0
        )
        referenced = conn.execute(
            sa.select(
                schema.artifacts.c.run_id, schema.artifacts.c.name, schema.artifacts.c.object_hash
            )
        ).all()
        running = conn.execute(
            sa.select(sa.func.count())
            .select_from(schema.runs)
            .where(schema.runs.c.status == "running")
        ).scalar()
    objects = store.objects
    present = set()
    for digest in objects:
        present.add(digest)
        report.objects_checked += 1
        if not objects.verify(digest):
            report.problems.append(f"object {digest} is corrupt (its bytes do not match its hash)")
    for run_id, name, digest in referenced:
        if digest not in present:
            report.problems.append(
                f"run {run_id[:8]} artifact {name!r}: object {digest[:12]}… is missing"
            )
    report.running = int(running or 0)
    return report
