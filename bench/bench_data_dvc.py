"""Benchmark: data versioning with ``mlops.snapshot`` vs DVC 3.x (``dvc add`` of a Parquet file).

The same 5,000,000-row x 20-column frame (15 float64, 3 int64, 2 categorical; ``--quick``
300,000 rows) goes through four versions with each tool:

* (a) first add, (b) the unchanged frame again, (c) 1% rows appended, (d) one float column
  changed in 1% of the rows, scattered through the frame, and (d') the same change in the
  column the chunker keys its boundaries on, held to the same target. Both columns are read
  from our first version's manifest (for d, the last float column that is not a key) and
  the DVC part is given the same ones.
* DVC: ``df.to_parquet(path)`` (pandas default: pyarrow, snappy) then ``Repo.add(path)``
  through DVC's Python API, in a ``git init`` + ``dvc init`` folder; every version overwrites
  the same file and is added again, as a user would. Wall time covers both; storage is the
  bytes added under ``.dvc/cache`` (on ext4 DVC copies the file into its cache).
* jupyter_mlops: ``mlops.snapshot(df, "bench")``; storage is the bytes added under the
  store's ``objects/`` folder (the metadata database is reported apart).

* (e) notebook-sized data: a 20,000-row customer table (ids, ints, rounded and raw floats,
  city names as text, a plan categorical) added, then with 1% new rows appended (200 rows),
  as dataset ``customers`` beside ``bench`` (its own Parquet file for DVC). Row-chunk sizes
  follow the frame's size, so this append is held to a target of its own.

Each tool runs in its own fresh subprocess, store creation and imports are not timed, and
each does a tiny warm-up add first. ``os.sync()`` runs before every timed step. The whole
sequence runs ``reps`` times on fresh stores; times are medians, bytes are the same every
time. Also printed: content hashing throughput (``fingerprint(df)``) and the unchanged
snapshot's time vs hashing time + 50 ms. Targets: append adds <= 3%, the modification
<= 10% of the first version's bytes (DVC stores a full new copy of the file each time), the
20,000-row append <= 15% of that frame's first version; hashing >= 1.5 GB/s; unchanged
snapshot <= hashing + 50 ms and writes nothing.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from _common import emit_part, finish, log, median, ms, now, parser, row, run_part

SCRIPT = "bench_data_dvc.py"
FLOATS = [f"f{i}" for i in range(15)]


def pick_columns(key_columns: list[str]) -> tuple[str, str]:
    """(a float column the chunker does not key on if there is one, the first key column).

    The ours part reads the key columns from its first version's manifest and hands the
    choice to the DVC part, so both tools see the same frames whatever the chunker picks.
    """
    plain = [c for c in FLOATS if c not in key_columns]
    return (plain[-1] if plain else FLOATS[-1]), (key_columns[0] if key_columns else "i0")


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


SMALL_ROWS = 20_000
CITIES = ["Lyon", "Paris", "Nantes", "Lille", "Bordeaux", "Toulouse", "Nice", "Brest"]


def customers_frame(n: int, start: int = 0, seed: int = 0) -> pd.DataFrame:
    """A notebook-sized table: ids, ints, rounded and raw floats, text and a categorical."""
    rng = np.random.default_rng(seed)
    monthly = np.round(rng.normal(70, 20, n), 2)
    tenure = rng.integers(1, 72, n)
    return pd.DataFrame(
        {
            "customer_id": np.arange(start, start + n) + 10_000,
            "age": rng.integers(18, 90, n),
            "tenure": tenure,
            "monthly": monthly,
            "total": np.round(monthly * tenure + rng.normal(0, 5, n), 2),
            "score": rng.random(n),
            "city": np.array(CITIES)[rng.integers(0, len(CITIES), n)].astype(str),
            "plan": pd.Categorical(rng.choice(["basic", "plus", "pro", "team"], n)),
        }
    )


def small_steps() -> list[tuple[str, Any]]:
    """(key, maker) of the notebook-sized sequence: first add, then 1% rows appended."""
    df = customers_frame(SMALL_ROWS)
    extra = customers_frame(SMALL_ROWS // 100, start=SMALL_ROWS, seed=1)
    return [("e1", lambda: df), ("e", lambda: pd.concat([df, extra], ignore_index=True))]


def sizes(quick: bool) -> tuple[int, int]:
    """(rows, repetitions of the whole sequence)."""
    return (300_000, 3) if quick else (5_000_000, 3)


def modified(df: pd.DataFrame, col: str, seed: int) -> pd.DataFrame:
    """A copy of ``df`` with ``col`` changed in 1% of the rows, scattered."""
    rng = np.random.default_rng(seed)
    k = len(df) // 100
    rows = rng.choice(len(df), k, replace=False)
    out = df.copy()
    j = out.columns.get_loc(col)
    if out[col].dtype.kind == "i":
        out.iloc[rows, j] = rng.integers(0, 1_000_000, k)
    else:
        out.iloc[rows, j] = rng.normal(size=k)
    return out


def steps(df: pd.DataFrame, cols: dict[str, str]) -> list[tuple[str, Any]]:
    """(key, maker) for each version, in order; makers build the frame outside the timing.

    ``cols`` holds "mod" and "key" (the columns changed in d and d_key); it may be filled
    in after step a.
    """
    n = len(df)
    return [
        ("a", lambda: df),
        ("b", lambda: df),
        ("c", lambda: pd.concat([df, make_frame(n // 100, seed=2)], ignore_index=True)),
        ("d", lambda: modified(df, cols["mod"], seed=3)),
        ("d_key", lambda: modified(df, cols["key"], seed=4)),
    ]


def tree_bytes(path: Path) -> tuple[int, int]:
    """(apparent bytes, files) under ``path``."""
    total = files = 0
    for root, _dirs, names in os.walk(path):
        for name in names:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
                files += 1
            except FileNotFoundError:
                pass
    return total, files


def frame_bytes(df: pd.DataFrame) -> int:
    return int(df.memory_usage(index=True, deep=True).sum())


# ------------------------------------------------------------------------------- ours


def part_ours(quick: bool) -> None:
    n, reps = sizes(quick)
    log(f"{SCRIPT} ours: building a {n:,} x 20 frame ...")
    df = make_frame(n)
    t0 = now()
    import jupyter_mlops as mlops
    from jupyter_mlops.data.fingerprint import fingerprint
    from jupyter_mlops.data.versions import load_manifest

    import_s = now() - t0
    times: dict[str, list[float]] = {}
    added: dict[str, int] = {}
    reported_new: dict[str, int] = {}
    versions: dict[str, int] = {}
    db_added: dict[str, int] = {}
    first_size = small_first = 0
    small_ok = None
    chunking: dict[str, dict[str, int]] = {}
    key_columns: list[str] = []
    cols: dict[str, str] = {}
    load_s: list[float] = []
    load_ok = None
    for r in range(reps):
        root = Path.cwd() / f"store{r}"
        store = mlops.open_store(root)
        mlops.snapshot(pd.DataFrame({"a": [1, 2, 3]}), "warmup")  # creates the store
        objects = root / "objects"
        for key, make in steps(df, cols):
            frame = make()
            before = tree_bytes(objects)[0]
            db_before = sum(p.stat().st_size for p in root.glob("*.db*"))
            os.sync()
            t = now()
            v = mlops.snapshot(frame, "bench")
            times.setdefault(key, []).append(now() - t)
            added[key] = tree_bytes(objects)[0] - before
            db_added[key] = sum(p.stat().st_size for p in root.glob("*.db*")) - db_before
            reported_new[key] = int(v.new_bytes)
            versions[key] = int(v.version)
            if key == "a":
                first_size = int(v.size_bytes)
                manifest = load_manifest(v, store)
                chunking["a"] = {
                    "target_rows": manifest["chunking"]["target_rows"],
                    "row_chunks": len(manifest["row_chunks"]),
                }
                key_columns = [
                    manifest["columns"][i]["name"] for i in manifest["chunking"]["key_columns"]
                ]
                if not cols:
                    cols["mod"], cols["key"] = pick_columns(key_columns)
            if r == 0 and key == "d":
                os.sync()
                t = now()
                back = mlops.load_data(f"bench@v{v.version}")
                load_s.append(now() - t)
                load_ok = bool(back.equals(frame))
                del back
            del frame
        for key, make in small_steps():
            frame = make()
            before = tree_bytes(objects)[0]
            os.sync()
            t = now()
            v = mlops.snapshot(frame, "customers")
            times.setdefault(key, []).append(now() - t)
            added[key] = tree_bytes(objects)[0] - before
            reported_new[key] = int(v.new_bytes)
            versions[key] = int(v.version)
            if key == "e1":
                small_first = int(v.size_bytes)
            manifest = load_manifest(v, store)
            chunking[key] = {
                "target_rows": manifest["chunking"]["target_rows"],
                "row_chunks": len(manifest["row_chunks"]),
            }
            if r == 0 and key == "e":
                small_ok = bool(mlops.load_data(f"customers@v{v.version}").equals(frame))
        log(f"{SCRIPT} ours: rep {r + 1}/{reps} done")
    # Hashing throughput, and unchanged snapshots (the latest version is "d_key": use it).
    fp_times, unchanged_times, unchanged_written = [], [], []
    unchanged_versions: set[int] = set()
    last = modified(df, cols["key"], seed=4)
    objects = Path.cwd() / f"store{reps - 1}" / "objects"
    for _ in range(5 if quick else 7):
        fp_times.append(timed_call(lambda: fingerprint(df)))
        before = tree_bytes(objects)[0]
        t = now()
        v = mlops.snapshot(last, "bench")
        unchanged_times.append(now() - t)
        unchanged_written.append(tree_bytes(objects)[0] - before)
        unchanged_versions.add(int(v.version))
    emit_part(
        {
            "rows": n,
            "reps": reps,
            "frame_bytes": frame_bytes(df),
            "import_ms": ms(import_s),
            "times_ms": {k: [ms(x) for x in v] for k, v in times.items()},
            "added": added,
            "reported_new": reported_new,
            "db_added": db_added,
            "versions": versions,
            "first_size": first_size,
            "small_first_size": small_first,
            "small_ok": small_ok,
            "chunking": chunking,
            "key_columns": key_columns,
            "columns": cols,
            "load_ms": ms(median(load_s)),
            "load_ok": load_ok,
            "fingerprint_ms": ms(median(fp_times)),
            "unchanged_ms": ms(median(unchanged_times)),
            "unchanged_written": max(unchanged_written),
            "n_unchanged": len(unchanged_times),
            "unchanged_versions": sorted(unchanged_versions),
        }
    )


def timed_call(fn: Any) -> float:
    t = now()
    fn()
    return now() - t


# -------------------------------------------------------------------------------- dvc


def _sh(cmd: list[str], cwd: Path) -> None:
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL)


def part_dvc(quick: bool, arg: str | None) -> None:
    n, reps = sizes(quick)
    log(f"{SCRIPT} dvc: building a {n:,} x 20 frame ...")
    df = make_frame(n)
    t0 = now()
    from dvc.repo import Repo

    mod_col, key_col = (arg or ",".join(pick_columns([]))).split(",")
    cols = {"mod": mod_col, "key": key_col}

    import_s = now() - t0
    logging.getLogger("dvc").setLevel(logging.ERROR)
    times: dict[str, list[float]] = {}
    parquet_t: dict[str, list[float]] = {}
    added: dict[str, int] = {}
    file_size: dict[str, int] = {}
    read_s: list[float] = []
    for r in range(reps):
        root = Path.cwd() / f"repo{r}"
        root.mkdir()
        _sh(["git", "init", "-q"], root)
        _sh(["git", "config", "user.email", "bench@example.com"], root)
        _sh(["git", "config", "user.name", "bench"], root)
        dvc = [sys.executable, "-m", "dvc"]
        _sh([*dvc, "init", "-q"], root)
        _sh([*dvc, "config", "core.analytics", "false"], root)
        _sh([*dvc, "config", "core.site_cache_dir", str(root / ".dvc-site-cache")], root)
        cache = root / ".dvc" / "cache"
        path = root / "data.parquet"
        with Repo(str(root)) as repo:
            (root / "warmup.txt").write_text("warm-up\n")
            repo.add(str(root / "warmup.txt"))
            for key, make in steps(df, cols):
                frame = make()
                before = tree_bytes(cache)[0]
                os.sync()
                t = now()
                frame.to_parquet(path)
                t_pq = now()
                repo.add(str(path))
                end = now()
                times.setdefault(key, []).append(end - t)
                parquet_t.setdefault(key, []).append(t_pq - t)
                added[key] = tree_bytes(cache)[0] - before
                file_size[key] = path.stat().st_size
                if r == 0 and key == "d":
                    os.sync()
                    t = now()
                    pd.read_parquet(path)
                    read_s.append(now() - t)
                del frame
            small = root / "customers.parquet"
            for key, make in small_steps():
                frame = make()
                before = tree_bytes(cache)[0]
                os.sync()
                t = now()
                frame.to_parquet(small)
                t_pq = now()
                repo.add(str(small))
                end = now()
                times.setdefault(key, []).append(end - t)
                parquet_t.setdefault(key, []).append(t_pq - t)
                added[key] = tree_bytes(cache)[0] - before
                file_size[key] = small.stat().st_size
        log(f"{SCRIPT} dvc: rep {r + 1}/{reps} done")
    from importlib.metadata import version

    emit_part(
        {
            "rows": n,
            "reps": reps,
            "dvc_version": version("dvc"),
            "import_ms": ms(import_s),
            "times_ms": {k: [ms(x) for x in v] for k, v in times.items()},
            "parquet_ms": {k: [ms(x) for x in v] for k, v in parquet_t.items()},
            "added": added,
            "file_size": file_size,
            "read_ms": ms(median(read_s)),
        }
    )


# ------------------------------------------------------------------------------- main


def _mb(x: int) -> float:
    return round(x / 1e6, 2)


def _kb(x: int) -> float:
    return round(x / 1e3, 1)


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    if args.part == "ours":
        return part_ours(args.quick)
    if args.part == "dvc":
        return part_dvc(args.quick, args.arg)
    started = time.time()
    load_before = os.getloadavg()
    log(f"{SCRIPT}: jupyter_mlops snapshots ...")
    ours = run_part(SCRIPT, "ours", quick=args.quick)
    log(f"{SCRIPT}: DVC adds ...")
    cols = ours["columns"]
    dvc = run_part(SCRIPT, "dvc", quick=args.quick, arg=f"{cols['mod']},{cols['key']}")
    n = ours["rows"]
    size = f"{n / 1e6:g}M×20" if n >= 1_000_000 else f"{n // 1000}k×20"
    first = ours["first_size"]
    labels = {
        "a": f"data 1a. first add ({size})",
        "b": "data 1b. unchanged add",
        "c": "data 1c. 1% rows appended",
        "d": f"data 1d. 1% rows modified in one column ({cols['mod']}"
        + (", a chunking key too)" if cols["mod"] in ours["key_columns"] else ")"),
        "d_key": f"data 1d'. same, in a chunking-key column ({cols['key']})",
        "e": f"data 1e. {SMALL_ROWS // 1000}k×8 frame (text, categorical): 1% rows appended",
    }
    limits = {"c": 0.03, "d": 0.10, "d_key": 0.10, "e": 0.15}
    small_first = ours["small_first_size"]
    rows = []
    for key, label in labels.items():
        o_ms = median(ours["times_ms"][key])
        d_ms = median(dvc["times_ms"][key])
        o_add, d_add = ours["added"][key], dvc["added"][key]
        base = small_first if key == "e" else first
        size_of, unit = (_kb, "KB") if key == "e" else (_mb, "MB")
        share = o_add / base if base else float("nan")
        d_share = d_add / base if base else float("nan")
        note = (
            f"added: ours {size_of(o_add)} {unit} ({share:.2%} of v1), DVC {size_of(d_add)} "
            f"{unit} ({d_share:.0%} of our v1); DVC parquet write "
            f"{median(dvc['parquet_ms'][key]):.0f} ms of it"
        )
        rows.append(
            row(f"{label} time", round(o_ms, 3), round(d_ms, 3), target="(info)", note=note)
        )
        if key == "b":
            rows.append(
                row(
                    f"{label} storage",
                    _mb(o_add),
                    _mb(d_add),
                    unit="MB",
                    target="0 B",
                    ok=o_add == 0,
                )
            )
        elif key in limits:
            rows.append(
                row(
                    f"{label} storage",
                    size_of(o_add),
                    size_of(d_add),
                    unit=unit,
                    target=f"≤{limits[key]:.0%} of v1",
                    ok=share <= limits[key],
                    note=f"{share:.2%} of v1 ({size_of(base)} {unit})",
                )
            )
        else:
            rows.append(row(f"{label} storage", _mb(o_add), _mb(d_add), unit="MB", target="(info)"))
    gbps = ours["frame_bytes"] / (ours["fingerprint_ms"] / 1000) / 1e9
    rows.append(
        row(
            "data: content hashing throughput GB/s",
            round(gbps, 2),
            None,
            unit="GB/s",
            target="≥1.5 GB/s",
            ok=gbps >= 1.5,
        )
    )
    limit_ms = ours["fingerprint_ms"] + 50
    rows.append(
        row(
            "data: unchanged snapshot",
            ours["unchanged_ms"],
            None,
            target=f"≤ hashing + 50 ms = {limit_ms:.0f} ms, 0 B",
            ok=ours["unchanged_ms"] <= limit_ms and ours["unchanged_written"] == 0,
            note=f"hashing {ours['fingerprint_ms']:.0f} ms; "
            f"bytes written {ours['unchanged_written']}",
        )
    )
    rows.append(
        row(
            "data: load v4 (ours load_data vs pd.read_parquet)",
            ours["load_ms"],
            dvc["read_ms"],
            target="(info)",
            note=f"round trip equal: {ours['load_ok']}",
        )
    )
    load_after = os.getloadavg()
    notes = [
        "column 'mlflow' holds DVC here; ratio = DVC / jupyter_mlops (time or bytes), higher "
        "is better for us",
        f"{n:,} rows x 20 columns, {_mb(ours['frame_bytes'])} MB in memory; our first version "
        f"{_mb(first)} MB of objects, DVC's parquet file {_mb(dvc['file_size']['a'])} MB "
        f"(snappy); DVC {dvc['dvc_version']} via its Python API (dvc.repo.Repo.add, in-process), "
        "wall time = df.to_parquet + Repo.add",
        "times are medians of "
        f"{ours['reps']} fresh-store sequences per tool (runs: ours "
        + ", ".join(f"{k}={v}" for k, v in ours["times_ms"].items())
        + "; dvc "
        + ", ".join(f"{k}={v}" for k, v in dvc["times_ms"].items())
        + " ms)",
        "added bytes: ours = growth of <store>/objects (apparent size; DataVersion.new_bytes "
        "reported "
        + ", ".join(f"{k}={_mb(v)} MB" for k, v in ours["reported_new"].items())
        + "); metadata db grew "
        + ", ".join(f"{k}={v // 1024} KiB" for k, v in ours["db_added"].items())
        + "; DVC = growth of .dvc/cache",
        "added MB ours / DVC (share of our v1), and DVC's to_parquet share of its time: "
        + "; ".join(
            f"{k} {_mb(ours['added'][k])} / {_mb(dvc['added'][k])} MB "
            f"({ours['added'][k] / first:.2%} / {dvc['added'][k] / first:.0%}), parquet "
            f"{median(dvc['parquet_ms'][k]):.0f} of {median(dvc['times_ms'][k]):.0f} ms"
            for k in labels
            if k != "e"
        ),
        f"versions: {ours['versions']} (b must equal a's version); chunk key columns "
        f"{ours['key_columns']}",
        f"unchanged snapshot and fingerprint: medians of {ours['n_unchanged']} calls (versions "
        f"returned {ours['unchanged_versions']}, objects/ growth measured on disk; "
        "DataVersion.new_bytes of an unchanged snapshot repeats the existing version's figure)",
        f"not timed: import jupyter_mlops {ours['import_ms']:.0f} ms, from dvc.repo import Repo "
        f"{dvc['import_ms']:.0f} ms; store creation, git init / dvc init",
        f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} (2-core shared box)",
    ]
    big, small = ours["chunking"]["a"], ours["chunking"]["e1"]
    notes.append(
        f"row-chunks (sized for the frame): {n:,} rows in {big['row_chunks']} chunks of "
        f"~{big['target_rows']:,} rows; the {SMALL_ROWS:,}-row frame in "
        f"{small['row_chunks']} of ~{small['target_rows']:,} (its first version "
        f"{_kb(small_first)} KB, DVC's parquet {_kb(dvc['file_size']['e1'])} KB; appended "
        f"version loads back equal: {ours['small_ok']})"
    )
    if n < 1_000_000:
        notes.append(
            f"--quick: the frame is only {big['row_chunks']} row-chunks, so the append and "
            "modification shares are coarse; judge them at full size"
        )
    finish(SCRIPT, rows, notes, time.time() - started)
    return None


if __name__ == "__main__":
    sys.exit(main())
