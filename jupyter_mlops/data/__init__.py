"""Data versioning services: fingerprints now; snapshots, diffs and lineage build on them."""
