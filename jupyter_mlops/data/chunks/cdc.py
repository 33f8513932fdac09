"""The content-defined chunker: where a snapshot's rows are cut into row-chunks.

Algorithm ``cdc-localmin-v2``. Every data column that is almost all distinct on a sample of
rows is a *key group* (up to 16; integers and timestamps first, then text, then floats;
columns that are not distinct on their own are combined into one group only when no column
is). A row's hash is the smallest of its groups' 64-bit hashes, and a row ends a row-chunk
when its hash is the smallest within ``target_rows // 2`` rows on either side (a local
minimum), with a minimum (``target_rows // 4``) and a maximum (``2 * target_rows``) chunk
length. The decision depends only on rows that near, chunks are about ``target_rows`` rows
with little spread, and a cut belongs to one group, so editing values of one column in
scattered rows moves very few boundaries (about 1/16 of what a single key column would);
editing any column rewrites that column's chunks. The same boundaries apply to every column
and to the index.

How long a chunk is on average (``target_rows``) follows the frame's size (:func:`target_for`):
an append rewrites about one chunk and every chunk costs an object per column and a line in
the manifest, so a frame gets about 32 chunks (16 above 131,072 rows, where objects are
already large), never under 128 rows each, frames under 1,024 rows stay one chunk, and frames
of about a million rows or more keep 65,536 (``DEFAULT_TARGET_ROWS``). The manifest records
the target; the next version of a dataset reuses it while it lies between half the target
its own size asks for and that target, so an append that crosses a size bucket (or a frame
whose size hovers around one) does not re-cut the frame.

The chunker knows nothing of dtypes or storage: it reads each column through the
:class:`KeyedColumn` interface (a preference rank and 64-bit row keys, which the encoders
compute with :func:`bits64` and :func:`mix`) and returns row offsets. Changing anything here
changes where new snapshots are cut, and so how much they share with stored versions.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

__all__ = [
    "ALGORITHM",
    "DEFAULT_TARGET_ROWS",
    "MIN_TARGET_ROWS",
    "SPLIT_MIN_ROWS",
    "KeyedColumn",
    "bits64",
    "boundaries",
    "cut_candidates",
    "max_rows",
    "min_rows",
    "mix",
    "parameters",
    "target_for",
    "window",
]

ALGORITHM = "cdc-localmin-v2"
DEFAULT_TARGET_ROWS = 65536  # large frames (about 1M rows and more); the longest target
MIN_TARGET_ROWS = 128  # the shortest target: below it the manifest outweighs what is saved
SPLIT_MIN_ROWS = 1024  # frames with fewer rows stay one chunk
_CHUNKS = 32  # chunks per frame up to _FEWER_CHUNKS_ROWS rows
_CHUNKS_LARGE = 16  # and above (each object already holds over 8,192 rows)
_FEWER_CHUNKS_ROWS = 1 << 17
_KEY_SAMPLE = 8192
_KEY_MAX_COLUMNS = 4
_KEY_MAX_GROUPS = 16
_HIT_DENSITY = 16
_KEY_DISTINCT = 0.9

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLD = np.uint64(0x9E3779B97F4A7C15)
_SEEDS = [np.uint64((k * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019) & (2**64 - 1)) for k in range(8)]


class KeyedColumn(Protocol):
    """What the chunker reads of a column: its preference as a key and its row keys."""

    def key_rank(self) -> int | None:
        """Preference as a chunking key (lower first); None: never a key."""
        ...

    def key(self, start: int, stop: int) -> np.ndarray | None:
        """64-bit keys (uint64) of rows ``start:stop``; None: this column has none."""
        ...


def target_for(nrows: int, previous: int | None = None) -> int:
    """The average row-chunk length for a frame of ``nrows`` rows (see the module docstring).

    A power of two: the one nearest ``nrows / 32`` (``/ 16`` above 131,072 rows), between
    ``MIN_TARGET_ROWS`` and ``DEFAULT_TARGET_ROWS``; frames under ``SPLIT_MIN_ROWS`` rows get
    ``DEFAULT_TARGET_ROWS`` and so one chunk (a few more objects would cost more than
    rewriting them). Equal row counts give equal targets, so two snapshots of the same frame
    are cut alike. ``previous`` is the target the dataset's latest version was cut with: it
    is kept while it lies between half the size-based target and that target, so a version
    that grew across a bucket boundary (or a frame whose size hovers around one) keeps the
    boundaries of the version before it and shares its chunks; a frame that grew four-fold,
    or shrank, gets the target its size asks for.
    """
    ideal = _size_target(int(nrows))
    if previous is not None and ideal // 2 <= int(previous) <= ideal:
        return int(previous)
    return ideal


def _size_target(n: int) -> int:
    """The power of two nearest ``n / chunks``, clamped (exact integer arithmetic)."""
    if n < SPLIT_MIN_ROWS:
        return DEFAULT_TARGET_ROWS
    chunks = _CHUNKS if n <= _FEWER_CHUNKS_ROWS else _CHUNKS_LARGE
    # 2**k is nearest x = n / chunks when 2**(2k - 1) <= x**2 < 2**(2k + 1)
    k = (((2 * n * n) // (chunks * chunks)).bit_length() - 1) // 2
    return min(DEFAULT_TARGET_ROWS, max(MIN_TARGET_ROWS, 1 << k))


def min_rows(target: int) -> int:
    """The shortest row-chunk (except the last) for an average of ``target`` rows."""
    return max(1, target // 4)


def max_rows(target: int) -> int:
    """The longest row-chunk for an average of ``target`` rows."""
    return 2 * target


def window(target: int) -> int:
    """How many rows on either side a cut's hash must be the smallest of."""
    return max(1, target // 2)


def parameters(target: int, key_groups: list[list[int]]) -> dict[str, Any]:
    """The manifest's ``chunking`` entry: the algorithm, its lengths and the key columns."""
    return {
        "algorithm": ALGORITHM,
        "target_rows": target,
        "window": window(target),
        "min_rows": min_rows(target),
        "max_rows": max_rows(target),
        "key_columns": [i for g in key_groups for i in g],
        "key_groups": key_groups,
    }


def boundaries(cand: np.ndarray | None, n: int, target: int) -> list[int]:
    """Row offsets where chunks start/end: the candidate rows end chunks, within length limits.

    A candidate closer than ``target // 4`` rows to the previous cut is skipped (it only
    happens with equal key values) and chunks are capped at ``2 * target`` rows.
    """
    if n == 0:
        return [0, 0]
    lo, hi = min_rows(target), max_rows(target)
    if cand is None:
        cand = np.empty(0, dtype=np.int64)
    cuts = [0]
    pos = 0
    while pos < n:
        j = int(np.searchsorted(cand, pos + lo - 1, side="left"))
        end = int(cand[j]) + 1 if j < len(cand) else n
        end = min(end, pos + hi, n)
        cuts.append(end)
        pos = end
    return cuts


def mix(z: np.ndarray) -> np.ndarray:
    """The splitmix64 finalizer, vectorized (uint64 arithmetic wraps)."""
    z = z ^ (z >> np.uint64(30))
    z = z * _M1
    z = z ^ (z >> np.uint64(27))
    z = z * _M2
    return z ^ (z >> np.uint64(31))


def bits64(arr: np.ndarray) -> np.ndarray:
    """The raw bits of a numeric array widened to uint64 (folding wider items)."""
    arr = np.ascontiguousarray(arr)
    size = arr.dtype.itemsize
    if size in (1, 2, 4, 8):
        return arr.view(f"u{size}").astype(np.uint64, copy=False)
    if size % 8 == 0:
        words = arr.view(np.uint64).reshape(len(arr), size // 8)
        out = words[:, 0].copy()
        for k in range(1, size // 8):
            out = mix(out ^ words[:, k])
        return out
    return None  # type: ignore[return-value]


def _key_groups(cols: list[KeyedColumn], n: int) -> list[list[int]]:
    """The key groups: each is one column, or a few, whose row keys are almost all distinct.

    Columns are tried in order of preference (ids and timestamps, which users rarely edit in
    place, then text, then floats, then booleans and categoricals; column order within a
    rank). Every column distinct on its own (on a sample of rows) is a group, up to
    ``_KEY_MAX_GROUPS``; when none is, columns are combined into one group until the
    combination is distinct.
    """
    ranked = sorted((c.key_rank(), i) for i, c in enumerate(cols) if c.key_rank() is not None)
    sample = min(n, _KEY_SAMPLE)
    groups: list[list[int]] = []
    others: list[tuple[int, np.ndarray]] = []
    for _, i in ranked:
        keys = cols[i].key(0, sample)
        if keys is None:
            continue
        if len(np.unique(keys)) >= _KEY_DISTINCT * sample:
            groups.append([i])
            if len(groups) >= _KEY_MAX_GROUPS:
                break
        else:
            others.append((i, keys))
    if groups:
        return groups
    used: list[int] = []
    acc = np.zeros(sample, dtype=np.uint64)
    for i, keys in others:
        trial = mix((acc ^ keys) * _GOLD + np.uint64(len(used) + 1))
        if len(np.unique(trial)) <= len(np.unique(acc)) and used:
            continue  # adds nothing on the sample
        used.append(i)
        acc = trial
        if len(used) >= _KEY_MAX_COLUMNS or len(np.unique(acc)) >= _KEY_DISTINCT * sample:
            break
    return [used] if used else []


def _group_hash(cols: list[KeyedColumn], group: list[int], g: int, start: int, stop: int) -> Any:
    """A 64-bit hash of the group's keys for rows ``start:stop`` (seeded by the group)."""
    keys = cols[group[0]].key(start, stop)
    h = np.bitwise_xor(keys, _SEEDS[g % len(_SEEDS)])
    h *= _M1
    for k, i in enumerate(group[1:], 1):
        h ^= h >> np.uint64(29)
        h += cols[i].key(start, stop) ^ _SEEDS[k % len(_SEEDS)]
        h *= _M2
    return h


def cut_candidates(
    cols: list[KeyedColumn], n: int, target: int
) -> tuple[np.ndarray | None, list[list[int]]]:
    """The rows that may end a chunk, sorted, and the key groups they were computed from.

    Each key group (see :func:`_key_groups`) hashes every row; a row's hash is the smallest
    of its groups' hashes, and a row is a candidate when its hash is the smallest within
    ``target // 2`` rows on either side (a local minimum). The decision depends only on rows
    that near, so inserting, deleting or editing rows moves cuts only around the edit, and
    the cuts are about ``target`` rows apart with little spread (so the rows after the last
    cut, which an append rewrites, are few). A cut belongs to one group, so editing one key
    column moves only about ``1 / len(groups)`` of the cuts a single key would.

    Only hashes below a threshold that leaves about ``_HIT_DENSITY`` rows per ``target`` are
    kept (the minimum of a window is one of them unless the window has none, which is as
    rare as ``exp(-_HIT_DENSITY)``), so the local minima are found among a few rows.
    """
    if n == 0:
        return None, []
    groups = _key_groups(cols, n)
    if not groups:
        return None, []
    share = _HIT_DENSITY / (target * len(groups))
    limit = np.uint64(min(2**64 - 1, int(share * 2.0**64)))
    rows: list[np.ndarray] = []
    vals: list[np.ndarray] = []
    step = 1 << 16  # blocks that stay in cache
    for start in range(0, n, step):
        stop = min(n, start + step)
        for g, group in enumerate(groups):
            h = _group_hash(cols, group, g, start, stop)
            hit = np.flatnonzero(h <= limit)
            rows.append(hit + start)
            vals.append(h[hit])
    all_rows = np.concatenate(rows)
    all_vals = np.concatenate(vals)
    order = np.argsort(all_rows, kind="stable")
    return _sparse_local_minima(all_rows[order], all_vals[order], window(target)), groups


def _sparse_local_minima(rows: np.ndarray, vals: np.ndarray, w: int) -> np.ndarray:
    """Rows (sorted, repeats allowed) whose value no other row within ``w`` rows undercuts."""
    m = len(rows)
    ok = np.ones(m, dtype=bool)
    d = 1
    while d < m:
        near = rows[d:] - rows[:-d] <= w
        if not near.any():
            break  # rows are sorted: pairs further apart in the list are further apart
        left, right = vals[:-d], vals[d:]
        ok[:-d] &= ~(near & (right < left))
        ok[d:] &= ~(near & (left < right))
        d += 1
    return np.unique(rows[ok])
