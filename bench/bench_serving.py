"""Benchmark 7: model serving: our deployment (``mlops.deploy``) side by side with
``mlflow models serve --env-manager local`` on the same LogisticRegression, plus
``mlops.predict_batch`` against a bare ``model.predict``.

* Model: ``LogisticRegression(max_iter=1000)`` on the first 10 columns of breast cancer
  (standardized), fitted the same way in both parts (a checksum of its probabilities is
  compared). Ours: fitted in ``mlops.track``, registered, aliased ``churn@production`` and
  deployed with the inference log ON. MLflow: ``mlflow.sklearn.save_model`` (with an
  inferred signature) served by ``mlflow models serve -m DIR --env-manager local``.
* 1. Latency: sequential 1-row requests over one kept-alive ``http.client`` connection:
  ours ``/v2/models/churn/infer`` and ``/invocations``, MLflow's ``/invocations``; p50 and
  p99 per round of 1,000 requests (rounds interleaved between the servers), median of the
  rounds. Also an empty GET (``/v2/health/live`` vs ``/ping``), the HTTP floor.
* 2. Throughput: 8 kept-alive connections from 2 client processes (4 threads each, raw
  sockets, so the client's GIL is not the limit) for a fixed time, 1-row and 100-row bodies.
  After each run the server is waited on until idle (ours may still be writing the
  inference log); "sustained" counts that time too.
* 3. Start-up: ``mlops.deploy()`` until it returns (ready) vs starting ``mlflow models
  serve`` until ``/ping`` answers 200.
* 4. Memory: VmRSS summed over the server's process tree (and PSS) after warm-up, after the
  latency test and after the throughput runs; ours also the store's warm launcher that
  deployments are forked from (when the package has one).
* 5. ``mlops.predict_batch`` on 1,000,000 rows x 10 float columns (``--quick`` 100,000),
  logging on, first call (new data snapshotted) and again on the same frame (deduplicated),
  vs ``model.predict(frame)``; for the LogisticRegression and a RandomForest.

Targets: latency <= 1/4 of MLflow's p50 and p99 (p50 < 2 ms); throughput >= 5x MLflow;
server RSS < 200 MB; predict_batch <= 1.5x model.predict.

Client and servers share this machine (2 cores): the load generator takes CPU from the
server, the same for both. Every server started here is stopped in ``finally`` (process
groups), and a last sweep kills any leftover process carrying this run's marker.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from _common import (
    BENCH_DIR,
    PART_PREFIX,
    clean_env,
    emit_part,
    finish,
    log,
    median,
    ms,
    now,
    parser,
    row,
    run_part,
    temp_dir,
)

SCRIPT = "bench_serving.py"
MODEL = "churn"
REF = "churn@production"
HOST = "127.0.0.1"
MARK = "MLOPS_BENCH_SERVING"  # env marker on every process this run starts
JSON_HEADERS = {"Content-Type": "application/json"}


# -- the model and its data (parts only) ----------------------------------------------------
def _data() -> tuple[Any, Any]:
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame
    X = frame.iloc[:, :10]
    X = (X - X.mean()) / X.std()
    X.columns = [c.replace(" ", "_") for c in X.columns]
    return X, frame.target


def _fit_logreg(X: Any, y: Any) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=1000).fit(X, y)


def _checksum(model: Any, X: Any) -> float:
    return round(float(model.predict_proba(X)[:, 1].sum()), 9)


def part_mlflow_model(quick: bool, out_dir: str) -> None:
    """Save the model as an MLflow model folder (the server is started by the parent)."""
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    X, y = _data()
    model = _fit_logreg(X, y)
    import mlflow.sklearn
    from mlflow.models import infer_signature

    t = now()
    mlflow.sklearn.save_model(model, out_dir, signature=infer_signature(X, model.predict(X)))
    emit_part({"checksum": _checksum(model, X), "save_ms": ms(now() - t)})


def part_ours_deploy(quick: bool, arg: str) -> None:
    """Track, register, alias; time deploy/undeploy cycles and leave the last one running.

    The first deploy of a store is cold (it also starts the store's warm launcher, when the
    package has one, and waits for its imports); the next ones are forks of that launcher.
    ``MLOPS_LAUNCHER=0`` cycles time a plain new interpreter per deployment.
    """
    warm_reps, plain_reps = (int(x) for x in arg.split(","))
    X, y = _data()
    import jupyter_mlops as mlops

    with mlops.track("fit", experiment="bench") as run:
        model = _fit_logreg(X, y)
    mv = mlops.register(run.run_id, MODEL)
    mlops.set_alias(MODEL, "production", mv.version)
    times: dict[str, list[float]] = {"cold": [], "plain": [], "warm": [], "undeploy": []}
    phases = ["cold"] + ["plain"] * plain_reps + ["warm"] * warm_reps
    d = None
    try:
        for i, phase in enumerate(phases):
            if phase == "plain":
                os.environ["MLOPS_LAUNCHER"] = "0"
            else:
                os.environ.pop("MLOPS_LAUNCHER", None)
            t = now()
            d = mlops.deploy(REF)
            times[phase].append(now() - t)
            if i < len(phases) - 1:
                t = now()
                mlops.undeploy(REF)
                times["undeploy"].append(now() - t)
                d = None
    except BaseException:
        if d is not None:
            mlops.undeploy(REF)
        raise
    assert d is not None
    emit_part(
        {
            "checksum": _checksum(model, X),
            "port": d.port,
            "pid": d.pid,
            "url": d.url,
            "infer_path": f"/v2/models/{MODEL}/infer",
            **{f"{k}_ms": [ms(s) for s in v] for k, v in times.items()},
            "columns": list(X.columns),
            "rows": X.head(200).to_numpy().tolist(),
        }
    )


def part_ours_stop(quick: bool) -> None:
    """Undeploy (flushes the inference log), count what the log holds, stop the launcher."""
    import sqlalchemy as sa

    import jupyter_mlops as mlops
    from jupyter_mlops.store import current_store, schema

    t = now()
    stopped = mlops.undeploy(REF)
    took = now() - t
    store = current_store()
    segments = schema.inference_segments  # online predictions live in Parquet segments
    with store.read() as conn:
        entries, rows = conn.execute(
            sa.select(sa.func.sum(segments.c.requests), sa.func.sum(segments.c.rows)).where(
                segments.c.model_name == MODEL
            )
        ).one()
    launcher = None
    try:
        from jupyter_mlops.serving.launcher import stop_launcher

        launcher = stop_launcher(store.home)
    except ImportError:
        pass
    emit_part(
        {
            "undeploy_ms": ms(took),
            "status": [d.status for d in stopped],
            "logged_requests": int(entries or 0),
            "logged_rows": int(rows or 0),
            "launcher_pid": launcher,
        }
    )


def part_batch(quick: bool, kind: str) -> None:
    """predict_batch (first call on new data, then the same frame again) vs model.predict."""
    import numpy as np
    import pandas as pd

    n = 100_000 if quick else 1_000_000
    first_reps = 2 if quick else 3
    X, y = _data()
    import jupyter_mlops as mlops

    with mlops.track("fit", experiment="bench") as run:
        if kind == "forest":
            from sklearn.ensemble import RandomForestClassifier

            model = RandomForestClassifier(n_estimators=100, max_depth=8, random_state=0)
            model.fit(X, y)
        else:
            model = _fit_logreg(X, y)
    mv = mlops.register(run.run_id, MODEL)
    mlops.set_alias(MODEL, "production", mv.version)

    def frame(seed: int, rows: int = n) -> Any:
        values = np.random.default_rng(seed).standard_normal((rows, X.shape[1]))
        return pd.DataFrame(values, columns=X.columns)

    mlops.predict_batch(REF, frame(999, 2000), progress=False)  # imports, model cache
    frames = [frame(seed) for seed in range(first_reps)]
    predict_s = []
    for _ in range(first_reps + 2):
        t = now()
        model.predict(frames[0])
        predict_s.append(now() - t)
    first_s, again_s, nolog_s = [], [], []
    for f in frames:  # each frame is new data: its snapshot is written
        t = now()
        out = mlops.predict_batch(REF, f, progress=False)
        first_s.append(now() - t)
    assert (out["prediction"].to_numpy() == model.predict(frames[-1])).all()
    for _ in range(3):  # the same frame again: its snapshot is deduplicated
        t = now()
        out = mlops.predict_batch(REF, frames[-1], progress=False)
        again_s.append(now() - t)
    for _ in range(2):
        t = now()
        mlops.predict_batch(REF, frames[0], progress=False, log=False)
        nolog_s.append(now() - t)
    from jupyter_mlops.data.versions import snapshot

    snapshot_s = []
    for seed in (12345, 12346):  # what the first call logs, alone: a new frame's snapshot
        f = frame(seed)
        t = now()
        snapshot(f, f"inference/{MODEL}/inputs", reuse_any=True)
        snapshot_s.append(now() - t)
    emit_part(
        {
            "kind": kind,
            "rows": n,
            "frame_mb": round(frames[0].memory_usage(deep=True).sum() / 1e6, 1),
            "predict_ms": ms(median(predict_s)),
            "first_ms": ms(median(first_s)),
            "again_ms": ms(median(again_s)),
            "nolog_ms": ms(median(nolog_s)),
            "snapshot_ms": ms(median(snapshot_s)),
            "first_reps": len(first_s),
            "input_version": out.attrs.get("input_version"),
        }
    )


# -- HTTP clients (stdlib only: the parent and the load processes import nothing heavy) -----
def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _get_status(port: int, path: str, timeout: float = 1.0) -> int | None:
    import http.client

    try:
        conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
        conn.request("GET", path)
        status = conn.getresponse().status
        conn.close()
        return status
    except (OSError, http.client.HTTPException):
        return None


def _oip_body(columns: list[str], rows: list[list[float]]) -> str:
    tensors = [
        {"name": c, "shape": [len(rows)], "datatype": "FP64", "data": [r[j] for r in rows]}
        for j, c in enumerate(columns)
    ]
    return json.dumps({"inputs": tensors})


def _split_body(columns: list[str], rows: list[list[float]]) -> str:
    return json.dumps({"dataframe_split": {"columns": columns, "data": rows}})


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def _latencies(
    port: int, method: str, path: str, bodies: list[str] | None, n: int, warm: int
) -> list[float]:
    """Seconds per request, ``n`` sequential requests on one kept-alive connection."""
    import http.client

    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    out = []
    try:
        for i in range(warm + n):
            body = bodies[i % len(bodies)] if bodies else None
            t = now()
            conn.request(method, path, body, JSON_HEADERS if body else {})
            resp = conn.getresponse()
            resp.read()
            took = now() - t
            if resp.status != 200:
                raise RuntimeError(f"{method} {path} on port {port} answered {resp.status}")
            if i >= warm:
                out.append(took)
    finally:
        conn.close()
    return out


def _roundtrip(sock: socket.socket, request: bytes) -> int:
    """Send one request and read its response (Content-Length framed); the status."""
    sock.sendall(request)
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        data += chunk
        end = data.find(b"\r\n\r\n")
        if end >= 0:
            break
    head = data[:end].lower()
    i = head.find(b"content-length:")
    if i < 0:
        raise ConnectionError("a response without Content-Length")
    j = head.find(b"\r\n", i)
    length = int(head[i + 15 : j if j >= 0 else len(head)])
    need = end + 4 + length
    while len(data) < need:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        data += chunk
    return int(data[9:12])


def part_load(quick: bool, arg: str) -> None:
    """One load process: ``conns`` threads, each a kept-alive raw socket, until the deadline."""
    cfg = json.loads(arg)
    bodies = json.loads(Path(cfg["body_file"]).read_text())
    requests = [
        (
            f"POST {cfg['path']} HTTP/1.1\r\nHost: {HOST}:{cfg['port']}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(b.encode())}\r\n\r\n{b}"
        ).encode()
        for b in bodies
    ]
    start_at, end_at = cfg["start_at"], cfg["start_at"] + cfg["duration"]
    counts = [0] * cfg["conns"]
    errors = [0] * cfg["conns"]

    def worker(k: int) -> None:
        sock = socket.create_connection((HOST, cfg["port"]), timeout=30)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            for i in range(3):  # connection warm
                _roundtrip(sock, requests[(k + i) % len(requests)])
            while time.time() < start_at:
                time.sleep(0.001)
            i = k
            while True:
                status = _roundtrip(sock, requests[i % len(requests)])
                if time.time() > end_at:
                    break
                if status == 200:
                    counts[k] += 1
                else:
                    errors[k] += 1
                i += 1
        finally:
            sock.close()

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(cfg["conns"])]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    emit_part({"count": sum(counts), "errors": sum(errors)})


def _throughput(
    port: int, path: str, body_file: Path, duration: float, procs: int = 2, conns: int = 4
) -> tuple[float, int]:
    """Requests/s over ``procs`` x ``conns`` connections for ``duration`` seconds; errors."""
    start_at = time.time() + 1.5  # the processes start, connect and warm first
    arg = json.dumps(
        {
            "port": port,
            "path": path,
            "body_file": str(body_file),
            "conns": conns,
            "start_at": start_at,
            "duration": duration,
        }
    )
    env = {**os.environ, MARK: str(body_file.parent)}
    cmd = [sys.executable, str(BENCH_DIR / SCRIPT), "--part", "load", "--arg", arg]
    children = [
        subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env) for _ in range(procs)
    ]
    total, errors = 0, 0
    try:
        for child in children:
            out, _ = child.communicate(timeout=duration + 60)
            line = next(
                (ln for ln in reversed(out.splitlines()) if ln.startswith(PART_PREFIX)), None
            )
            if line is None:
                raise RuntimeError(f"a load process failed (exit {child.returncode})")
            data = json.loads(line[len(PART_PREFIX) :])
            total += data["count"]
            errors += data["errors"]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    return total / duration, errors


# -- process trees -----------------------------------------------------------------------------
def _proc_table() -> dict[int, tuple[int, int]]:
    """pid -> (ppid, pgid) for every process we can read."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                fields = fh.read().rsplit(b")", 1)[1].split()
            table[int(entry)] = (int(fields[1]), int(fields[2]))
        except (OSError, IndexError, ValueError):
            continue
    return table


def _tree(root: int) -> list[int]:
    """``root``, its descendants and its process group."""
    table = _proc_table()
    found = {p for p, (_, pgid) in table.items() if pgid == root}
    if root in table:
        found.add(root)
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        for p, (ppid, _) in table.items():
            if ppid == parent and p not in found:
                found.add(p)
                frontier.append(p)
    return sorted(found)


def _kb(path: str, key: str) -> int:
    try:
        with open(path) as fh:
            for line in fh:
                if line.startswith(key):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _memory(root: int, tree: bool = True) -> dict[str, Any]:
    """VmRSS and PSS (MB) summed over a server's process tree, and its process count."""
    pids = _tree(root) if tree else [root]
    rss = [_kb(f"/proc/{p}/status", "VmRSS:") for p in pids]
    pss = sum(_kb(f"/proc/{p}/smaps_rollup", "Pss:") for p in pids)
    return {
        "rss_mb": round(sum(rss) / 1024, 1),
        "pss_mb": round(pss / 1024, 1),
        "max_rss_mb": round(max(rss, default=0) / 1024, 1),
        "procs": len(pids),
    }


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def _launcher_of(pid: int) -> int | None:
    """The warm launcher a deployment was forked from (its parent), if any."""
    ppid = _proc_table().get(pid, (0, 0))[0]
    return ppid if ppid > 1 and "serving.launcher" in _cmdline(ppid) else None


def _server_memory(ours_pid: int, mlflow_pid: int) -> dict[str, Any]:
    launcher = _launcher_of(ours_pid)
    return {
        "ours": _memory(ours_pid),
        "launcher": _memory(launcher, tree=False) if launcher else None,
        "mlflow": _memory(mlflow_pid),
    }


def _cpu_seconds(root: int) -> float:
    """User + system CPU time of a process tree so far."""
    total = 0
    for pid in _tree(root):
        try:
            with open(f"/proc/{pid}/stat", "rb") as fh:
                fields = fh.read().rsplit(b")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            continue
    return total / os.sysconf("SC_CLK_TCK")


def _wait_idle(root: int, window: float = 0.5, timeout: float = 120.0) -> float:
    """Seconds until a server is idle (< 4% of a core over ``window``): the backlog left."""
    t0 = now()
    last = _cpu_seconds(root)
    while now() - t0 < timeout:
        time.sleep(window)
        cpu = _cpu_seconds(root)
        if cpu - last < 0.04 * window:
            return max(0.0, now() - t0 - window)
        last = cpu
    return now() - t0


def _kill_group(pid: int, timeout: float = 15.0) -> None:
    """SIGTERM a process group, SIGKILL what is left after ``timeout``."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _tree(pid):
        time.sleep(0.05)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _sweep(marker: str) -> list[str]:
    """Kill (by pid) any process left over that carries this run's marker in its env."""
    needle = f"{MARK}={marker}".encode()
    killed = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as fh:
                if needle not in fh.read().split(b"\0"):
                    continue
            cmd = _cmdline(int(entry))
            os.kill(int(entry), signal.SIGKILL)
            killed.append(f"{entry} {cmd[-80:]}")
        except (OSError, ValueError):
            continue
    return killed


# -- the MLflow server -------------------------------------------------------------------------
class MlflowServer:
    """``mlflow models serve`` in its own session; ``start`` returns seconds until /ping."""

    def __init__(self, model_dir: Path, work: Path, marker: str):
        self.model_dir = model_dir
        self.work = work
        self.marker = marker
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    def start(self, timeout: float = 180) -> float:
        self.port = _free_port()
        env = clean_env(self.work)
        env.pop("MLOPS_HOME", None)
        env[MARK] = self.marker
        bindir = str(Path(sys.executable).parent)  # as in an activated venv: uvicorn on PATH
        env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
        cmd = [
            str(Path(bindir) / "mlflow"),
            "models",
            "serve",
            "-m",
            str(self.model_dir),
            "--env-manager",
            "local",
            "-p",
            str(self.port),
            "-h",
            HOST,
        ]
        logfile = open(self.work / "mlflow-serve.log", "ab")  # noqa: SIM115
        t = now()
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=logfile,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=self.work,
            start_new_session=True,
        )
        logfile.close()
        while _get_status(self.port, "/ping") != 200:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mlflow models serve exited:\n{self.tail()}")
            if now() - t > timeout:
                raise RuntimeError(f"mlflow models serve not ready after {timeout} s")
            time.sleep(0.03)
        return now() - t

    def tail(self) -> str:
        try:
            return "\n".join((self.work / "mlflow-serve.log").read_text().splitlines()[-15:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is not None:
            _kill_group(self.proc.pid)
            self.proc.wait(10)
            self.proc = None


# -- the orchestration -------------------------------------------------------------------------
def _jitter(n: int = 1000) -> tuple[float, float]:
    """p50 and p99 (ms) of a fixed ~1 ms pure-Python loop: how noisy this machine is."""
    times = []
    for _ in range(n):
        t = now()
        x = 0
        for j in range(12_000):
            x += j
        times.append(now() - t)
    return _percentile(times, 0.5) * 1000, _percentile(times, 0.99) * 1000


def _serving(args: Any, shared: Path, notes: list[str]) -> dict[str, Any]:
    quick = args.quick
    marker = str(shared)
    store = shared / "store"
    (shared / "mlflow").mkdir()
    extra = {MARK: marker, "MLOPS_HOME": str(store)}
    res: dict[str, Any] = {}

    log(f"{SCRIPT}: saving the MLflow model ...")
    mlf_model = run_part(SCRIPT, "mlflow_model", quick=quick, arg=str(shared / "mlmodel"))
    deploy_arg = "2,1" if quick else "4,2"  # warm launcher forks, plain interpreters
    start_reps = 2 if quick else 3
    log(f"{SCRIPT}: mlops.deploy cycles ...")
    ours_pid = None
    mlflow = MlflowServer(shared / "mlmodel", shared / "mlflow", marker)
    try:
        ours = run_part(
            SCRIPT, "ours_deploy", quick=quick, arg=deploy_arg, cwd=shared, env_extra=extra
        )
        ours_pid = ours["pid"]
        res["ours"] = ours
        res["same_model"] = ours["checksum"] == mlf_model["checksum"]
        log(f"{SCRIPT}: mlflow models serve x {start_reps} ...")
        starts = []
        for i in range(start_reps):
            starts.append(mlflow.start())
            if i < start_reps - 1:
                mlflow.stop()
        res["mlflow_start_ms"] = [ms(s) for s in starts]

        columns, rows = ours["columns"], ours["rows"]
        oip1 = [_oip_body(columns, [r]) for r in rows]
        split1 = [_split_body(columns, [r]) for r in rows]
        oip100 = [_oip_body(columns, rows[k : k + 100]) for k in (0, 50, 100)]
        split100 = [_split_body(columns, rows[k : k + 100]) for k in (0, 50, 100)]
        targets = {
            "ours_v2": (ours["port"], ours["infer_path"], oip1, oip100),
            "ours_inv": (ours["port"], "/invocations", split1, split100),
            "mlflow_inv": (mlflow.port, "/invocations", split1, split100),
        }
        # warm-up: the same traffic shape as the test, then memory
        for port, path, b1, _ in targets.values():
            _latencies(port, "POST", path, b1, 300, 0)
        res["mem_warm"] = _server_memory(ours_pid, mlflow.proc.pid)

        rounds = 1 if quick else 3
        n = 300 if quick else 1000
        log(f"{SCRIPT}: latency, {rounds} round(s) x {n} requests per endpoint ...")
        lat: dict[str, dict[str, list[float]]] = {}
        floor_targets = {
            "ours_live": (ours["port"], "/v2/health/live"),
            "mlflow_ping": (mlflow.port, "/ping"),
        }
        for r in range(rounds):
            order = list(targets) + list(floor_targets)
            order = order[r % len(order) :] + order[: r % len(order)]
            for key in order:
                if key in targets:
                    port, path, b1, _ = targets[key]
                    samples = _latencies(port, "POST", path, b1, n, 50)
                else:
                    port, path = floor_targets[key]
                    samples = _latencies(port, "GET", path, None, n, 50)
                got = lat.setdefault(key, {"p50": [], "p99": [], "mean": []})
                got["p50"].append(_percentile(samples, 0.5))
                got["p99"].append(_percentile(samples, 0.99))
                got["mean"].append(sum(samples) / len(samples))
        res["latency"] = {k: {q: ms(median(v)) for q, v in got.items()} for k, got in lat.items()}
        res["latency_rounds"] = rounds
        res["latency_n"] = n
        res["mem_after_latency"] = _server_memory(ours_pid, mlflow.proc.pid)

        duration = 2.0 if quick else 5.0
        reps = 1 if quick else 3
        log(f"{SCRIPT}: throughput, 8 connections, {reps} x {duration:g} s per configuration ...")
        tput: dict[str, list[float]] = {}
        drains: dict[str, list[float]] = {}
        sustained: dict[str, list[float]] = {}
        errors = 0
        _wait_idle(ours_pid)
        for rep in range(reps):
            for size in (1, 100):
                keys = list(targets)
                keys = keys[rep % len(keys) :] + keys[: rep % len(keys)]
                for key in keys:
                    port, path, b1, b100 = targets[key]
                    body_file = shared / f"bodies-{key}-{size}.json"
                    if not body_file.exists():
                        body_file.write_text(json.dumps(b1 if size == 1 else b100))
                    rps, errs = _throughput(port, path, body_file, duration)
                    # work left when the clients stop (ours: the inference log backlog)
                    server = ours_pid if key.startswith("ours") else mlflow.proc.pid
                    drain = _wait_idle(server)
                    tput.setdefault(f"{key}_{size}", []).append(rps)
                    drains.setdefault(f"{key}_{size}", []).append(drain)
                    sustained.setdefault(f"{key}_{size}", []).append(
                        rps * duration / (duration + drain)
                    )
                    errors += errs
        res["throughput"] = {k: round(median(v), 1) for k, v in tput.items()}
        res["drain_s"] = {k: round(median(v), 2) for k, v in drains.items()}
        res["sustained"] = {k: round(median(v), 1) for k, v in sustained.items()}
        res["throughput_reps"] = reps
        res["throughput_s"] = duration
        res["throughput_errors"] = errors
        res["mem_after_load"] = _server_memory(ours_pid, mlflow.proc.pid)
    finally:
        try:
            mlflow.stop()
            if ours_pid is not None:
                try:
                    res["stop"] = run_part(
                        SCRIPT, "ours_stop", quick=quick, cwd=shared, env_extra=extra
                    )
                finally:
                    _kill_group(ours_pid, timeout=2)
        finally:
            res["store_mb"] = round(
                sum(f.stat().st_size for f in store.glob("mlops.db*") if f.is_file()) / 1e6, 1
            )
            left = _sweep(marker)
            if left:
                notes.append(f"killed leftover process(es) after the serving tests: {left}")
    return res


def _rps_row(name: str, ours: float, mlf: float, target: float) -> dict[str, Any]:
    r = row(
        name,
        ours,
        mlf,
        unit="req/s",
        target=f"≥{target:g}×",
        ok=ours >= target * mlf,
        note="ratio = ours/MLflow throughput",
    )
    r["ratio"] = round(ours / mlf, 2) if mlf else None
    return r


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    parts = {
        "mlflow_model": lambda: part_mlflow_model(args.quick, args.arg),
        "ours_deploy": lambda: part_ours_deploy(args.quick, args.arg),
        "ours_stop": lambda: part_ours_stop(args.quick),
        "batch": lambda: part_batch(args.quick, args.arg),
        "load": lambda: part_load(args.quick, args.arg),
    }
    if args.part in parts:
        return parts[args.part]()
    started = time.time()
    notes: list[str] = []
    jitter = _jitter()
    with temp_dir("serving") as shared:
        res = _serving(args, shared, notes)
    batches = {}
    for kind in ("logreg", "forest"):
        log(f"{SCRIPT}: predict_batch ({kind}) ...")
        batches[kind] = run_part(
            SCRIPT, "batch", quick=args.quick, arg=kind, env_extra={"TQDM_DISABLE": "1"}
        )

    lat, tp = res["latency"], res["throughput"]
    mlf_lat = lat["mlflow_inv"]
    rows = []
    for key, label in (("ours_v2", "/v2 infer"), ("ours_inv", "/invocations")):
        o = lat[key]
        rows.append(
            row(
                f"serve 1. p50 1-row, ours {label} vs MLflow /invocations",
                o["p50"],
                mlf_lat["p50"],
                target="≤1/4 of MLflow, < 2 ms",
                ok=o["p50"] * 4 <= mlf_lat["p50"] and o["p50"] < 2,
            )
        )
        rows.append(
            row(
                f"serve 1b. p99 1-row, ours {label} vs MLflow /invocations",
                o["p99"],
                mlf_lat["p99"],
                target="≤1/4 of MLflow",
                ok=o["p99"] * 4 <= mlf_lat["p99"],
            )
        )
    rows.append(
        row(
            "serve 1c. p50 empty GET (/v2/health/live vs /ping)",
            lat["ours_live"]["p50"],
            lat["mlflow_ping"]["p50"],
            target="(info)",
        )
    )
    for size in (1, 100):
        for key, label in (("ours_v2", "/v2 infer"), ("ours_inv", "/invocations")):
            rows.append(
                _rps_row(
                    f"serve 2. throughput {size}-row, 8 conns, ours {label}",
                    tp[f"{key}_{size}"],
                    tp[f"mlflow_inv_{size}"],
                    5,
                )
            )
    for size in (1, 100):
        r = row(
            f"serve 2b. sustained {size}-row /v2 infer incl. the log backlog after the run",
            res["sustained"][f"ours_v2_{size}"],
            res["sustained"][f"mlflow_inv_{size}"],
            unit="req/s",
            target="(info)",
            note=f"ours busy {res['drain_s'][f'ours_v2_{size}']:.1f} s after the clients stop",
        )
        mlf = res["sustained"][f"mlflow_inv_{size}"]
        r["ratio"] = round(r["ours"] / mlf, 2) if mlf else None
        rows.append(r)
    ours = res["ours"]
    mlf_start = round(median(res["mlflow_start_ms"]), 3)
    for key, label in (
        ("warm_ms", "mlops.deploy() (warm launcher fork)"),
        ("plain_ms", "mlops.deploy() (MLOPS_LAUNCHER=0: new interpreter)"),
        ("cold_ms", "first mlops.deploy() of a store (starts the launcher)"),
    ):
        if ours.get(key):
            rows.append(
                row(
                    f"serve 3. start: {label} vs mlflow models serve → /ping",
                    round(median(ours[key]), 3),
                    mlf_start,
                    target="(info)",
                )
            )
    for key, label in (("mem_warm", "after warm-up"), ("mem_after_latency", "after latency")):
        o, m = res[key]["ours"], res[key]["mlflow"]
        rows.append(
            row(
                f"serve 4. server RSS {label}",
                o["rss_mb"],
                m["rss_mb"],
                unit="MB",
                target="< 200 MB",
                ok=o["rss_mb"] < 200,
                note=f"processes: ours {o['procs']}, MLflow {m['procs']}",
            )
        )
    o, m = res["mem_after_load"]["ours"], res["mem_after_load"]["mlflow"]
    rows.append(
        row(
            "serve 4b. server RSS after the throughput runs",
            o["rss_mb"],
            m["rss_mb"],
            unit="MB",
            target="(info)",
            note="the inference log buffer grows while its writer lags",
        )
    )
    launcher = res["mem_after_latency"].get("launcher")
    if launcher:
        o, m = res["mem_after_latency"]["ours"], res["mem_after_latency"]["mlflow"]
        rows.append(
            row(
                "serve 4c. PSS after latency, ours deployment + its launcher",
                round(o["pss_mb"] + launcher["pss_mb"], 1),
                m["pss_mb"],
                unit="MB",
                target="(info)",
                note="PSS splits the pages a fork shares with its launcher",
            )
        )
    for kind, b in batches.items():
        size = f"{b['rows'] // 1000:,}k" if b["rows"] < 1_000_000 else f"{b['rows'] // 10**6}M"
        for key, label in (("first_ms", "first call"), ("again_ms", "same frame again")):
            ratio = b[key] / b["predict_ms"]
            rows.append(
                row(
                    f"serve 5. predict_batch {size} rows {kind}, {label}",
                    b[key],
                    None,
                    target=f"≤1.5× predict ({b['predict_ms']:.0f} ms)",
                    ok=ratio <= 1.5,
                    note=f"{ratio:.2f}× model.predict",
                )
            )

    mw, ma, ml = res["mem_warm"], res["mem_after_latency"], res["mem_after_load"]
    stop = res.get("stop", {})
    notes += [
        f"same model on both servers (probability checksum equal): {res['same_model']}; "
        "MLflow's model has an inferred signature, so both validate the input",
        f"latency: {res['latency_rounds']} round(s) x {res['latency_n']} sequential requests "
        "per endpoint (after 50 warm-up), one kept-alive http.client connection, rounds "
        "interleaved across servers; p50/p99 are medians over rounds. Means (ms): "
        + ", ".join(f"{k} {v['mean']:.2f}" for k, v in lat.items()),
        "latency p99 (ms): " + ", ".join(f"{k} {v['p99']:.2f}" for k, v in lat.items()),
        f"throughput: 2 client processes x 4 threads (raw sockets, keep-alive), "
        f"{res['throughput_s']:g} s per run, median of {res['throughput_reps']}; "
        f"non-200 answers: {res['throughput_errors']}. req/s: "
        + ", ".join(f"{k} {v:.0f}" for k, v in tp.items())
        + "; seconds the server stayed busy after each run (waited out before the next): "
        + ", ".join(f"{k} {v:.1f}" for k, v in res["drain_s"].items())
        + "; sustained req/s = requests / (run + that time): "
        + ", ".join(f"{k} {v:.0f}" for k, v in res["sustained"].items()),
        f"start-up (ms): mlops.deploy() first of the store {ours['cold_ms']}, with "
        f"MLOPS_LAUNCHER=0 {ours['plain_ms']}, warm {ours['warm_ms']}; undeploy "
        f"{ours['undeploy_ms']}; mlflow models serve → /ping {res['mlflow_start_ms']}",
        f"memory (MB, VmRSS sum / PSS sum / processes): ours warm {mw['ours']['rss_mb']}/"
        f"{mw['ours']['pss_mb']}/{mw['ours']['procs']}, after latency {ma['ours']['rss_mb']}/"
        f"{ma['ours']['pss_mb']}, after load {ml['ours']['rss_mb']}/{ml['ours']['pss_mb']}"
        + (
            f"; plus the store's warm launcher (stays up while deployments run) "
            f"{launcher['rss_mb']}/{launcher['pss_mb']}"
            if launcher
            else ""
        )
        + f"; MLflow warm {mw['mlflow']['rss_mb']}/{mw['mlflow']['pss_mb']}/"
        f"{mw['mlflow']['procs']} (the `mlflow` CLI process stays up as the uvicorn "
        f"worker's parent; largest process {mw['mlflow']['max_rss_mb']}), after latency "
        f"{ma['mlflow']['rss_mb']}, after load {ml['mlflow']['rss_mb']}",
        f"inference log after the run: {stop.get('logged_requests')} requests, "
        f"{stop.get('logged_rows')} rows (logging on); undeploy took "
        f"{stop.get('undeploy_ms')} ms",
        f"machine noise: a fixed pure-Python loop takes p50 {jitter[0]:.2f} ms, p99 "
        f"{jitter[1]:.2f} ms here (no server running), so p99s carry that much noise",
        f"store after the serving tests (inference log included): {res.get('store_mb')} MB "
        "(mlops.db + WAL)",
        "MLflow's uvicorn uses httptools/uvloop too (installed with jupyter_mlops) and writes "
        "its default access log to a file; ours runs with access_log off",
    ]
    for kind, b in batches.items():
        notes.append(
            f"predict_batch {kind}: {b['rows']:,} x 10 float64 ({b['frame_mb']} MB); "
            f"model.predict {b['predict_ms']:.0f} ms, first call (new data, median of "
            f"{b['first_reps']} new frames) {b['first_ms']:.0f} ms, same frame again "
            f"{b['again_ms']:.0f} ms, log=False {b['nolog_ms']:.0f} ms, a snapshot of such a "
            f"frame alone {b['snapshot_ms']:.0f} ms"
        )
    finish(SCRIPT, rows, notes, time.time() - started)


if __name__ == "__main__":
    main()
