"""The deployment's "Try it" curl is a request the model answers: built from the signature
(text as BYTES, integers as INT64, booleans as BOOL) with values from the training data,
then from the newest row served. Run exactly as shown, against a real deployment."""

from __future__ import annotations

import json
import shlex
import time
import urllib.request

import numpy as np
import pandas as pd
import pytest

import jupyter_mlops as mlops
from jupyter_mlops.serving.launcher import stop_launcher

from .serving_helpers import processes_mentioning

pytestmark = pytest.mark.slow


def run_curl(command: str, token: str | None = None) -> tuple[int, dict]:
    """Send the request a curl command describes (URL, -H headers, -d body) with urllib,
    expanding ``$MLOPS_TOKEN`` as the shell would."""
    args = shlex.split(command)
    assert args[:2] == ["curl", "-s"]
    url, headers, body = args[2], {}, None
    rest = args[3:]
    while rest:
        flag, value, *rest = rest
        if flag == "-H":
            key, _, text = value.partition(": ")
            headers[key] = text.replace("$MLOPS_TOKEN", token or "")
        elif flag == "-d":
            body = value.encode()
        else:
            raise AssertionError(f"unexpected curl argument {flag}")
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def contracts(n: int = 600) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(1)
    x = pd.DataFrame(
        {
            "plan": rng.choice(["basic", "plus", "pro"], n, p=[0.2, 0.5, 0.3]),
            "region": rng.choice(["north", "south"], n),
            "tenure": rng.integers(1, 72, n),
            "calls": rng.normal(3, 1, n).round(2),
            "paperless": rng.random(n) < 0.7,
        }
    )
    y = pd.Series((x["tenure"] < 12) | (x["plan"] == "basic"), name="churned").astype(int)
    return x, y


@pytest.fixture
def text_model(store_dir):
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    x, y = contracts()
    prep = ColumnTransformer(
        [
            ("cat", OneHotEncoder(), ["plan", "region"]),  # an unknown category is an error
            ("num", StandardScaler(), ["tenure", "calls"]),
            ("flag", "passthrough", ["paperless"]),
        ]
    )
    with mlops.track("contracts") as run:
        model = make_pipeline(prep, LogisticRegression(max_iter=1000)).fit(x, y)
    mlops.register(run.run_id, "contracts")
    yield x, model
    for d in mlops.deployments().itertuples():
        mlops.undeploy(d.deployment_id)
    stop_launcher(store_dir)
    assert processes_mentioning(str(store_dir)) == []


def test_the_try_it_curl_of_a_model_with_text_columns_is_answered(text_model):
    x, model = text_model
    d = mlops.deploy("contracts@latest", token="tok-123")
    command = d.curl()
    assert command in d._repr_html_().replace("&#x27;", "'").replace("&quot;", '"')
    body = json.loads(shlex.split(command)[-1])
    tensors = {t["name"]: t for t in body["inputs"]}
    assert {n: t["datatype"] for n, t in tensors.items()} == {
        "plan": "BYTES",
        "region": "BYTES",
        "tenure": "INT64",
        "calls": "FP64",
        "paperless": "BOOL",
    }
    # before any traffic: typical training values (the most frequent category, the mean)
    assert tensors["plan"]["data"] == ["plus"]
    assert tensors["tenure"]["data"] == [round(x["tenure"].mean())]
    assert tensors["paperless"]["data"] == [True]
    status, out = run_curl(command, token="tok-123")
    assert status == 200, out
    assert out["outputs"][0]["data"][0] in (0, 1)

    # after a real request, the example is the newest row served
    row = {"plan": "pro", "region": "south", "tenure": 7, "calls": 1.25, "paperless": False}
    sent = {
        "inputs": [
            {"name": k, "shape": [1], "datatype": tensors[k]["datatype"], "data": [v]}
            for k, v in row.items()
        ]
    }
    request = urllib.request.Request(
        d.infer_url,
        data=json.dumps(sent).encode(),
        headers={"Content-Type": "application/json", "Authorization": "Bearer tok-123"},
    )
    with urllib.request.urlopen(request, timeout=30) as reply:
        assert reply.status == 200
    deadline = time.monotonic() + 20
    while len(mlops.inference_log("contracts")) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    command = d.refresh().curl()
    body = json.loads(shlex.split(command)[-1])
    assert {t["name"]: t["data"][0] for t in body["inputs"]} == row
    status, out = run_curl(command, token="tok-123")
    expected = model.predict(pd.DataFrame([row]))
    assert status == 200 and out["outputs"][0]["data"] == expected.tolist()

    # the sidebar shows the same command
    from jupyter_mlops.server.payloads import deployments_payload
    from jupyter_mlops.store import current_store

    [item] = deployments_payload(current_store())
    assert item["curl"] == command
    assert "tok-123" not in command  # the command names $MLOPS_TOKEN, never the token
