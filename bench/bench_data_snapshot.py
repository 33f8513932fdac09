"""Benchmark: content-addressed DataFrame snapshots (jupyter_mlops.data.chunks) vs Parquet.

A 5,000,000-row x 20-column frame (15 float64, 3 int64, 2 categorical) is encoded into a
real local object store (``jupyter_mlops.store.objects.ObjectStore`` in a temporary folder)
and compared with ``df.to_parquet(path, compression="zstd")`` of the same frame, both on the
same disk, alternated, with ``os.sync()`` before each timing. Printed:

* encode time vs to_parquet time and their ratio (target: encode >= 2x faster);
* SHA-256 throughput over the frame's bytes in memory and encode's effective throughput
  (also with an in-memory put, to separate the engine from the file system);
* re-encoding the unchanged frame: time and new bytes written (target: 0);
* new bytes a second version writes, as a share of the first version's bytes, for: append
  1% rows (<= 3%), change one column in 1% scattered rows (<= 10%; each of f0, i0 and c0 in
  turn, the first column used for chunk boundaries and a column that is not, and the worst
  of those), delete / insert a contiguous 1% block in the middle (<= 10%; delete with the
  index kept and with it reset), add one column (~ its own size);
* decode time, and column_stats time.

``--quick`` uses 500,000 rows (and target_rows scaled down 10x) and fewer repetitions.
Ends with ``BENCH_JSON {...}`` like the other bench scripts.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from _common import JSON_PREFIX, REPO, log, median, now, parser

sys.path.insert(0, str(REPO))

from jupyter_mlops.data.chunks.cdc import DEFAULT_TARGET_ROWS
from jupyter_mlops.data.chunks.codec import decode, encode
from jupyter_mlops.data.chunks.manifest import chunk_hashes
from jupyter_mlops.data.stats import column_stats
from jupyter_mlops.store.objects import ObjectStore

SCRIPT = "bench_data_snapshot.py"


def make_frame(n: int, seed: int = 0) -> pd.DataFrame:
    """15 float64, 3 int64 and 2 categorical columns of random data."""
    rng = np.random.default_rng(seed)
    cols: dict[str, Any] = {}
    for i in range(15):
        cols[f"f{i}"] = rng.normal(size=n)
    for i in range(3):
        cols[f"i{i}"] = rng.integers(0, 1_000_000, n)
    cols["c0"] = pd.Categorical.from_codes(
        rng.integers(0, 10, n).astype("int8"), categories=[f"cat{i}" for i in range(10)]
    )
    cols["c1"] = pd.Categorical.from_codes(
        rng.integers(0, 50, n).astype("int8"), categories=[f"k{i}" for i in range(50)]
    )
    return pd.DataFrame(cols)


def frame_bytes(df: pd.DataFrame) -> int:
    return int(df.memory_usage(index=False, deep=False).sum())


class CountingPut:
    """put() into the real store, counting bytes whose hash the first version does not hold."""

    def __init__(self, objects: ObjectStore, known: set[str]):
        self.objects = objects
        self.known = known
        self.new: dict[str, int] = {}
        self.passed = 0

    def __call__(self, data: bytes) -> str:
        digest = self.objects.put(data)
        self.passed += len(data)
        if digest not in self.known:
            self.new[digest] = len(data)
        return digest

    @property
    def new_bytes(self) -> int:
        return sum(self.new.values())


def fresh_dir(base: Path, name: str) -> Path:
    path = base / name
    shutil.rmtree(path, ignore_errors=True)
    os.sync()
    return path


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--target-rows", type=int, default=None, help="override target_rows")
    args = p.parse_args()
    started = time.time()
    n = 500_000 if args.quick else 5_000_000
    target = args.target_rows or (DEFAULT_TARGET_ROWS // 10 if args.quick else DEFAULT_TARGET_ROWS)
    reps = 3
    log(f"{SCRIPT}: building a {n:,} x 20 frame ...")
    df = make_frame(n)
    nbytes = frame_bytes(df)
    base = Path(tempfile.mkdtemp(prefix="mlops-bench-snapshot-"))
    results: dict[str, Any] = {"rows": n, "columns": 20, "frame_mb": round(nbytes / 1e6, 1)}
    results["target_rows"] = target
    try:
        # --- hashing throughput in memory
        arrays = [np.ascontiguousarray(df[c].array.codes if c[0] == "c" else df[c]) for c in df]
        t = now()
        for a in arrays:
            hashlib.sha256(a.data).digest()
        sha_s = now() - t
        results["sha256_gb_s"] = round(nbytes / sha_s / 1e9, 2)

        def mem_put(data: bytes) -> str:
            return hashlib.sha256(data).hexdigest()

        mem_times = []
        for _ in range(reps):
            t = now()
            encode(df, mem_put, target_rows=target)
            mem_times.append(now() - t)
        results["encode_in_memory_s"] = round(median(mem_times), 3)
        results["encode_in_memory_gb_s"] = round(nbytes / median(mem_times) / 1e9, 2)

        # --- encode vs to_parquet, alternated, fresh folders, sync before each
        log(f"{SCRIPT}: encode vs to_parquet x{reps} ...")
        enc_times, pq_times = [], []
        manifest: dict[str, Any] = {}
        pq_size = 0
        for r in range(reps):
            path = fresh_dir(base, "pq")
            path.mkdir()
            t = now()
            df.to_parquet(path / "x.parquet", compression="zstd")
            pq_times.append(now() - t)
            pq_size = (path / "x.parquet").stat().st_size
            shutil.rmtree(path)
            store = fresh_dir(base, f"store{r}")
            objects = ObjectStore(str(store))
            t = now()
            manifest = encode(df, objects.put, target_rows=target)
            enc_times.append(now() - t)
            if r < reps - 1:
                shutil.rmtree(store)
        enc_s, pq_s = median(enc_times), median(pq_times)
        results.update(
            encode_s=round(enc_s, 3),
            encode_runs_s=[round(x, 3) for x in enc_times],
            parquet_zstd_s=round(pq_s, 3),
            parquet_runs_s=[round(x, 3) for x in pq_times],
            parquet_mb=round(pq_size / 1e6, 1),
            speedup_vs_parquet=round(pq_s / enc_s, 2),
            encode_gb_s=round(nbytes / enc_s / 1e9, 2),
            row_chunks=len(manifest["row_chunks"]),
            objects=len(chunk_hashes(manifest)),
            mean_rows_per_chunk=int(n / len(manifest["row_chunks"])),
            key_columns=[
                manifest["columns"][i]["name"] for i in manifest["chunking"]["key_columns"]
            ],
        )
        known = chunk_hashes(manifest)
        v1 = CountingPut(objects, set())
        encode(df, v1, target_rows=target)  # all present already: v1.passed = version bytes
        first_bytes = v1.passed
        results["first_version_mb"] = round(first_bytes / 1e6, 1)

        # --- unchanged frame
        again = CountingPut(objects, known)
        t = now()
        encode(df, again, target_rows=target)
        results["unchanged_encode_s"] = round(now() - t, 3)
        results["unchanged_new_bytes"] = again.new_bytes

        # --- decode
        log(f"{SCRIPT}: decode x{reps} ...")
        dec_times = []
        for _ in range(reps):
            t = now()
            out = decode(manifest, objects.get)
            dec_times.append(now() - t)
        pd.testing.assert_frame_equal(out, df, check_exact=True)
        del out
        results["decode_s"] = round(median(dec_times), 3)
        t = now()
        decode(manifest, lambda h: objects.get(h, verify=False))
        results["decode_noverify_s"] = round(now() - t, 3)

        # --- edits
        log(f"{SCRIPT}: edits ...")
        rng = np.random.default_rng(1)
        k = n // 100
        mid = n // 2
        extra = make_frame(k, seed=2)
        key_col = manifest["columns"][manifest["chunking"]["key_columns"][0]]["name"]
        other_col = next(
            (c for c in df.columns if c not in results["key_columns"] and c[0] == "f"), None
        )
        edits: dict[str, Any] = {}

        def scattered(col: str) -> pd.DataFrame:
            rows = rng.choice(n, k, replace=False)
            out = df.copy()
            j = out.columns.get_loc(col)
            if isinstance(out[col].dtype, pd.CategoricalDtype):
                out.iloc[rows, j] = rng.choice(out[col].cat.categories, k)
            elif out[col].dtype.kind == "i":
                out.iloc[rows, j] = rng.integers(0, 1_000_000, k)
            else:
                out.iloc[rows, j] = rng.normal(size=k)
            return out

        def role(col: str) -> str:
            if col == key_col:
                return "first chunking key"
            return "a chunking key" if col in results["key_columns"] else "not a chunking key"

        edits["append 1% rows"] = (lambda: pd.concat([df, extra], ignore_index=True), 0.03)
        scattered_cols = list(dict.fromkeys([key_col, "f0", "i0", "c0", other_col]))
        for col in [c for c in scattered_cols if c is not None]:
            edits[f"change 1% scattered rows of {col} ({role(col)})"] = (
                lambda col=col: scattered(col),
                0.10,
            )
        edits["delete 1% block in the middle (index kept)"] = (
            lambda: df.drop(df.index[mid : mid + k]),
            0.10,
        )
        edits["delete 1% block in the middle (index reset)"] = (
            lambda: df.drop(df.index[mid : mid + k]).reset_index(drop=True),
            0.10,
        )
        edits["insert 1% block in the middle"] = (
            lambda: pd.concat([df.iloc[:mid], extra, df.iloc[mid:]], ignore_index=True),
            0.10,
        )
        col_bytes = n * 8
        edits["add one float64 column"] = (
            lambda: df.assign(added=np.random.default_rng(3).normal(size=n)),
            None,
        )
        shares = {}
        for name, (make, limit) in edits.items():
            df2 = make()
            counter = CountingPut(objects, known)
            encode(df2, counter, target_rows=target)
            share = counter.new_bytes / first_bytes
            entry = {"new_mb": round(counter.new_bytes / 1e6, 2), "share": round(share, 4)}
            if limit is not None:
                entry["target"] = limit
                entry["ok"] = share <= limit
            else:
                entry["vs_column_size"] = round(counter.new_bytes / col_bytes, 3)
                entry["ok"] = counter.new_bytes <= 1.10 * col_bytes
            shares[name] = entry
            del df2
        changes = {name: e for name, e in shares.items() if name.startswith("change 1%")}
        worst = max(changes, key=lambda name: changes[name]["share"])
        shares["worst scattered change: " + worst[len("change 1% scattered rows of ") :]] = {
            **changes[worst]
        }
        results["edits"] = shares

        # --- stats
        t = now()
        column_stats(df)
        results["column_stats_s"] = round(now() - t, 3)
    finally:
        shutil.rmtree(base, ignore_errors=True)

    elapsed = time.time() - started
    report(results, elapsed)


def report(r: dict[str, Any], elapsed: float) -> None:
    speed_ok = r["speedup_vs_parquet"] >= 2.0
    lines = [
        ("encode new frame into local ObjectStore", f"{r['encode_s']:.2f} s", ""),
        ("df.to_parquet(zstd) (anchor)", f"{r['parquet_zstd_s']:.2f} s", ""),
        (
            "speed-up vs to_parquet",
            f"{r['speedup_vs_parquet']:.2f}x",
            f">=2x  {'yes' if speed_ok else 'NO'}",
        ),
        ("sha256 over the frame in memory", f"{r['sha256_gb_s']:.2f} GB/s", ""),
        ("encode effective throughput (disk)", f"{r['encode_gb_s']:.2f} GB/s", ""),
        (
            "encode with in-memory put (no disk)",
            f"{r['encode_in_memory_s']:.2f} s ({r['encode_in_memory_gb_s']:.2f} GB/s)",
            "",
        ),
        (
            "re-encode unchanged frame",
            f"{r['unchanged_encode_s']:.2f} s, {r['unchanged_new_bytes']} new bytes",
            f"0 B  {'yes' if r['unchanged_new_bytes'] == 0 else 'NO'}",
        ),
        ("decode (verified reads)", f"{r['decode_s']:.2f} s", ""),
        ("decode (unverified reads)", f"{r['decode_noverify_s']:.2f} s", ""),
        ("column_stats", f"{r['column_stats_s']:.2f} s", ""),
    ]
    for name, e in r["edits"].items():
        value = f"{e['share'] * 100:.2f}% ({e['new_mb']} MB)"
        if "target" in e:
            tgt = f"<={e['target'] * 100:.0f}%  {'yes' if e['ok'] else 'NO'}"
        else:
            value += f" = {e['vs_column_size']:.2f}x the column"
            tgt = f"~1x column  {'yes' if e['ok'] else 'NO'}"
        lines.append((f"new bytes: {name}", value, tgt))
    w0 = max(len(x[0]) for x in lines)
    w1 = max(len(x[1]) for x in lines)
    print()
    print(f"{'benchmark'.ljust(w0)}  {'jupyter_mlops'.ljust(w1)}  target / met")
    print(f"{'-' * w0}  {'-' * w1}  ------------")
    for name, value, tgt in lines:
        print(f"{name.ljust(w0)}  {value.ljust(w1)}  {tgt}")
    notes = [
        f"{r['rows']:,} rows x {r['columns']} columns, {r['frame_mb']} MB in memory; "
        f"target_rows={r['target_rows']}: {r['row_chunks']} row-chunks "
        f"(mean {r['mean_rows_per_chunk']:,} rows), {r['objects']} objects, "
        f"first version {r['first_version_mb']} MB; parquet file {r['parquet_mb']} MB",
        f"chunk boundaries keyed on {r['key_columns']}",
        f"encode runs {r['encode_runs_s']} s, to_parquet runs {r['parquet_runs_s']} s "
        "(medians shown; alternated, fresh folder and os.sync() before each)",
        "shares are new bytes (hash not in the first version) / first version's bytes",
    ]
    for note in notes:
        print(f"  note: {note}")
    print(f"  ({SCRIPT} took {elapsed:.0f} s)")
    rows = [
        {
            "name": "encode 5M x 20 frame vs to_parquet zstd",
            "ours": r["encode_s"] * 1000,
            "mlflow": r["parquet_zstd_s"] * 1000,
            "ratio": r["speedup_vs_parquet"],
            "unit": "ms",
            "target": "≥2×",
            "ok": speed_ok,
            "note": "anchor is pandas to_parquet(zstd), not MLflow",
        }
    ]
    payload = {"script": SCRIPT, "rows": rows, "results": r, "notes": notes, "elapsed_s": elapsed}
    print(JSON_PREFIX + json.dumps(payload), flush=True)


if __name__ == "__main__":
    sys.exit(main())
