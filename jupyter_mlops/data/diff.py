"""``data_diff``: what changed between two data versions.

Schema and statistics come from the versions' metadata (no data is loaded). Rows are
compared chunk-wise: row-chunks whose content hashes match in both versions are skipped,
and only the differing chunks are decoded, so two large versions are never held in
memory in full twice over.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import ValidationError
from ..store import Store, current_store
from .versions import DataVersion, load_manifest, resolve

__all__ = ["DataDiff", "data_diff"]

_SAMPLE = 5


@dataclass
class DataDiff:
    """The differences between versions ``a`` and ``b`` (see ``to_dict`` for the fields)."""

    a: str
    b: str
    identical: bool
    schema: dict[str, list[Any]]
    rows: dict[str, int]
    stats: dict[str, dict[str, tuple[Any, Any]]]
    key: list[str] | None
    chunks: dict[str, int]
    samples: dict[str, Any] = field(default_factory=dict, repr=False)
    match: str = "index"

    def to_dict(self) -> dict[str, Any]:
        """Plain data: schema changes, row counts, per-column statistic changes, samples."""
        return {
            "a": self.a,
            "b": self.b,
            "identical": self.identical,
            "schema": self.schema,
            "rows": self.rows,
            "stats": {c: {k: list(v) for k, v in d.items()} for c, d in self.stats.items()},
            "key": self.key,
            "match": self.match,
            "chunks": self.chunks,
            "samples": {
                k: v.reset_index().to_dict(orient="records") for k, v in self.samples.items()
            },
        }

    def _repr_html_(self) -> str:
        from ..html import data_diff_card

        return data_diff_card(self)


def _schema_changes(a: DataVersion, b: DataVersion) -> dict[str, list[Any]]:
    old, new = dict(a.schema), dict(b.schema)
    return {
        "added": [[c, t] for c, t in b.schema if c not in old],
        "removed": [[c, t] for c, t in a.schema if c not in new],
        "retyped": [[c, old[c], t] for c, t in b.schema if c in old and old[c] != t],
    }


def _stat_changes(a: DataVersion, b: DataVersion) -> dict[str, dict[str, tuple[Any, Any]]]:
    out: dict[str, dict[str, tuple[Any, Any]]] = {}
    for column, new in (b.stats or {}).items():
        old = (a.stats or {}).get(column)
        if not isinstance(old, dict) or not isinstance(new, dict):
            continue
        changed = {
            k: (old.get(k), new.get(k))
            for k in sorted(set(old) | set(new))
            if k not in {"top", "name", "dtype"} and old.get(k) != new.get(k)
        }
        if changed:
            out[column] = changed
    return out


def _keyed(frame: Any, key: list[str] | None) -> Any:
    import pandas as pd

    if not isinstance(frame, pd.DataFrame):
        frame = pd.DataFrame(frame) if not hasattr(frame, "to_frame") else frame.to_frame()
    if key:
        missing = [k for k in key if k not in frame.columns]
        if missing:
            raise ValidationError(f"key column(s) {missing} are not in the data.")
        frame = frame.set_index(key)
    if not frame.index.is_unique:
        raise ValidationError(
            "Rows cannot be matched: the index has duplicate labels. Pass key= with the "
            "column(s) that identify a row."
        )
    return frame


def _comparable(frame: Any) -> Any:
    import pandas as pd

    out = frame.copy()
    for column in out.columns:
        if isinstance(out[column].dtype, pd.CategoricalDtype):
            out[column] = out[column].astype(object)
    return out


def data_diff(
    a: str | DataVersion,
    b: str | DataVersion,
    *,
    key: str | list[str] | None = None,
    store: Store | None = None,
) -> DataDiff:
    """Compare two versions: schema, rows added/removed/changed, per-column statistic
    changes, and a sample of each kind of row.

    Rows are matched by the ``key`` column(s) when given, else by index label; with a
    default RangeIndex and a different row count they are matched by content (``match``
    says which), since positions then no longer name the same rows. A version recorded
    without its rows (batch scoring's default) is compared by schema and statistics only
    (``match="statistics"``; the added/removed/changed counts are None).
    """
    import pandas as pd

    from .chunks.codec import decode_rows
    from .chunks.manifest import row_chunk_signatures

    store = store or current_store()
    va = a if isinstance(a, DataVersion) else resolve(a, store)
    vb = b if isinstance(b, DataVersion) else resolve(b, store)
    keys = [key] if isinstance(key, str) else (list(key) if key else None)
    schema = _schema_changes(va, vb)
    stats = _stat_changes(va, vb)
    counts = {"a": va.n_rows, "b": vb.n_rows, "added": 0, "removed": 0, "changed": 0}
    if va.content_hash == vb.content_hash:
        counts["unchanged"] = va.n_rows
        return DataDiff(
            va.ref, vb.ref, True, schema, counts, stats, keys, {"decoded": 0, "skipped": 0}
        )
    if not (va.rows_stored and vb.rows_stored):  # recorded without rows: statistics only
        counts.update(added=None, removed=None, changed=None)
        return DataDiff(
            va.ref,
            vb.ref,
            False,
            schema,
            counts,
            stats,
            keys,
            {"decoded": 0, "skipped": 0},
            match="statistics",
        )
    ma, mb = load_manifest(va, store), load_manifest(vb, store)
    sig_a, sig_b = row_chunk_signatures(ma), row_chunk_signatures(mb)
    common = set(sig_a) & set(sig_b)
    diff_a = [i for i, s in enumerate(sig_a) if s not in common]
    diff_b = [i for i, s in enumerate(sig_b) if s not in common]
    get = store.objects.get
    chunk_counts = {
        "decoded": len(diff_a) + len(diff_b),
        "skipped": (len(sig_a) - len(diff_a)) + (len(sig_b) - len(diff_b)),
    }
    if keys is None and _positional(ma) and _positional(mb) and va.n_rows != vb.n_rows:
        # Default RangeIndex and rows added or removed: positions no longer name the same
        # rows, so rows are matched by content (an edited row counts as removed + added).
        part_a, part_b = (
            _as_frame(decode_rows(ma, get, diff_a)),
            _as_frame(decode_rows(mb, get, diff_b)),
        )
        removed, added = _content_matched(part_a, part_b)
        counts.update(added=len(added), removed=len(removed), changed=0)
        counts["unchanged"] = va.n_rows - len(removed)
        samples = {
            "added": added.head(_SAMPLE),
            "removed": removed.head(_SAMPLE),
            "changed": part_a.iloc[:0],
        }
        return DataDiff(
            va.ref,
            vb.ref,
            False,
            schema,
            counts,
            stats,
            None,
            chunk_counts,
            samples,
            match="content",
        )
    part_a = _keyed(decode_rows(ma, get, diff_a), keys)
    part_b = _keyed(decode_rows(mb, get, diff_b), keys)
    added_keys = part_b.index.difference(part_a.index)
    removed_keys = part_a.index.difference(part_b.index)
    both = part_a.index.intersection(part_b.index)
    columns = [c for c in part_a.columns if c in part_b.columns]
    left = _comparable(part_a.loc[both, columns])
    right = _comparable(part_b.loc[both, columns])
    if len(both) and columns:
        differs = (left != right) & ~(left.isna() & right.isna())
        changed_mask = differs.any(axis=1)
        changed_keys = both[changed_mask.to_numpy()]
    else:
        changed_keys = both[:0]
    counts["added"] = len(added_keys)
    counts["removed"] = len(removed_keys)
    counts["changed"] = len(changed_keys)
    counts["unchanged"] = va.n_rows - len(removed_keys) - len(changed_keys)
    samples = {
        "added": part_b.loc[added_keys[:_SAMPLE]],
        "removed": part_a.loc[removed_keys[:_SAMPLE]],
    }
    if len(changed_keys):
        sample = changed_keys[:_SAMPLE]
        before, after = left.loc[sample], right.loc[sample]
        cols = [c for c in columns if not (before[c].equals(after[c]))]
        samples["changed"] = (
            pd.concat({"before": before[cols], "after": after[cols]}, axis=1)
            .swaplevel(axis=1)
            .sort_index(axis=1, level=0, sort_remaining=False)
        )
    else:
        samples["changed"] = part_a.iloc[:0]
    match = "key" if keys else "index"
    return DataDiff(
        va.ref, vb.ref, False, schema, counts, stats, keys, chunk_counts, samples, match=match
    )


def _positional(manifest: dict[str, Any]) -> bool:
    """A default RangeIndex: labels that say where a row is, not which row it is."""
    index = manifest.get("index")
    return isinstance(index, dict) and index.get("type") == "range"


def _as_frame(obj: Any) -> Any:
    import pandas as pd

    return obj if isinstance(obj, pd.DataFrame) else pd.DataFrame(obj)


def _content_matched(part_a: Any, part_b: Any) -> tuple[Any, Any]:
    """Rows of ``part_a`` with no equal row in ``part_b`` and the reverse (as multisets)."""
    import pandas as pd

    columns = [c for c in part_a.columns if c in part_b.columns]
    ha = pd.util.hash_pandas_object(part_a[columns], index=False).to_numpy()
    hb = pd.util.hash_pandas_object(part_b[columns], index=False).to_numpy()
    left_a = pd.Series(ha).groupby(ha).cumcount().to_numpy()
    left_b = pd.Series(hb).groupby(hb).cumcount().to_numpy()
    # The k-th copy of a row on one side matches the k-th copy on the other.
    key_a = pd.MultiIndex.from_arrays([ha, left_a])
    key_b = pd.MultiIndex.from_arrays([hb, left_b])
    removed = part_a[~key_a.isin(key_b)]
    added = part_b[~key_b.isin(key_a)]
    return removed, added
