"""Content-addressed chunked snapshots: exact round trips, dedup targets, errors."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from jupyter_mlops.data.chunks import (
    chunk_hashes,
    decode,
    decode_rows,
    encode,
    row_chunk_signatures,
)
from jupyter_mlops.data.stats import column_stats
from jupyter_mlops.errors import ValidationError


class Store:
    """An in-memory object store that counts the bytes of objects it did not hold yet."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.new_bytes = 0

    def put(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        if digest not in self.objects:
            self.objects[digest] = bytes(data)
            self.new_bytes += len(data)
        return digest

    def get(self, digest: str) -> bytes:
        return self.objects[digest]

    def added_by(self, obj, **kw) -> tuple[int, dict]:
        before = self.new_bytes
        manifest = encode(obj, self.put, **kw)
        return self.new_bytes - before, manifest


def roundtrip(obj, **kw):
    store = Store()
    manifest = encode(obj, store.put, **kw)
    json.dumps(manifest)  # JSON-serializable
    return decode(json.loads(json.dumps(manifest)), store.get), manifest, store


def assert_same_frame(out: pd.DataFrame, df: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(out, df, check_exact=True)
    assert list(out.dtypes) == list(df.dtypes)
    assert out.index.dtype == df.index.dtype
    assert out.columns.dtype == df.columns.dtype


def every_dtype_frame(n: int = 2000) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    df = pd.DataFrame(
        {
            "f64": rng.normal(size=n),
            "f32": rng.normal(size=n).astype("float32"),
            "i64": rng.integers(-(10**12), 10**12, n),
            "u8": rng.integers(0, 255, n).astype("uint8"),
            "bool": rng.random(n) > 0.5,
            "cplx": rng.normal(size=n) + 1j,
            "dt": pd.date_range("2020-01-01", periods=n, freq="min"),
            "dt_ns": pd.date_range("2020-01-01", periods=n, freq="s", unit="ns"),
            "tz": pd.date_range("2020-03-28", periods=n, freq="h", tz="Europe/Paris"),
            "tz_fixed": pd.date_range(
                "2020", periods=n, freq="h", tz=dt.timezone(dt.timedelta(hours=-3))
            ),
            "td": pd.to_timedelta(rng.integers(0, 10**6, n), unit="s"),
            "cat": pd.Categorical(rng.choice(["x", "y", "z"], n)),
            "cat_ord": pd.Categorical(
                rng.choice(["lo", "mid", "hi"], n), categories=["lo", "mid", "hi"], ordered=True
            ),
            "cat_int": pd.Categorical(rng.choice([10, 20, 30], n)),
            "Int64": pd.array(rng.integers(0, 9, n), dtype="Int64"),
            "UInt16": pd.array(rng.integers(0, 9, n), dtype="UInt16"),
            "Float64": pd.array(rng.random(n), dtype="Float64"),
            "boolean": pd.array(rng.random(n) > 0.5, dtype="boolean"),
            "str": [f"s{i}é" for i in range(n)],  # pandas 3 default str
            "string_py": pd.array([f"p{i}" for i in range(n)], dtype="string[python]"),
            "string_pa": pd.array([f"a{i}" for i in range(n)], dtype="string[pyarrow]"),
            "obj": pd.Series([f"o{i}" for i in range(n)], dtype=object),
            "mixed": pd.Series([i if i % 3 else f"t{i}" for i in range(n)], dtype=object),
            "arrow_int": pd.array(range(n), dtype="int64[pyarrow]"),
        }
    )
    df.loc[3, "f64"] = np.nan
    df.loc[4, "f64"] = -0.0
    df.loc[5, ["dt", "dt_ns", "tz", "td"]] = pd.NaT
    df.loc[6, ["Int64", "UInt16", "Float64", "boolean"]] = pd.NA
    df.loc[7, "Float64"] = np.nan
    df.loc[8, "cat"] = np.nan
    df.loc[9, ["str", "string_py", "string_pa"]] = None
    df.loc[10, "str"] = ""
    df.loc[11, "obj"] = None
    df.loc[12, "obj"] = np.nan
    df.loc[13, "obj"] = pd.NA
    df.loc[14, "mixed"] = Decimal("1.10")
    df.loc[15, "mixed"] = b"\x00bytes"
    df.loc[16, "mixed"] = 1.5
    df.loc[17, "mixed"] = True
    df.loc[18, "mixed"] = None
    df.loc[19, "mixed"] = float("nan")
    df.loc[20, "arrow_int"] = None
    return df[list(reversed(df.columns))]  # non-default column order


def test_roundtrip_every_dtype_with_multiindex():
    df = every_dtype_frame()
    n = len(df)
    df.index = pd.MultiIndex.from_arrays(
        [np.arange(n) % 7, [f"k{i}" for i in range(n)]], names=["a", None]
    )
    out, manifest, _ = roundtrip(df, target_rows=128)
    assert_same_frame(out, df)
    assert len(manifest["row_chunks"]) > 5
    assert sum(manifest["row_chunks"]) == n
    # the exact kind of every missing value survives in object columns
    assert out["obj"].iloc[11] is None
    assert isinstance(out["obj"].iloc[12], float) and np.isnan(out["obj"].iloc[12])
    assert out["obj"].iloc[13] is pd.NA
    assert out["mixed"].iloc[14] == Decimal("1.10") and str(out["mixed"].iloc[14]) == "1.10"
    assert out["mixed"].iloc[15] == b"\x00bytes" and out["mixed"].iloc[17] is True
    assert np.signbit(out["f64"].iloc[4])
    assert pd.isna(out["Float64"].array[7])


def test_roundtrip_named_datetime_index_and_labels():
    n = 500
    df = pd.DataFrame(
        {1: np.arange(n), "b": np.arange(n) * 0.5, 2.5: np.ones(n)},
        index=pd.date_range("2021-01-01", periods=n, freq="D", name="when"),
    )
    df.columns.name = "cols"
    out, _, _ = roundtrip(df, target_rows=32)
    assert_same_frame(out, df)
    assert out.index.freq == df.index.freq and out.index.name == "when"

    mi = pd.DataFrame(
        np.arange(12).reshape(3, 4), columns=pd.MultiIndex.from_product([["a", "b"], [1, 2]])
    )
    out, _, _ = roundtrip(mi)
    assert_same_frame(out, mi)

    with pytest.raises(ValidationError, match=r"column labels.*tuple"):
        encode(pd.DataFrame({(1, "x"): [1], "y": [2]}), Store().put)

    dup = pd.DataFrame([[1, 2.5]], columns=["x", "x"], index=pd.Index(["r"], dtype=object))
    out, _, _ = roundtrip(dup)
    assert_same_frame(out, dup)

    empty = every_dtype_frame(30).iloc[:0]
    out, manifest, _ = roundtrip(empty)
    assert_same_frame(out, empty)
    assert manifest["row_chunks"] == [0]


def test_roundtrip_series_and_ndarrays():
    s = pd.Series(
        np.random.default_rng(1).random(1000),
        index=pd.Index([f"r{i}" for i in range(1000)], name="id"),
        name="score",
    )
    out, manifest, _ = roundtrip(s, target_rows=64)
    pd.testing.assert_series_equal(out, s, check_exact=True)
    assert manifest["kind"] == "series"
    for obj in [pd.Series(["a", None, "c"], name=0), pd.Series([], dtype="Int8")]:
        out, _, _ = roundtrip(obj)
        pd.testing.assert_series_equal(out, obj, check_exact=True)

    rng = np.random.default_rng(2)
    arrays = [
        rng.random(1000),
        rng.integers(0, 5, (1000, 3)),
        np.asfortranarray(rng.random((50, 4))),
        rng.random((20, 2, 3)).astype(">f8"),
        np.array(3.5),
        np.array(["ab", "c"]),
        np.array(["a", None, 1], dtype=object),
        np.array([], dtype="M8[s]"),
    ]
    for arr in arrays:
        out, manifest, _ = roundtrip(arr, target_rows=16)
        assert manifest["kind"] == "ndarray"
        assert out.dtype == arr.dtype and out.shape == arr.shape
        assert out.flags.f_contiguous == arr.flags.f_contiguous
        if arr.dtype == object:
            assert list(out) == list(arr)
        else:
            np.testing.assert_array_equal(out, arr)
        assert out.flags.writeable


def test_identical_frames_identical_manifests():
    df = every_dtype_frame(1500)
    store = Store()
    m1 = encode(df, store.put, target_rows=100)
    added, m2 = store.added_by(df.copy(), target_rows=100)
    assert m1 == m2 and added == 0
    assert chunk_hashes(m1) == set(store.objects)
    assert row_chunk_signatures(m1) == row_chunk_signatures(m2)
    assert len(row_chunk_signatures(m1)) == len(m1["row_chunks"])
    ticks: list[int] = []
    encode(df, store.put, target_rows=100, progress=ticks.append, workers=3)
    assert ticks[-1] == len(df) and ticks == sorted(ticks)


def test_decode_rows_returns_exactly_those_chunks():
    df = every_dtype_frame(3000)
    store = Store()
    m = encode(df, store.put, target_rows=200)
    starts = np.concatenate([[0], np.cumsum(m["row_chunks"])])
    picked = [3, 1, len(m["row_chunks"]) - 1]
    fetched: list[str] = []

    def get(digest: str) -> bytes:
        fetched.append(digest)
        return store.get(digest)

    out = decode_rows(m, get, picked)
    positions = np.concatenate([np.arange(starts[i], starts[i + 1]) for i in picked])
    assert_same_frame(out, df.iloc[positions])
    wanted = {c["chunks"][i] for c in m["columns"] for i in picked}
    assert wanted <= set(fetched) and len(set(fetched)) < len(chunk_hashes(m)) / 2
    with pytest.raises(ValidationError, match="does not exist"):
        decode_rows(m, store.get, [len(m["row_chunks"])])


def _storage_frame(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cols: dict = {f"f{i}": rng.normal(size=n) for i in range(15)}
    cols.update({f"i{i}": rng.integers(0, 10**6, n) for i in range(3)})
    cols["c0"] = pd.Categorical.from_codes(
        rng.integers(0, 10, n).astype("int8"), list("abcdefghij")
    )
    cols["c1"] = pd.Categorical.from_codes(
        rng.integers(0, 50, n).astype("int8"), [f"k{i}" for i in range(50)]
    )
    return pd.DataFrame(cols)


def test_storage_targets_500k_rows():
    n, target = 500_000, 6554
    df = _storage_frame(n)
    store = Store()
    first, _ = store.added_by(df, target_rows=target)
    assert first >= 0.99 * df.memory_usage(index=False).sum()
    known = dict(store.objects)

    def share(obj) -> float:
        store.objects = dict(known)
        store.new_bytes = 0
        added, _ = store.added_by(obj, target_rows=target)
        return added / first

    k, mid = n // 100, n // 2
    extra = _storage_frame(k, seed=5)
    rng = np.random.default_rng(7)
    rows = rng.choice(n, k, replace=False)
    edited = df.copy()
    edited.iloc[rows, edited.columns.get_loc("f3")] = rng.normal(size=k)
    shares = {
        "unchanged": share(df),
        "append": share(pd.concat([df, extra], ignore_index=True)),
        "scattered": share(edited),
        "delete": share(df.drop(df.index[mid : mid + k])),
        "delete_reset": share(df.drop(df.index[mid : mid + k]).reset_index(drop=True)),
        "insert": share(pd.concat([df.iloc[:mid], extra, df.iloc[mid:]], ignore_index=True)),
        "add_column": share(df.assign(new=rng.normal(size=n))),
    }
    print(shares)
    assert shares["unchanged"] == 0
    assert shares["append"] <= 0.03
    assert shares["scattered"] <= 0.10
    assert shares["delete"] <= 0.10
    assert shares["delete_reset"] <= 0.10
    assert shares["insert"] <= 0.10
    column_share = n * 8 / first
    assert column_share <= shares["add_column"] <= 1.05 * column_share


def test_unsupported_inputs_are_refused():
    store = Store()
    for bad in [(x for x in range(3)), [1, 2, 3], "text", {"a": [1]}]:
        with pytest.raises(ValidationError, match="DataFrame"):
            encode(bad, store.put)
    with pytest.raises(ValidationError, match=r"column 'payload'.*list"):
        encode(pd.DataFrame({"ok": [1, 2], "payload": [[1], [2]]}), store.put)
    with pytest.raises(ValidationError, match="dict"):
        encode(pd.Series([{"a": 1}, "x"]), store.put)
    with pytest.raises(ValidationError, match="period"):
        encode(pd.DataFrame({"p": pd.period_range("2020", periods=3, freq="M")}), store.put)
    with pytest.raises(ValidationError, match="object ndarray"):
        encode(np.empty((2, 2), dtype=object), store.put)
    assert store.objects == {}  # nothing written before refusing
    with pytest.raises(ValidationError, match="newer"):
        decode({"format": "jupyter_mlops.chunks", "version": 99}, store.get)
    with pytest.raises(ValidationError, match="target_rows"):
        encode(pd.DataFrame({"a": [1]}), store.put, target_rows=1)


def test_column_stats_json():
    df = every_dtype_frame(1000)
    stats = column_stats(df)
    json.dumps(stats, allow_nan=False)
    by = {c["name"]: c for c in stats["columns"]}
    assert stats["rows"] == 1000
    assert by["f64"]["nulls"] == 1 and by["f64"]["count"] == 999
    assert isinstance(by["i64"]["min"], int)
    assert by["cat"]["unique"] == 3 and len(by["cat"]["top"]) == 3
    assert by["dt"]["min"].startswith("2020-01-01")
    assert by["Int64"]["nulls"] == 1
    assert by["str"]["top"][0][1] == 1
    arr = column_stats(np.arange(10.0).reshape(5, 2))
    assert [c["max"] for c in arr["columns"]] == [8.0, 9.0]
