"""Content-addressed chunked snapshots: exact round trips, dedup targets, errors."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from jupyter_mlops.data.chunks.codec import decode, decode_rows, encode
from jupyter_mlops.data.chunks.manifest import chunk_hashes, row_chunk_signatures
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
    first, manifest = store.added_by(df, target_rows=target)
    assert first >= 0.99 * df.memory_usage(index=False).sum()
    known = dict(store.objects)
    names = [manifest["columns"][i]["name"] for i in manifest["chunking"]["key_columns"]]
    assert names[:4] == ["i0", "i1", "i2", "f0"]  # ids first, then floats; never categoricals
    assert len(manifest["chunking"]["key_groups"]) == 16

    def share(obj) -> float:
        store.objects = dict(known)
        store.new_bytes = 0
        added, _ = store.added_by(obj, target_rows=target)
        return added / first

    k, mid = n // 100, n // 2
    extra = _storage_frame(k, seed=5)
    rng = np.random.default_rng(7)

    def scattered(col: str) -> pd.DataFrame:
        rows = rng.choice(n, k, replace=False)
        edited = df.copy()
        j = edited.columns.get_loc(col)
        if col[0] == "c":
            edited.iloc[rows, j] = rng.choice(edited[col].cat.categories, k)
        elif col[0] == "i":
            edited.iloc[rows, j] = rng.integers(0, 10**6, k)
        else:
            edited.iloc[rows, j] = rng.normal(size=k)
        return edited

    shares = {
        "unchanged": share(df),
        "append": share(pd.concat([df, extra], ignore_index=True)),
        "delete": share(df.drop(df.index[mid : mid + k])),
        "delete_reset": share(df.drop(df.index[mid : mid + k]).reset_index(drop=True)),
        "insert": share(pd.concat([df.iloc[:mid], extra, df.iloc[mid:]], ignore_index=True)),
        "add_column": share(df.assign(new=rng.normal(size=n))),
    }
    for col in ["f3", "f14", "i0", "c0"]:  # a float key, a non-key float, an id key, a label
        shares[f"scattered_{col}"] = share(scattered(col))
    print(shares)
    column_share = n * 8 / first
    assert shares["unchanged"] == 0
    assert shares["append"] <= 0.03
    # the kept index is a RangeIndex minus a block: two runs in the manifest, no objects
    assert shares["delete"] <= 0.06 and shares["delete_reset"] <= 0.06
    assert shares["insert"] <= 0.06
    for col in ["f3", "f14", "i0"]:
        assert column_share * 0.99 <= shares[f"scattered_{col}"] <= 0.10
    assert shares["scattered_c0"] <= 0.03
    assert column_share <= shares["add_column"] <= 1.05 * column_share


def test_chunk_targets_follow_the_frame_size():
    from jupyter_mlops.data.chunks.cdc import (
        DEFAULT_TARGET_ROWS,
        MIN_TARGET_ROWS,
        SPLIT_MIN_ROWS,
        target_for,
    )

    sizes = sorted({int(x) for x in np.geomspace(SPLIT_MIN_ROWS, 8_000_000, 400)})
    targets = [target_for(n) for n in sizes]
    assert targets == sorted(targets)  # a bigger frame never gets shorter chunks
    for n, t in zip(sizes, targets, strict=True):
        assert t & (t - 1) == 0 and MIN_TARGET_ROWS <= t <= DEFAULT_TARGET_ROWS
        if MIN_TARGET_ROWS < t < DEFAULT_TARGET_ROWS:
            assert 11 <= n / t <= 46, (n, t)  # about 32 chunks (16 for large frames)
    assert target_for(20_000) == target_for(20_100)  # a 1% append is cut alike
    assert all(target_for(n) == DEFAULT_TARGET_ROWS for n in (1_000_000, 5_000_000, 10**9))
    assert target_for(SPLIT_MIN_ROWS - 1) == target_for(0) == DEFAULT_TARGET_ROWS
    # the previous version's target is kept while within half of the size's target
    ideal = target_for(20_000)
    assert target_for(20_000, previous=ideal // 2) == ideal // 2
    assert target_for(20_000, previous=ideal // 4) == ideal
    assert target_for(20_000, previous=ideal * 2) == ideal
    assert target_for(20_000, previous=DEFAULT_TARGET_ROWS) == ideal  # chunked before sizes adapted
    assert target_for(1_000_000, previous=DEFAULT_TARGET_ROWS) == DEFAULT_TARGET_ROWS


def test_default_chunking_small_frames_stay_whole_larger_ones_split():
    from jupyter_mlops.data.chunks.cdc import target_for

    store = Store()
    tiny = _storage_frame(1000)
    m = encode(tiny, store.put)
    assert m["row_chunks"] == [1000] and m["chunking"]["target_rows"] == target_for(1000)
    df = _storage_frame(20_000)
    m = encode(df, store.put)
    assert m["chunking"]["target_rows"] == target_for(20_000)
    assert 24 <= len(m["row_chunks"]) <= 64
    assert_same_frame(decode(m, store.get), df)


def test_local_minima_match_brute_force():
    from jupyter_mlops.data.chunks.cdc import _sparse_local_minima

    rng = np.random.default_rng(3)
    for m, w, spread in [(200, 5, 1000), (300, 40, 500), (1, 3, 10), (50, 1, 60), (400, 7, 300)]:
        rows = np.sort(rng.integers(0, spread, m))  # repeats allowed
        vals = rng.integers(0, 50, m).astype(np.uint64)  # ties allowed
        want = sorted(
            {
                int(r)
                for r, v in zip(rows, vals, strict=True)
                if v <= vals[np.abs(rows - r) <= w].min()
            }
        )
        assert list(_sparse_local_minima(rows, vals, w)) == want


def test_int_index_stored_as_runs():
    rng = np.random.default_rng(4)
    df = pd.DataFrame({"x": rng.normal(size=3000), "k": rng.integers(0, 10**9, 3000)})
    store = Store()
    encode(df, store.put, target_rows=100)
    kept = df.drop(df.index[1000:1100])  # labels 0..999, 1100..2999
    added, m = store.added_by(kept, target_rows=100)
    assert m["index"]["type"] == "runs" and len(m["index"]["runs"]) == 2
    assert m["version"] == 2
    assert added < 0.15 * (df.memory_usage(index=False).sum())
    assert_same_frame(decode(json.loads(json.dumps(m)), store.get), kept)
    starts = np.concatenate([[0], np.cumsum(m["row_chunks"])])
    picked = [len(m["row_chunks"]) - 1, 0, 5]
    positions = np.concatenate([np.arange(starts[i], starts[i + 1]) for i in picked])
    assert_same_frame(decode_rows(m, store.get, picked), kept.iloc[positions])
    # signatures see the labels: same rows under other labels differ, equal rows match
    sig_kept = row_chunk_signatures(m)
    edited = kept.copy()
    edited.iloc[1500, 0] = -1.0
    _, m_edit = store.added_by(edited, target_rows=100)
    assert len(set(sig_kept) - set(row_chunk_signatures(m_edit))) == 1
    relabeled = kept.set_axis(kept.index + 1)
    _, m_rel = store.added_by(relabeled, target_rows=100)
    assert m_rel["index"]["type"] == "runs"
    assert not set(row_chunk_signatures(m_rel)) & set(sig_kept)
    # other integer dtypes, extremes that overflow differences, names, series
    for index in [
        pd.Index(np.array([5, 4, 3, 9, 9, 9], dtype="int32"), name="i32"),
        pd.Index(np.array([0, 2**32 - 1, 7], dtype="uint32")),
        pd.Index(np.array([-(2**63), 2**63 - 1, 0, 1], dtype="int64"), name=("a", 1)),
    ]:
        s = pd.Series(np.arange(len(index), dtype=float), index=index, name="v")
        out, ms, _ = roundtrip(s)
        assert ms["index"]["type"] == "runs"
        pd.testing.assert_series_equal(out, s, check_exact=True)
        assert out.index.dtype == index.dtype
    # too many runs: stored as an index column, as before
    shuffled = df.sample(frac=1.0, random_state=0)
    out, ms, _ = roundtrip(shuffled, target_rows=100)
    assert ms["index"]["type"] == "index"
    assert_same_frame(out, shuffled)


def test_zero_copy_buffers_give_the_same_objects(tmp_path):
    from jupyter_mlops.data.chunks.codec import _takes_buffers
    from jupyter_mlops.store.objects import ObjectStore

    df = every_dtype_frame(1200)
    plain, views = Store(), Store()
    m1 = encode(df, plain.put, target_rows=100, buffers=False)
    m2 = encode(df, views.put, target_rows=100, buffers=True, workers=1)
    assert m1 == m2 and plain.objects == views.objects
    objects = ObjectStore(str(tmp_path / "objects"))
    assert _takes_buffers(objects.put) and _takes_buffers(objects.write)
    assert not _takes_buffers(plain.put) and not _takes_buffers(lambda b: objects.put(b))
    m3 = encode(df, objects.put, target_rows=100)
    assert m3 == m1
    assert_same_frame(decode(m3, objects.get), df)
    arr = np.asfortranarray(np.random.default_rng(0).random((300, 3)))
    out, _, _ = roundtrip(arr, target_rows=16, buffers=True)
    np.testing.assert_array_equal(out, arr)


_V1_FIXTURE = (
    "eNqtV11vWzcS/SuGXpsu+M1hUT/Yjtt6d/3gLrpodxEYQ3JoK7GkQFISG6n/ew+v9Rk0u0AlCbggee+dGZ4zc4b3"
    "82jC03GTxXL03cnnUZvNJ9yHo7cf3j8tZX47eZi9X/yt3H+YvluMXp2MPsp8MZ5N8YjG7N14WvvTlZfc5jyR/sh0"
    "Pvu06A8oTDC+Xb393cl/8Y55dWJfnbg3uDesj6d3g2t+uJvNx8v7SbdXavkWb97z4v7bj7obXfL8Tpa3K9MOK5Px"
    "dD3toUz4cTMNPTR5ui2zhw+T6dqzffPcnW7XPo9kWrq7OX/qPury6b30+feN+hzx3O1MP648bbczcqWxz84UDiFZ"
    "QzE4CbHUxNblTC2prIPUWJgqeSHnbCSLeSmivdRuVpFhyq7E6Jqz1Lxo4Wpz9qmqZrWUxLoZOLFRknXRuVSSWB29"
    "dp7zELmP2RLWS27BF3aSVSBlhUzS+BOzy9pHITbOhiKJWYVWgncmpTQgXKpLOSjjvOSsmknBZJOceEnJKdNMaD5H"
    "K0oVJalRUb6Ehn2R0sXWOuqUTnsOALLHEbD+Or7jfXzHX8PX+izWmKqSa6lq75g4s4vWZuw2No09eptrZIlZsfYd"
    "cU8he5eaoQEb1fCsi6Y1McAg6RKSKakaX5OrVAwpr3JI4kxtxZKxkm20zoVAzuoBm1qM904nVaMB5IztJk9Cqlat"
    "bQY+rlgHNFWpNmkx1Rk8rkGr4qK523Cl6hpUlkLknW9K5RoM1dhIBSMZ/qMHARR01CY4RBR1LFHX6qVkvYfvdA/f"
    "wkvp1VP4YQ/n1frTC9hV5tKrtfHDQoZKqNJhHv0+1nv4r6wNNzc+Fst5L9Vd81jq88VyNue7YeX9E89RhIMK8BAn"
    "T79CrbJZl5hjzs0jzSJA1wY716ZZotjxC6SzicC6VmlehRooCGlLQaX0Aseq4u3zvvEg1qmcSmugkhOlwt6hNHOO"
    "pNiUSEnpanEXTKNqyWvNVgF5bow7PWbWqGfdRIzuKRR0Qi0JC+vkPOmSkUGoTpeNjShVY3xDySG3bAvIWTPYwG3I"
    "ghIfxDRuZJvTjhFe5Syp+pZFU4rIHGSKb1KBAaOKyWdvW+k2yAdmKEMOOou0qmJImnOQgGTzyhuTUYsUjUbpR1Uz"
    "U4wFyyY6n5Xby5uylzfH5pRIciKESADXZkgh9EGAi0tJASxsMNhgfDbCEEc2XeK44VooI90HGSK2lmzoxaVrVLBW"
    "IWQxKinFWHAXlMIYGiVRoc5dEfAUdWIUJLluo7GNgaPVZC0YS9xyo4ZiVQKeDSTN6+IqtDLlro3FFhvAoFMpFGA5"
    "wB4gGxGyCe32EdrogK1jg4Ry2eEVxyrpxlFbqHTQobLWikPiCmqo7cG+GD33KbqlPA5FtYb7ZWXnyfGQey9Narf8"
    "/rKEIip0j+gBnkQPse4/0KMUI3tjsNi59jlVq7tCsa7UbLXehxS9rFpUbRBW1B+wRxV01NGMakXeEmSuaJeFckVj"
    "A/86QmcddBitApBpFQcbniPuGjSSLF4ZkFkG1TWOii8OTkNUwLtVQpcxkVUEM4qVSFLQ5W4johY0wq8aVdNIwGdG"
    "PJQsJ/bgU1nKLZlYW4aAeo92gVwBXWR0FRm9ed45Atz+fzqmHx4e/pSOY1eOpZRQvAXNjSl5DYaAPvat0YnEV1IF"
    "c2JvJISmoYKhRShHQINECsbRcLZZy6EbtjnLb6UsX0T8YPuI/hf987+ub27O1r/zs7PLs/3f+XC965frfhnuy4/+"
    "bfl0evrSBA88MCGOtTP3mgabBx8Sus1Pmz0MNg9uIEOcL3s+WBU32F/uAn3+Z9iXlc+Dqx4+L+72MTn4oLrDXfon"
    "rYdXN6uYDz6odfvb9NzJzTUmBzb0wf7V6VG61IbTqx0CL3c4XYV/sx6fPx5FiTuv21y//hKjgz8kdjj+5qcNx5c3"
    "f3/UZ1d35F/Xb45yoN7n+oftPt5tRkc5gA37ubw4yqliw/n1btG+/t8aev5U7M3pUToo/O8A9e+tx9/2MDv4Q3An"
    "B8626V02dF2so7g4u3p3dnqUj6Puc6tXP263+ct2+IXGH3ywXuXGRucPPTEe0GPrr/+xsorj4FNSz5MtVrPN6GJb"
    "W//4sjcc+jX312rj/rfJ9eno+fkPJmILqA=="
)


def test_manifest_written_by_version_1_still_decodes():
    """A manifest (and its objects) written by the first layout: v1 chunking, an int index
    stored as an index column."""
    import base64
    import zlib

    data = json.loads(zlib.decompress(base64.b64decode("".join(_V1_FIXTURE))))
    manifest = data["manifest"]
    objects = {k: base64.b64decode(v) for k, v in data["objects"].items()}
    assert manifest["version"] == 1 and manifest["index"]["type"] == "index"
    out = decode(manifest, objects.__getitem__)
    want = pd.DataFrame(
        {
            "x": [0.5, -1.25, 3.0, np.nan, 2.5, 1e300, -0.0, 7.0, 8.5, 9.25],
            "n": np.array([3, 1, 4, 1, 5, 9, 2, 6, 5, 3], dtype="int64"),
            "c": pd.Categorical(list("abcabcabca")),
            "s": ["p", "q", None, "r", "s", "t", "u", "v", "w", "x"],
        },
        index=pd.Index([10, 11, 12, 20, 21, 22, 23, 40, 41, 42], name="id"),
    )
    assert_same_frame(out, want)
    assert_same_frame(decode_rows(manifest, objects.__getitem__, [2]), want.iloc[3:6])
    assert len(row_chunk_signatures(manifest)) == 4


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
