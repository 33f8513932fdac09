"""Data versions: snapshot a DataFrame, Series or ndarray as the next version of a dataset,
resolve references, load versions back, and list a dataset's history.

A version's identity is its content hash (``fingerprint``); its bytes are content-addressed
chunks (``chunks``) plus a manifest object. Snapshotting unchanged data returns the existing
version and writes nothing; equal data in another dataset reuses the same chunks. How long
the row-chunks are follows the frame's size, and the next version of a dataset is cut like
the one before it while that still fits its size (``chunks.cdc.target_for``), so appending a
few rows to a frame of any size stores little more than those rows.


A version may also be *recorded* without its rows (``snapshot(..., store_rows=False)``):
content hash, schema and statistics only, with a small manifest that says so. Batch
scoring records its input and predictions this way by default, since writing every scored
frame costs many times the prediction. Loading such a version is a clear error; snapshotting
the same content with its rows later stores them under the same version.
"""

from __future__ import annotations

import json
import threading
import time
import weakref
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa

from ..errors import MlopsError, NotFoundError, ValidationError
from ..store import Store, current_store, schema
from .fingerprint import Fingerprint, data_kind, fingerprint
from .references import DataRef, check_dataset_name, parse_data_ref

__all__ = [
    "RECORD_FORMAT",
    "DataVersion",
    "data_history",
    "datasets",
    "load_data",
    "load_manifest",
    "provenance",
    "refs_for",
    "resolve",
    "snapshot",
]

_PROGRESS_ROWS = 1_000_000
RECORD_FORMAT = "jupyter_mlops-record"
"""The manifest format of a version recorded without its rows (``store_rows=False``)."""
# id(obj) -> (dataset, content hash) for objects returned by load_data or snapshot, so a
# tracked cell reading them records them under their dataset. Entries leave with the object.
_loaded: dict[int, tuple[str, str]] = {}


@dataclass
class DataVersion:
    """One version of a dataset: ``ref`` is ``name@vN``; ``load()`` returns the data.

    ``size_bytes`` is what the version's chunks and manifest weigh; ``new_bytes`` is what
    creating it added to the object store (0 when its content was already stored).
    """

    dataset: str
    version: int
    content_hash: str
    kind: str
    n_rows: int
    n_columns: int
    schema: list[tuple[str, str]]
    stats: dict[str, Any]
    size_bytes: int
    new_bytes: int
    created: float
    run_id: str | None
    version_id: int
    manifest_hash: str
    description: str | None = None
    rows_stored: bool = True
    _store: Store | None = field(default=None, repr=False, compare=False)

    @property
    def ref(self) -> str:
        """The reference that names this version: ``name@vN``."""
        return f"{self.dataset}@v{self.version}"

    @property
    def shape(self) -> tuple[int, ...]:
        """(rows, columns) for tables; (rows,) for a Series."""
        return (self.n_rows,) if self.kind == "series" else (self.n_rows, self.n_columns)

    def load(self) -> Any:
        """The data exactly as it was snapshotted (an error for a version recorded without
        its rows, see ``rows_stored``)."""
        return _load_version(self, self._store or current_store())

    def _repr_html_(self) -> str:
        from ..html import data_version_card

        return data_version_card(self)

    def __repr__(self) -> str:
        dims = "×".join(str(d) for d in self.shape)
        return f"<DataVersion {self.ref} #{self.content_hash[:10]} {self.kind} {dims}>"


def provenance(obj: Any) -> tuple[str, str] | None:
    """(dataset, content hash at load time) of an object returned by ``load_data``."""
    return _loaded.get(id(obj))


def _version_from_row(row: Any, dataset: str, store: Store) -> DataVersion:
    return DataVersion(
        dataset=dataset,
        version=row.version,
        content_hash=row.content_hash,
        kind=row.kind,
        n_rows=int(row.n_rows),
        n_columns=int(row.n_columns),
        schema=[tuple(c) for c in json.loads(row.schema or "[]")],
        stats=_stats_by_column(json.loads(row.stats or "{}")),
        size_bytes=int(row.size_bytes),
        new_bytes=int(row.new_bytes),
        created=row.created,
        run_id=row.run_id,
        version_id=row.version_id,
        manifest_hash=row.manifest_hash,
        description=row.description,
        rows_stored=row.manifest_hash != _record_digest(row.kind, row.content_hash),
        _store=store,
    )


def _record_manifest(kind: str, content_hash: str) -> bytes:
    """The manifest of a version recorded without its rows: the same bytes for the same
    content, so its object is shared and its hash is known without reading it."""
    return json.dumps(
        {
            "format": RECORD_FORMAT,
            "version": 1,
            "kind": kind,
            "content_hash": content_hash,
            "rows": "not stored",
        },
        sort_keys=True,
    ).encode()


def _record_digest(kind: str, content_hash: str) -> str:
    import hashlib

    return hashlib.sha256(_record_manifest(kind, content_hash)).hexdigest()


def _stats_by_column(stats: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """{column name: its statistics} from the stored ``column_stats`` document."""
    columns = stats.get("columns", []) if isinstance(stats, dict) else []
    return {str(c.get("name")): c for c in columns if isinstance(c, dict)}


def _versions_query() -> sa.Select[Any]:
    dv, ds = schema.data_versions, schema.datasets
    return sa.select(dv, ds.c.name.label("dataset_name")).join(
        ds, ds.c.dataset_id == dv.c.dataset_id
    )


def _close_names(conn: sa.Connection, name: str) -> list[str]:
    import difflib

    names = list(conn.execute(sa.select(schema.datasets.c.name)).scalars())
    return difflib.get_close_matches(name, names, n=5, cutoff=0.5) or sorted(names)[:5]


def resolve(ref: str | DataRef, store: Store | None = None) -> DataVersion:
    """The version a reference names; errors list close matches."""
    store = store or current_store()
    parsed = parse_data_ref(ref) if isinstance(ref, str) else ref
    text = ref if isinstance(ref, str) else repr(ref)
    if not store.exists:
        raise NotFoundError(f"No data version {text!r}: the store at {store.describe()} is empty.")
    dv, ds = schema.data_versions, schema.datasets
    with store.read() as conn:
        query = _versions_query()
        if parsed.name is not None:
            exists = conn.execute(
                sa.select(ds.c.dataset_id).where(ds.c.name == parsed.name)
            ).scalar()
            if exists is None:
                close = _close_names(conn, parsed.name)
                hint = f" Datasets with close names: {', '.join(close)}." if close else ""
                raise NotFoundError(f"No dataset {parsed.name!r}.{hint}")
            query = query.where(ds.c.name == parsed.name)
        if parsed.hash_prefix is not None:
            rows = conn.execute(
                query.where(dv.c.content_hash.startswith(parsed.hash_prefix)).order_by(
                    dv.c.version_id.desc()
                )
            ).all()
            hashes = {r.content_hash for r in rows}
            if not rows:
                raise NotFoundError(
                    f"No data version has a content hash starting with {parsed.hash_prefix!r}."
                )
            if len(hashes) > 1:
                listing = ", ".join(
                    f"{r.dataset_name}@v{r.version} #{r.content_hash[:12]}" for r in rows[:6]
                )
                raise ValidationError(
                    f"Hash prefix {parsed.hash_prefix!r} is ambiguous: {listing}. Give more characters."
                )
            row = rows[0]
        elif parsed.version is not None:
            row = conn.execute(query.where(dv.c.version == parsed.version)).first()
            if row is None:
                versions = list(
                    conn.execute(
                        sa.select(dv.c.version)
                        .join(ds, ds.c.dataset_id == dv.c.dataset_id)
                        .where(ds.c.name == parsed.name)
                        .order_by(dv.c.version)
                    ).scalars()
                )
                raise NotFoundError(
                    f"{parsed.name!r} has no version {parsed.version}; it has "
                    f"{', '.join(f'v{v}' for v in versions) or 'none'}."
                )
        else:
            row = conn.execute(query.order_by(dv.c.version.desc()).limit(1)).first()
            if row is None:
                raise NotFoundError(f"Dataset {parsed.name!r} has no versions yet.")
    return _version_from_row(row, row.dataset_name, store)


def refs_for(version_ids: list[int], store: Store | None = None) -> dict[int, str]:
    """{version id: ``name@vN``} for the given data version ids."""
    store = store or current_store()
    ids = [i for i in version_ids if i is not None]
    if not ids:
        return {}
    dv, ds = schema.data_versions, schema.datasets
    with store.read() as conn:
        rows = conn.execute(
            sa.select(dv.c.version_id, ds.c.name, dv.c.version)
            .join(ds, ds.c.dataset_id == dv.c.dataset_id)
            .where(dv.c.version_id.in_(ids))
        ).all()
    return {r.version_id: f"{r.name}@v{r.version}" for r in rows}


def load_manifest(version: DataVersion, store: Store) -> dict[str, Any]:
    """The chunk manifest of a version (read from the object store, hash-checked)."""
    return json.loads(store.objects.get(version.manifest_hash))


def _load_version(version: DataVersion, store: Store) -> Any:
    from .chunks.codec import decode

    manifest = load_manifest(version, store)
    if manifest.get("format") == RECORD_FORMAT:
        raise NotFoundError(
            f"{version.ref} was recorded by content hash, schema and statistics only; its rows "
            "were not stored, so it cannot be loaded. (mlops.predict_batch records its input "
            "and predictions this way unless snapshot=True; mlops.snapshot stores the rows.)"
        )
    obj = decode(manifest, store.objects.get)
    _remember(obj, version.dataset, version.content_hash)
    return obj


def _remember(obj: Any, dataset: str, content_hash: str) -> None:
    key = id(obj)
    _loaded[key] = (dataset, content_hash)
    try:
        weakref.finalize(obj, _loaded.pop, key, None)
    except TypeError:
        pass


def load_data(ref: str, store: Store | None = None) -> Any:
    """The data a reference names (``name@v2``, ``name@latest``, ``#3fa9c1``), exactly as saved."""
    store = store or current_store()
    return _load_version(resolve(ref, store), store)


def _progress(total: int) -> Any:
    if total < _PROGRESS_ROWS:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="rows", desc="snapshot", leave=False)


def snapshot(
    obj: Any,
    name: str,
    *,
    store: Store | None = None,
    run_id: str | None = None,
    description: str | None = None,
    fp: Fingerprint | None = None,
    reuse_any: bool = False,
    store_rows: bool = True,
) -> DataVersion:
    """Save ``obj`` as the next version of dataset ``name``; unchanged data returns the
    existing version and writes nothing.

    With ``reuse_any`` (used by ``%%track``), data equal to *any* version of the dataset
    returns that version, so reading an older version never creates a new one.
    ``store_rows=False`` records the version by content hash, schema and statistics only
    (no chunks are written; ``load`` says so); a later snapshot of the same content with
    its rows stores them under that same version.
    """
    store = store or current_store()
    check_dataset_name(name)
    kind = data_kind(obj)
    if kind is None:
        raise ValidationError(
            f"Cannot snapshot a {type(obj).__name__}: snapshot takes a pandas DataFrame, a "
            "pandas Series or a numpy ndarray."
        )
    fp = fp or fingerprint(obj)
    record_digest = _record_digest(kind, fp.content_hash)
    dv, ds = schema.data_versions, schema.datasets
    with store.read() as conn:
        latest = conn.execute(
            _versions_query().where(ds.c.name == name).order_by(dv.c.version.desc()).limit(1)
        ).first()
        match = None
        if latest is not None and latest.content_hash == fp.content_hash:
            match = latest
        elif reuse_any and latest is not None:
            match = conn.execute(
                _versions_query()
                .where(ds.c.name == name, dv.c.content_hash == fp.content_hash)
                .order_by(dv.c.version.desc())
                .limit(1)
            ).first()
        if match is not None and (not store_rows or match.manifest_hash != record_digest):
            return _version_from_row(match, name, store)
        same_query = sa.select(dv.c.manifest_hash, dv.c.size_bytes).where(
            dv.c.content_hash == fp.content_hash
        )
        if store_rows:  # a manifest that holds the rows, not another record
            same_query = same_query.where(dv.c.manifest_hash != record_digest)
        else:  # rows stored elsewhere are better than none
            same_query = same_query.order_by((dv.c.manifest_hash == record_digest).asc())
        same = conn.execute(same_query.limit(1)).first()
    if same is not None and store.objects.exists(same.manifest_hash):
        manifest_hash, size, new_bytes = same.manifest_hash, int(same.size_bytes), 0
    elif store_rows:
        previous = _previous_target(store, latest.manifest_hash if latest is not None else None)
        manifest_hash, size, new_bytes = _write_chunks(obj, store, fp, previous)
    else:
        document = _record_manifest(kind, fp.content_hash)
        manifest_hash, written = store.objects.write(document)
        size, new_bytes = len(document), len(document) if written else 0
    if match is not None:  # a recorded version of this content: its rows are stored now
        version_id = match.version_id

        def upgrade(conn: sa.Connection) -> None:
            conn.execute(
                dv.update()
                .where(dv.c.version_id == version_id, dv.c.manifest_hash == record_digest)
                .values(manifest_hash=manifest_hash, size_bytes=size, new_bytes=new_bytes)
            )

        store.write_retrying(upgrade)
        result = resolve(f"{name}@v{match.version}", store)
        _remember(obj, name, fp.content_hash)
        return result
    from .stats import column_stats

    stats = column_stats(obj)
    n_rows = fp.shape[0] if fp.shape else 0
    n_columns = (
        len(fp.columns) if fp.columns is not None else (fp.shape[1] if len(fp.shape) > 1 else 1)
    )

    row = {
        "content_hash": fp.content_hash,
        "manifest_hash": manifest_hash,
        "kind": kind,
        "n_rows": n_rows,
        "n_columns": n_columns,
        "schema": json.dumps(fp.columns or []),
        "stats": json.dumps(stats),
        "size_bytes": size,
        "new_bytes": new_bytes,
        "run_id": run_id,
        "description": description,
    }

    def work(conn: sa.Connection) -> tuple[int, int | None, float]:
        found = conn.execute(sa.select(ds.c.dataset_id).where(ds.c.name == name)).scalar()
        if found is None:
            found = conn.execute(
                ds.insert().values(name=name, created=time.time())
            ).inserted_primary_key[0]
        last = conn.execute(
            sa.select(dv.c.version, dv.c.content_hash)
            .where(dv.c.dataset_id == found)
            .order_by(dv.c.version.desc())
            .limit(1)
        ).first()
        if last is not None and last.content_hash == fp.content_hash:
            return int(last.version), None, 0.0  # written meanwhile by another process
        version = (last.version if last is not None else 0) + 1
        created = time.time()
        version_id = conn.execute(
            dv.insert().values(dataset_id=found, version=version, created=created, **row)
        ).inserted_primary_key[0]
        return version, int(version_id), created

    version, version_id, created = store.write_retrying(work)
    if version_id is None:
        result = resolve(f"{name}@v{version}", store)
    else:  # what was just inserted, as resolve would read it back
        inserted = SimpleNamespace(**row, version=version, created=created, version_id=version_id)
        result = _version_from_row(inserted, name, store)
    _remember(obj, name, fp.content_hash)
    return result


def _previous_target(store: Store, manifest_hash: str | None) -> int | None:
    """The row-chunk target the dataset's latest version was cut with, if this chunker made it.

    None when there is no such version, or its manifest cannot be read (``doctor`` reports
    that; here it only means the next version is cut for its own size).
    """
    from .chunks.cdc import ALGORITHM

    if manifest_hash is None:
        return None
    try:
        manifest = json.loads(store.objects.get(manifest_hash))
    except (MlopsError, ValueError):
        return None
    chunking = manifest.get("chunking") if isinstance(manifest, dict) else None
    if not isinstance(chunking, dict) or chunking.get("algorithm") != ALGORITHM:
        return None
    target = chunking.get("target_rows")
    return target if isinstance(target, int) and target >= 4 else None


def _write_chunks(
    obj: Any, store: Store, fp: Fingerprint, previous: int | None = None
) -> tuple[str, int, int]:
    """Encode ``obj`` into chunks; returns (manifest hash, total bytes, new bytes).

    ``previous`` is the target the dataset's latest version was cut with (see
    :func:`.chunks.cdc.target_for`).
    """
    from .chunks.cdc import target_for
    from .chunks.codec import encode

    objects = store.objects
    totals = {"size": 0, "new": 0}
    lock = threading.Lock()  # encode calls put from worker threads

    def put(data: bytes | memoryview) -> str:
        digest, written = objects.write(data)
        size = data.nbytes if isinstance(data, memoryview) else len(data)
        with lock:
            totals["size"] += size
            if written:
                totals["new"] += size
        return digest

    bar = _progress(fp.shape[0] if fp.shape else 0)
    try:
        manifest = encode(
            obj,
            put,
            target_rows=target_for(fp.shape[0] if fp.shape else 1, previous),
            progress=(lambda n: bar.update(n - bar.n)) if bar else None,
            buffers=objects.local,  # zero-copy views are safe only for local files
        )
    finally:
        if bar is not None:
            bar.close()
    manifest["content_hash"] = fp.content_hash
    document = json.dumps(manifest, sort_keys=True).encode()
    manifest_hash, written = objects.write(document)
    new_bytes = totals["new"] + (len(document) if written else 0)
    return manifest_hash, totals["size"] + len(document), new_bytes


def data_history(name: str, store: Store | None = None) -> Any:
    """The versions of a dataset as a DataFrame, newest first, with the runs that used each."""
    import pandas as pd

    store = store or current_store()
    check_dataset_name(name)
    resolve(name, store)  # a clear error for an unknown dataset
    dv, ds, inp = schema.data_versions, schema.datasets, schema.inputs
    with store.read() as conn:
        rows = conn.execute(
            _versions_query().where(ds.c.name == name).order_by(dv.c.version.desc())
        ).all()
        ids = [r.version_id for r in rows]
        used = conn.execute(
            sa.select(inp.c.data_version_id, inp.c.run_id, inp.c.role).where(
                inp.c.data_version_id.in_(ids)
            )
        ).all()
    users: dict[int, list[str]] = {}
    producers: dict[int, list[str]] = {}
    for vid, run_id, role in used:
        (users if role == "input" else producers).setdefault(vid, []).append(run_id)
    frame = pd.DataFrame(
        {
            "ref": [f"{name}@v{r.version}" for r in rows],
            "version": [r.version for r in rows],
            "content_hash": [r.content_hash for r in rows],
            "rows": [r.n_rows for r in rows],
            "columns": [r.n_columns for r in rows],
            "size_bytes": [r.size_bytes for r in rows],
            "new_bytes": [r.new_bytes for r in rows],
            "created": pd.to_datetime([r.created for r in rows], unit="s", utc=True),
            "created_by_run": [r.run_id for r in rows],
            "used_by_runs": [sorted(set(users.get(r.version_id, []))) for r in rows],
            "description": [r.description for r in rows],
        }
    )
    return frame


def datasets(store: Store | None = None) -> Any:
    """One row per dataset: name, number of versions, latest reference, its rows and size."""
    import pandas as pd

    store = store or current_store()
    columns = ["name", "versions", "latest", "rows", "columns", "size_bytes", "updated"]
    if not store.exists:
        return pd.DataFrame(columns=columns)
    dv, ds = schema.data_versions, schema.datasets
    latest = (
        sa.select(
            dv.c.dataset_id, sa.func.max(dv.c.version).label("version"), sa.func.count().label("n")
        )
        .group_by(dv.c.dataset_id)
        .subquery()
    )
    with store.read() as conn:
        rows = conn.execute(
            sa.select(
                ds.c.name,
                latest.c.n,
                dv.c.version,
                dv.c.n_rows,
                dv.c.n_columns,
                dv.c.size_bytes,
                dv.c.created,
            )
            .join(latest, latest.c.dataset_id == ds.c.dataset_id)
            .join(dv, sa.and_(dv.c.dataset_id == ds.c.dataset_id, dv.c.version == latest.c.version))
            .order_by(ds.c.name)
        ).all()
    frame = pd.DataFrame(
        [(r[0], r[1], f"{r[0]}@v{r[2]}", r[3], r[4], r[5], r[6]) for r in rows], columns=columns
    )
    frame["updated"] = pd.to_datetime(frame["updated"], unit="s", utc=True)
    return frame
