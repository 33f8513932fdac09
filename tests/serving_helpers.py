"""Helpers for the serving tests: a registered model and a real uvicorn server on
127.0.0.1 running in a thread."""

from __future__ import annotations

import http.client
import json
import os
import threading
import time
from typing import Any

import numpy as np
import pandas as pd

import jupyter_mlops as mlops

COLUMNS = ["radius", "texture", "perimeter", "area", "smoothness"]


def training_frame() -> tuple[pd.DataFrame, pd.Series]:
    from sklearn.datasets import load_breast_cancer

    x, y = load_breast_cancer(return_X_y=True, as_frame=True)
    x = x.iloc[:, :5].copy()
    x.columns = COLUMNS
    return x, y


def register_churn(versions: int = 2) -> tuple[pd.DataFrame, list[Any]]:
    """Register ``churn`` versions 1..N (LogisticRegression, different C); production → 1."""
    from sklearn.linear_model import LogisticRegression

    x, y = training_frame()
    fitted = []
    for i in range(versions):
        with mlops.track(f"fit {i + 1}") as run:
            model = LogisticRegression(max_iter=2000, C=[1.0, 0.001, 0.1][i % 3]).fit(x, y)
        mlops.register(run.run_id, "churn")
        fitted.append(model)
    mlops.set_alias("churn", "production", 1)
    return x, fitted


def oip_body(frame: pd.DataFrame, **extra: Any) -> dict[str, Any]:
    return {
        "inputs": [
            {"name": c, "shape": [len(frame)], "datatype": "FP64", "data": frame[c].tolist()}
            for c in frame.columns
        ],
        **extra,
    }


class Client:
    """A kept-alive HTTP/1.1 client on 127.0.0.1 that returns (status, headers, body)."""

    def __init__(self, port: int, host: str = "127.0.0.1"):
        self.conn = http.client.HTTPConnection(host, port, timeout=30)

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], Any]:
        headers = dict(headers or {})
        if body is not None and not isinstance(body, bytes | str):
            body = json.dumps(body)
            headers.setdefault("Content-Type", "application/json")
        self.conn.request(method, path, body=body, headers=headers)
        response = self.conn.getresponse()
        raw = response.read()
        ctype = response.getheader("content-type", "")
        data: Any = raw
        if ctype.startswith("application/json"):
            data = json.loads(raw)
        elif ctype.startswith("text/"):
            data = raw.decode()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, data

    def get(self, path: str, **kw: Any) -> tuple[int, dict[str, str], Any]:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> tuple[int, dict[str, str], Any]:
        return self.request("POST", path, body, **kw)

    def close(self) -> None:
        self.conn.close()


class ThreadServer:
    """The serving app under uvicorn in a background thread, on a free port."""

    def __init__(self, app: Any):
        import uvicorn

        from jupyter_mlops.serving.server import bind

        self.sock = bind("127.0.0.1", 0)
        self.port = self.sock.getsockname()[1]
        self.app = app
        config = uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def __enter__(self) -> ThreadServer:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        self.sock.close()

    @property
    def state(self) -> Any:
        return self.app.state.serving


def processes_mentioning(text: str) -> list[int]:
    """Pids whose command line contains ``text`` (to prove nothing is left behind)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                cmd = fh.read().replace(b"\0", b" ").decode(errors="replace")
            with open(f"/proc/{entry}/stat", "rb") as fh:
                state = fh.read().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if text in cmd and state != b"Z" and int(entry) != os.getpid():
            found.append(int(entry))
    return found


def group_members(pgid: int) -> list[int]:
    """Live pids in process group ``pgid`` (a deployment and any workers it started)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                fields = fh.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != b"Z" and int(fields[2]) == pgid:
            found.append(int(entry))
    return found


def predictions(model: Any, frame: pd.DataFrame) -> list[Any]:
    return np.asarray(model.predict(frame)).tolist()


def custom_estimator() -> Any:
    """A fitted estimator of a class outside scikit-learn: skops will not load it untrusted."""
    from sklearn.base import BaseEstimator, ClassifierMixin

    global Threshold

    class Threshold(ClassifierMixin, BaseEstimator):
        def fit(self, x, y):
            self.classes_ = np.unique(y)
            self.n_features_in_ = x.shape[1]
            return self

        def predict(self, x):
            return (np.asarray(x)[:, 0] > 15).astype(int)

    Threshold.__module__ = "tests.serving_helpers"
    Threshold.__qualname__ = "Threshold"
    return Threshold
