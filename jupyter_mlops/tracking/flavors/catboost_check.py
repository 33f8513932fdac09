"""The checks a CatBoost cbm model passes before CatBoost loads it.

CatBoost's reader trusts most of its input: it verifies the bounds of the model core (a
FlatBuffers table) but not what the core says (a tree split that names a feature past the
end, leaf values fewer than the trees need), and the tables of categorical statistics
that follow the core are read with no check at all. A crafted file crashes the process
that loads or scores it. So the file is read here first, as CatBoost reads it:

- ``CBM1``, the core's size, the core (every offset, vector and string bounds-checked
  here too), then one part per ``ModelPartIds`` entry: only CatBoost's static CTR tables
  (categorical features) are taken; text and embedding processing are refused;
- the trees: sizes, start offsets, splits within the binary features the float, one-hot
  and CTR features declare, leaf values (and weights) exactly as many as the trees
  reach, the children of non-symmetric trees inside their tree;
- the features: float and categorical indices in order, flat indices distinct, one-hot
  and CTR features naming categorical features that exist, enums within range;
- each CTR table: its FlatBuffer bounds, a power-of-two hash table with an empty bucket
  (a lookup ends), every bucket's index within the statistics blob for the CTR's type
  and target classes; the CTRs of the trees each have a table;
- the info map: JSON values parse, nested at most 64 deep.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from typing import Any

import numpy as np

__all__ = ["CbmError", "check_cbm"]

MAGIC = b"CBM1"
FORMAT_VERSION = b"FlabuffersModel_v1"
CTR_PART = b"static_provider_v1"
_MAX_DEPTH = 16  # CatBoost's deepest symmetric tree
_MAX_DIMENSION = 1 << 16
_MAX_VALUES_PER_BIN = 254
_INVALID_HASH = 0xFFFFFFFFFFFFFFFF
_NOT_FOUND = 0xFFFFFFFF
_BUCKET = 12  # a hash bucket: u64 hash, u32 index, packed
# ECtrType: Borders, Buckets, BinarizedTargetMeanValue, FloatTargetMeanValue, Counter,
# FeatureFreq
_BORDERS, _BUCKETS, _MEAN_BIN, _MEAN_FLOAT, _COUNTER, _FREQ = range(6)
_JSON_DEPTH = 64


class CbmError(ValueError):
    """The bytes are not a well-formed CatBoost cbm model."""


class _Buffer:
    """A FlatBuffers buffer read with every offset checked against its bounds."""

    def __init__(self, data: bytes | memoryview, what: str):
        self.data = memoryview(data)
        self.what = what
        self.tables = 0

    def _need(self, pos: int, size: int) -> None:
        if pos < 0 or size < 0 or pos + size > len(self.data):
            raise CbmError(f"{self.what} points outside itself (at {pos}, {size} bytes)")

    def u8(self, pos: int) -> int:
        self._need(pos, 1)
        return self.data[pos]

    def u16(self, pos: int) -> int:
        self._need(pos, 2)
        return struct.unpack_from("<H", self.data, pos)[0]

    def u32(self, pos: int) -> int:
        self._need(pos, 4)
        return struct.unpack_from("<I", self.data, pos)[0]

    def i32(self, pos: int) -> int:
        self._need(pos, 4)
        return struct.unpack_from("<i", self.data, pos)[0]

    def root(self) -> _Table:
        return self.table(self.u32(0))

    def table(self, pos: int) -> _Table:
        self.tables += 1
        if self.tables > 1_000_000:
            raise CbmError(f"{self.what} holds too many tables")
        vtable = pos - self.i32(pos)
        size = self.u16(vtable)
        if size < 4 or size % 2:
            raise CbmError(f"{self.what} has a table with a malformed vtable")
        self._need(vtable, size)
        inline = self.u16(vtable + 2)
        self._need(pos, inline)
        return _Table(self, pos, vtable, size, inline)


class _Table:
    def __init__(self, buf: _Buffer, pos: int, vtable: int, vsize: int, inline: int):
        self.buf, self.pos, self.vtable, self.vsize, self.inline = buf, pos, vtable, vsize, inline

    def _field(self, slot: int, size: int) -> int | None:
        at = 4 + 2 * slot
        if at + 2 > self.vsize:
            return None
        off = self.buf.u16(self.vtable + at)
        if off == 0:
            return None
        if off + size > self.inline:
            raise CbmError(f"{self.buf.what} has a field outside its table")
        return self.pos + off

    def scalar(self, slot: int, fmt: str, default: Any) -> Any:
        size = struct.calcsize("<" + fmt)
        pos = self._field(slot, size)
        if pos is None:
            return default
        self.buf._need(pos, size)
        return struct.unpack_from("<" + fmt, self.buf.data, pos)[0]

    def _target(self, slot: int) -> int | None:
        pos = self._field(slot, 4)
        return None if pos is None else pos + self.buf.u32(pos)

    def table(self, slot: int, what: str, required: bool = True) -> _Table | None:
        target = self._target(slot)
        if target is None:
            if required:
                raise CbmError(f"{self.buf.what} has no {what}")
            return None
        return self.buf.table(target)

    def vector(self, slot: int, width: int) -> tuple[int, int]:
        """(position of the first element, count) of a vector field; (0, 0) if absent."""
        target = self._target(slot)
        if target is None:
            return 0, 0
        count = self.buf.u32(target)
        self.buf._need(target + 4, count * width)
        return target + 4, count

    def numbers(self, slot: int, fmt: str) -> list[Any]:
        start, count = self.vector(slot, struct.calcsize("<" + fmt))
        if not count:
            return []
        if len(fmt) == 1:
            return list(struct.unpack_from(f"<{count}{fmt}", self.buf.data, start))
        values = struct.unpack_from("<" + fmt * count, self.buf.data, start)
        return [values[i : i + len(fmt)] for i in range(0, len(values), len(fmt))]

    def raw(self, slot: int) -> memoryview:
        start, count = self.vector(slot, 1)
        return self.buf.data[start : start + count]

    def tables(self, slot: int, what: str) -> Iterator[_Table]:
        start, count = self.vector(slot, 4)
        for i in range(count):
            at = start + 4 * i
            yield self.buf.table(at + self.buf.u32(at))

    def string(self, slot: int) -> bytes | None:
        target = self._target(slot)
        if target is None:
            return None
        size = self.buf.u32(target)
        self.buf._need(target + 4, size + 1)
        return bytes(self.buf.data[target + 4 : target + 4 + size])

    def strings(self, slot: int) -> list[bytes]:
        start, count = self.vector(slot, 4)
        out = []
        for i in range(count):
            at = start + 4 * i
            target = at + self.buf.u32(at)
            size = self.buf.u32(target)
            self.buf._need(target + 4, size + 1)
            out.append(bytes(self.buf.data[target + 4 : target + 4 + size]))
        return out


# -- the model core ---------------------------------------------------------------------------


def _json_depth(value: Any) -> int:
    depth, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        depth = max(depth, level)
        if isinstance(item, dict):
            stack.extend((v, level + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, level + 1) for v in item)
    return depth


def _info(core: _Table) -> None:
    for entry in core.tables(2, "info"):
        key, value = entry.string(0), entry.string(1)
        if key is None or value is None:
            raise CbmError("an info entry has no key or value")
        text = value.decode("utf-8", "replace").strip()
        if text[:1] in ("{", "["):
            if text.count("{") + text.count("[") > 1_000_000:
                raise CbmError(f"the info {key[:40]!r} nests too deep")
            try:
                parsed = json.loads(text)
            except (ValueError, RecursionError):
                raise CbmError(f"the info {key[:40]!r} is not JSON") from None
            if _json_depth(parsed) > _JSON_DEPTH:
                raise CbmError(f"the info {key[:40]!r} nests more than {_JSON_DEPTH} deep")


def _combination(base: _Table, n_cat: int) -> tuple[Any, ...]:
    """A CTR's feature combination, checked, as a comparable key with its type."""
    combo = base.table(0, "CTR feature combination")
    assert combo is not None
    kind = base.scalar(1, "b", 0)
    if not 0 <= kind <= _FREQ:
        raise CbmError(f"a CTR has the unknown type {kind}")
    cats = combo.numbers(0, "i")
    if any(not 0 <= c < n_cat for c in cats):
        raise CbmError(f"a CTR combines a categorical feature outside its {n_cat}")
    floats = combo.numbers(1, "if")
    onehots = combo.numbers(2, "ii")
    return kind, tuple(cats), tuple(floats), tuple(onehots)


def _features(trees: _Table) -> tuple[int, int, list[tuple[Any, ...]], list[int]]:
    """(binary features, categorical features, the CTR keys, the CTRs' target border
    indices) of the model's feature lists, each feature checked."""
    for slot, what in ((12, "text"), (13, "estimated"), (18, "embedding")):
        if trees.vector(slot, 4)[1]:
            raise CbmError(f"it has {what} features, which this loader does not read")
    floats = list(trees.tables(5, "float feature"))
    cats = list(trees.tables(4, "categorical feature"))
    flat: list[int] = []
    bins = 0
    for i, feature in enumerate(floats):
        if feature.scalar(1, "i", -1) != i:
            raise CbmError(f"float feature {i} has the index {feature.scalar(1, 'i', -1)}")
        if not 0 <= feature.scalar(5, "b", 0) <= 2:
            raise CbmError(f"float feature {i} has an unknown NaN treatment")
        flat.append(feature.scalar(2, "i", -1))
        bins += len(feature.numbers(3, "f"))
        feature.string(4)
    for i, feature in enumerate(cats):
        if feature.scalar(0, "i", -1) != i:
            raise CbmError(f"categorical feature {i} has the index {feature.scalar(0, 'i', -1)}")
        flat.append(feature.scalar(1, "i", -1))
        feature.string(2)
    if sorted(flat) != list(range(len(flat))):
        raise CbmError("its features' flat indices are not 0, 1, … once each")
    for feature in trees.tables(6, "one-hot feature"):
        index = feature.scalar(0, "i", -1)
        if not 0 <= index < len(cats):
            raise CbmError(f"a one-hot feature names categorical feature {index}")
        bins += len(feature.numbers(1, "i"))
        feature.strings(2)
    ctrs, borders = [], []
    for feature in trees.tables(7, "CTR feature"):
        ctr = feature.table(0, "CTR")
        assert ctr is not None
        base = ctr.table(0, "CTR base")
        assert base is not None
        ctrs.append(_combination(base, len(cats)))
        borders.append(ctr.scalar(1, "i", 0))
        bins += len(feature.numbers(1, "f"))
    return bins, len(cats), ctrs, borders


def _trees(trees: _Table, bins: int) -> None:
    dimension = trees.scalar(0, "i", 0)
    if not 1 <= dimension <= _MAX_DIMENSION:
        raise CbmError(f"its approx dimension is {dimension}")
    splits = trees.numbers(1, "i")
    sizes = trees.numbers(2, "i")
    starts = trees.numbers(3, "i")
    leaves = trees.vector(8, 8)[1]
    weights = trees.vector(9, 8)[1]
    steps = trees.numbers(10, "HH")
    leaf_ids = trees.numbers(11, "I")
    bias = trees.vector(16, 8)[1]
    if bias not in (0, dimension):
        raise CbmError(f"it has {bias} biases for {dimension} dimensions")
    if len(starts) != len(sizes):
        raise CbmError("its trees have sizes and start offsets of different counts")
    if any(s < 0 for s in sizes):
        raise CbmError("a tree has a negative size")
    at = 0
    for i, (start, size) in enumerate(zip(starts, sizes, strict=True)):
        if start != at:
            raise CbmError(f"tree {i} starts at {start}, not {at}")
        at += size
    if at != len(splits):
        raise CbmError(f"its trees hold {at} splits, it lists {len(splits)}")
    if bins == 0:
        if any(splits) or not steps:
            raise CbmError("its trees split on features it does not have")
    elif any(not 0 <= s < bins for s in splits):
        raise CbmError(f"a tree splits on a binary feature outside its {bins}")
    if bins and (bins + _MAX_VALUES_PER_BIN - 1) // _MAX_VALUES_PER_BIN > 0xFFFF:
        raise CbmError("it has more binary features than CatBoost evaluates")
    if not steps:  # symmetric trees: 2**depth leaves each
        if leaf_ids:
            raise CbmError("its symmetric trees list leaf ids")
        if any(s > _MAX_DEPTH for s in sizes):
            raise CbmError(f"a symmetric tree is deeper than {_MAX_DEPTH}")
        count = sum(1 << s for s in sizes)
    else:
        count = _asymmetric(splits, sizes, starts, steps, leaf_ids, dimension)
    if leaves != count * dimension:
        raise CbmError(f"it has {leaves} leaf values, its trees reach {count * dimension}")
    if weights not in (0, count):
        raise CbmError(f"it has {weights} leaf weights for {count} leaves")


def _asymmetric(
    splits: list[int],
    sizes: list[int],
    starts: list[int],
    steps: list[tuple[int, int]],
    leaf_ids: list[int],
    dimension: int,
) -> int:
    """Non-symmetric trees: each node's children inside its tree, each node that ends a
    walk with leaf values of its own, the leaves of each tree numbered in turn."""
    if not len(steps) == len(leaf_ids) == len(splits):
        raise CbmError("its tree nodes, leaf ids and splits differ in count")
    count = 0
    for i, (start, size) in enumerate(zip(starts, sizes, strict=True)):
        if size < 1:
            raise CbmError(f"tree {i} has no nodes")
        ids = []
        for node in range(start, start + size):
            left, right = steps[node]
            if node + left >= start + size or node + right >= start + size:
                raise CbmError(f"tree {i} has a child outside it")
            if left == 0 or right == 0:
                ids.append(leaf_ids[node])
        expected = [(count + k) * dimension for k in range(len(ids))]
        if sorted(ids) != expected:
            raise CbmError(f"tree {i}'s leaves are not numbered in turn")
        count += len(ids)
    return count


# -- the CTR tables ---------------------------------------------------------------------------


def _size(data: memoryview, pos: int, what: str) -> tuple[int, int]:
    """CatBoost's saved size: a u32, or 0xFFFFFFFF and then a u64. (size, next position)"""
    if pos + 4 > len(data):
        raise CbmError(f"it ends before {what}")
    (size,) = struct.unpack_from("<I", data, pos)
    if size != 0xFFFFFFFF:
        return size, pos + 4
    if pos + 12 > len(data):
        raise CbmError(f"it ends before {what}")
    return struct.unpack_from("<Q", data, pos + 4)[0], pos + 12


def _ctr_table(data: memoryview, n_cat: int, borders: dict[tuple[Any, ...], list[int]]) -> Any:
    buf = _Buffer(data, "a CTR table")
    table = buf.root()
    base = table.table(0, "CTR base")
    assert base is not None
    key = _combination(base, n_cat)
    buckets = table.raw(1)
    blob = table.raw(2)
    if table.vector(1, 1)[0] == 0 or table.vector(2, 1)[0] == 0:
        raise CbmError("a CTR table has no hash or no values")
    denominator = table.scalar(3, "i", 0)
    classes = table.scalar(4, "i", 0)
    if len(buckets) % _BUCKET or not buckets:
        raise CbmError("a CTR table's hash is not whole buckets")
    n = len(buckets) // _BUCKET
    if n & (n - 1):
        raise CbmError(f"a CTR table's hash has {n} buckets, not a power of two")
    kind = key[0]
    if kind in (_MEAN_BIN, _MEAN_FLOAT):
        entries = len(blob) // 8
    elif kind in (_COUNTER, _FREQ):
        entries = len(blob) // 4
        if denominator < 0:
            raise CbmError("a CTR table has a negative denominator")
    else:
        if not 1 <= classes <= 1 << 16:
            raise CbmError(f"a CTR table has {classes} target classes")
        stride = classes if (kind == _BUCKETS or classes > 2) else 2
        entries = len(blob) // 4 // stride
        if kind == _BUCKETS or classes > 2:  # the scoring reads classes up to the border
            for border in borders.get(key, []):
                if not 0 <= border < classes:
                    raise CbmError(f"a CTR's target border {border} is outside {classes}")
    hashed = np.frombuffer(buckets, dtype=np.dtype([("hash", "<u8"), ("index", "<u4")]))
    used = hashed["hash"] != _INVALID_HASH
    if used.all():
        raise CbmError("a CTR table's hash has no empty bucket (a lookup would not end)")
    index = hashed["index"][used]
    if np.any((index != _NOT_FOUND) & (index >= entries)):
        raise CbmError(f"a CTR table's bucket points past its {entries} values")
    return key


def _ctr_part(
    data: memoryview, pos: int, n_cat: int, ctrs: list[tuple[Any, ...]], borders: list[int]
) -> int:
    count, pos = _size(data, pos, "the CTR tables")
    if count > 1_000_000:
        raise CbmError(f"it claims {count} CTR tables")
    by_key: dict[tuple[Any, ...], list[int]] = {}
    for key, border in zip(ctrs, borders, strict=True):
        by_key.setdefault(key, []).append(border)
    seen = set()
    for _ in range(count):
        size, pos = _size(data, pos, "a CTR table")
        if size > len(data) - pos:
            raise CbmError(f"a CTR table claims {size} bytes, {len(data) - pos} are left")
        seen.add(_ctr_table(data[pos : pos + size], n_cat, by_key))
        pos += size
    missing = set(by_key) - seen
    if missing:
        raise CbmError(f"{len(missing)} of its CTRs have no table")
    return pos


def check_cbm(data: bytes) -> None:
    """Raise ``CbmError`` unless ``data`` is a well-formed cbm model CatBoost can load and
    score without reading outside what it holds."""
    if len(data) < 8 or data[:4] != MAGIC:
        raise CbmError("it does not start with CatBoost's 'CBM1'")
    view = memoryview(data)
    size, pos = _size(view, 4, "the model core")
    if size > len(data) - pos:
        raise CbmError(f"its model core claims {size} bytes, the file holds {len(data) - pos}")
    try:
        core = _Buffer(view[pos : pos + size], "the model core").root()
        if core.string(0) != FORMAT_VERSION:
            raise CbmError(f"its core format is {core.string(0)!r:.60}, not {FORMAT_VERSION!r}")
        _info(core)
        trees = core.table(1, "trees")
        assert trees is not None
        bins, n_cat, ctrs, borders = _features(trees)
        _trees(trees, bins)
        parts = core.strings(3)
    except struct.error as exc:  # pragma: no cover - every read is bounds-checked first
        raise CbmError(f"the model core is cut short ({exc})") from None
    pos += size
    if any(part != CTR_PART for part in parts) or len(parts) > 1:
        raise CbmError(f"it has the model parts {[p[:40] for p in parts]}, not only CTR tables")
    if parts:
        pos = _ctr_part(view, pos, n_cat, ctrs, borders)
    elif ctrs:
        raise CbmError("its trees use CTRs, and it has no CTR tables")
    if pos != len(data):
        raise CbmError(f"{len(data) - pos} bytes follow the model")
