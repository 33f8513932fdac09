"""``jupyter-mlops export``: an MLflow model folder that MLflow itself loads, a Docker build
context whose CMD really serves the model, a KServe InferenceService, and bad input.

MLflow is never a dependency of the package: the MLflow check runs in ``.interop-venv``,
which ``make test`` builds (``make interop`` alone builds just that).
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

import jupyter_mlops as mlops
from jupyter_mlops.cli import main as cli_main
from jupyter_mlops.errors import NotFoundError, ValidationError
from jupyter_mlops.serving.export import EXPORT_MARKER, SERVING_PACKAGES, export_model
from jupyter_mlops.serving.model import EXPORT_MANIFEST, load_directory

REPO = Path(__file__).resolve().parents[1]
INTEROP_PYTHON = REPO / ".interop-venv" / "bin" / "python"
TOKEN = "export-test-token"


class Threshold:
    """A model that is not a scikit-learn estimator (and not a type skops knows is safe)."""

    def __init__(self, cut: float = 10.0):
        self.cut = cut

    def predict(self, frame: Any) -> Any:
        return (np.asarray(frame["tenure"]) > self.cut).astype(int)


def churn_frame(n: int = 300) -> tuple[pd.DataFrame, pd.Series]:
    """Float, integer, text and boolean columns: every MLflow column type we map."""
    rng = np.random.default_rng(7)
    x = pd.DataFrame(
        {
            "tenure": rng.normal(10, 3, n),
            "calls": rng.integers(0, 20, n),
            "plan": rng.choice(["basic", "pro", "max"], n),
            "paperless": rng.random(n) > 0.5,
        }
    )
    y = ((x.tenure < 10) ^ (x.plan == "pro")).astype(int)
    return x, y


def register_churn() -> tuple[pd.DataFrame, Any]:
    """``churn@1`` (a pipeline with one-hot text and scaled numbers), alias production."""
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    x, y = churn_frame()
    with mlops.track("fit") as run:
        model = make_pipeline(
            make_column_transformer(
                (OneHotEncoder(handle_unknown="ignore"), ["plan"]), remainder=StandardScaler()
            ),
            LogisticRegression(),
        ).fit(x, y)
    mlops.register(run.run_id, "churn")
    mlops.set_alias("churn", "production", 1)
    return x, model


@pytest.fixture
def churn(store_dir: Path) -> tuple[pd.DataFrame, Any]:
    return register_churn()


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLOPS_", "PYTHON"))}
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(
    port: int, method: str, path: str, body: Any = None, token: str | None = None
) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        conn.request(
            method, path, body=json.dumps(body) if body is not None else None, headers=headers
        )
        response = conn.getresponse()
        raw = response.read()
    finally:
        conn.close()
    try:
        return response.status, json.loads(raw)
    except ValueError:
        return response.status, raw.decode()


def interop_python() -> Path:
    if INTEROP_PYTHON.exists():
        return INTEROP_PYTHON
    if os.environ.get("MLOPS_SKIP_INTEROP") == "1":
        pytest.skip("MLOPS_SKIP_INTEROP=1: not loading the export with MLflow")
    pytest.fail(
        f"{INTEROP_PYTHON.parent.parent} is missing, so the MLflow export cannot be checked "
        "with MLflow itself. Run `make test` (or `make interop`) to build it, or set "
        "MLOPS_SKIP_INTEROP=1 to skip this check."
    )


# -- mlflow ---------------------------------------------------------------------------------
MLFLOW_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import mlflow.pyfunc
    import pandas as pd

    doc = json.load(sys.stdin)
    frame = pd.DataFrame(doc["columns"]).astype(doc["dtypes"])
    model = mlflow.pyfunc.load_model(sys.argv[1])
    schema = model.metadata.get_input_schema()
    print(json.dumps({
        "predictions": [int(v) for v in model.predict(frame)],
        "inputs": schema.input_names(),
        "types": [str(t) for t in schema.input_types()],
        "mlflow": mlflow.__version__,
    }))
    """
)


def test_mlflow_export_loads_and_predicts_in_mlflow(churn, tmp_path):
    x, model = churn
    out = export_model("churn@production", "mlflow", tmp_path / "mlflow-model")
    assert out == tmp_path / "mlflow-model"
    names = {p.name for p in out.iterdir()}
    assert {"MLmodel", "model.pkl", "requirements.txt", "conda.yaml", "python_env.yaml"} <= names
    mlmodel = yaml.safe_load((out / "MLmodel").read_text())
    pyfunc = mlmodel["flavors"]["python_function"]
    assert pyfunc["loader_module"] == "mlflow.sklearn" and pyfunc["model_path"] == "model.pkl"
    assert pyfunc["env"] == {"conda": "conda.yaml", "virtualenv": "python_env.yaml"}
    sk = mlmodel["flavors"]["sklearn"]
    assert sk["pickled_model"] == "model.pkl" and sk["serialization_format"] == "pickle"
    inputs = json.loads(mlmodel["signature"]["inputs"])
    assert [(c["name"], c["type"]) for c in inputs] == [
        ("tenure", "double"),
        ("calls", "long"),
        ("plan", "string"),
        ("paperless", "boolean"),
    ]
    assert "scikit-learn==" in (out / "requirements.txt").read_text()

    rows = x.head(8)
    doc = {
        "columns": {c: rows[c].tolist() for c in rows.columns},
        "dtypes": {c: str(t) for c, t in rows.dtypes.items()},
    }
    done = subprocess.run(
        [str(interop_python()), "-c", MLFLOW_SCRIPT, str(out)],
        input=json.dumps(doc),
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env=clean_env(),
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["predictions"] == model.predict(rows).tolist()
    assert result["inputs"] == ["tenure", "calls", "plan", "paperless"]


def test_mlflow_export_refuses_models_that_are_not_scikit_learn(store_dir, tmp_path):
    with mlops.track("rule", capture=False) as run:
        mlops.log_model(Threshold(12.0), "rule")
    mlops.register(run.run_id, "rule")
    out = tmp_path / "rule-mlflow"
    with pytest.raises(ValidationError, match="trusted=True"):
        export_model("rule@1", "mlflow", out)
    with pytest.raises(ValidationError, match="not a scikit-learn-compatible") as info:
        export_model("rule@1", "mlflow", out, trusted=True)
    assert "--format docker" in str(info.value)
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if "export-" in p.name] == []
    # the docker format serves it, and the image's server then loads it as trusted too
    ctx = export_model("rule@1", "docker", tmp_path / "rule-docker", trusted=True)
    assert '"--trusted"]' in (ctx / "Dockerfile").read_text()
    assert load_directory(ctx / "model", trusted=True).model.cut == 12.0


# -- docker ---------------------------------------------------------------------------------
def dockerfile_cmd(dockerfile: str) -> list[str]:
    lines = [line for line in dockerfile.splitlines() if line.startswith("CMD ")]
    assert len(lines) == 1, lines
    return json.loads(lines[0][4:])


def test_docker_context_runs_its_cmd_with_the_vendored_package(churn, tmp_path):
    x, model = churn
    ctx = export_model("churn@production", "docker", tmp_path / "image")
    for name in ["Dockerfile", "requirements.txt", ".dockerignore", "README.md", EXPORT_MARKER]:
        assert (ctx / name).is_file(), name
    assert (ctx / "model" / EXPORT_MANIFEST).is_file() and (ctx / "model" / "model.skops").is_file()
    vendored = ctx / "jupyter_mlops"
    assert (vendored / "serving" / "__main__.py").is_file()
    assert not list(vendored.rglob("__pycache__")) and not (vendored / "labextension").exists()

    dockerfile = (ctx / "Dockerfile").read_text()
    assert f"FROM python:{sys.version_info.major}.{sys.version_info.minor}-slim" in dockerfile
    assert "pip install --no-cache-dir -r requirements.txt" in dockerfile
    assert "MLOPS_SERVE_HOST=0.0.0.0 MLOPS_SERVE_PORT=8080 MLOPS_HOME=/app/.mlops" in dockerfile
    assert "EXPOSE 8080" in dockerfile and "/v2/health/ready" in dockerfile
    assert "HEALTHCHECK" in dockerfile
    cmd = dockerfile_cmd(dockerfile)
    assert cmd == ["python", "-m", "jupyter_mlops.serving", "/app/model"]
    assert "MLOPS_SERVE_TOKEN" in (ctx / "README.md").read_text()

    requirements = (ctx / "requirements.txt").read_text().split()
    assert all("==" in r for r in requirements), requirements
    pinned = {r.split("==")[0].lower(): r.split("==")[1] for r in requirements}
    from importlib.metadata import version

    for dist in SERVING_PACKAGES:
        assert pinned[dist.lower()] == version(dist), dist
    mv = mlops.get_model_version("churn@production")
    assert set(mv.requirements) <= set(requirements)

    manifest = json.loads((ctx / "model" / EXPORT_MANIFEST).read_text())
    assert (manifest["name"], manifest["version"], manifest["format"]) == ("churn", 1, "skops")
    assert manifest["object_hash"] == mv.object_hash  # the stored bytes, as stored

    # the vendored package is the one a container (PYTHONPATH=/app, WORKDIR /app) imports
    home = tmp_path / "container-home"
    env = clean_env(PYTHONPATH=str(ctx), MLOPS_HOME=str(home))
    where = subprocess.run(
        [sys.executable, "-c", "import jupyter_mlops; print(jupyter_mlops.__file__)"],
        env=env,
        cwd=ctx,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()) == vendored / "__init__.py"

    # run the image's CMD, /app/model → the context's model folder
    port = free_port()
    argv = [str(ctx / "model") if a == "/app/model" else a for a in cmd]
    argv[0] = sys.executable
    env.update(MLOPS_SERVE_HOST="127.0.0.1", MLOPS_SERVE_PORT=str(port), MLOPS_SERVE_TOKEN=TOKEN)
    proc = subprocess.Popen(
        argv, env=env, cwd=ctx, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(f"the CMD exited with {proc.returncode}: {proc.communicate()}")
            try:
                if request(port, "GET", "/v2/health/ready")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the served export never became ready"
            time.sleep(0.1)

        status, root = request(port, "GET", "/", token=TOKEN)
        assert status == 200 and root["model"] == "churn@1"
        rows = x.head(6)
        expected = model.predict(rows).tolist()
        datatypes = {"tenure": "FP64", "calls": "INT64", "plan": "BYTES", "paperless": "BOOL"}
        body = {
            "inputs": [
                {
                    "name": c,
                    "shape": [len(rows)],
                    "datatype": datatypes[c],
                    "data": rows[c].tolist(),
                }
                for c in rows.columns
            ]
        }
        status, _ = request(port, "POST", "/v2/models/churn/infer", body)
        assert status == 401  # the token from MLOPS_SERVE_TOKEN is required
        status, answer = request(port, "POST", "/v2/models/churn/infer", body, token=TOKEN)
        assert status == 200, answer
        predict = next(o for o in answer["outputs"] if o["name"] == "predict")
        assert predict["data"] == expected and answer["model_version"] == "1"
        split = json.loads(rows.to_json(orient="split", index=False))
        status, answer = request(
            port, "POST", "/invocations", {"dataframe_split": split}, token=TOKEN
        )
        assert status == 200, answer
        assert answer["predictions"] == expected
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    assert proc.returncode is not None
    with pytest.raises(ProcessLookupError):
        os.kill(proc.pid, 0)
    with pytest.raises(OSError):
        request(port, "GET", "/v2/health/ready")
    assert home.is_dir()  # the inference log went to MLOPS_HOME, not the project store


# -- kserve ---------------------------------------------------------------------------------
def test_kserve_manifest_from_the_cli(churn, tmp_path, capsys):
    out = tmp_path / "kserve"
    code = cli_main(
        ["export", "churn@production", "--format", "kserve", str(out), "--image", "reg/churn:1"]
    )
    printed = capsys.readouterr().out
    assert code == 0
    assert "inferenceservice.yaml" in printed and "docker build -t reg/churn:1" in printed
    assert (out / "Dockerfile").is_file() and (out / "model" / EXPORT_MANIFEST).is_file()

    doc = yaml.safe_load((out / "inferenceservice.yaml").read_text())
    assert doc["apiVersion"] == "serving.kserve.io/v1beta1"
    assert doc["kind"] == "InferenceService"
    assert doc["metadata"]["name"] == "churn"
    [container] = doc["spec"]["predictor"]["containers"]
    assert container["name"] == "kserve-container" and container["image"] == "reg/churn:1"
    assert container["ports"] == [{"containerPort": 8080, "protocol": "TCP"}]
    env = {e["name"]: e for e in container["env"]}
    assert env["PROTOCOL"]["value"] == "v2"  # how KServe reads a custom container's protocol
    assert env["MLOPS_SERVE_TOKEN"]["valueFrom"]["secretKeyRef"] == {
        "name": "churn-serving-token",
        "key": "token",
    }
    assert container["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": 8080}
    assert container["livenessProbe"]["httpGet"] == {"path": "/v2/health/live", "port": 8080}
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert {"cpu", "memory"} <= set(container["resources"]["limits"])

    # exporting again over a previous export replaces it; the default image is name:version
    export_model("churn@1", "kserve", out)
    doc = yaml.safe_load((out / "inferenceservice.yaml").read_text())
    assert doc["spec"]["predictor"]["containers"][0]["image"] == "churn:1"
    assert json.loads((out / EXPORT_MARKER).read_text())["reference"] == "churn@1"


# -- bad input ------------------------------------------------------------------------------
def test_bad_input_gives_clear_errors_and_touches_nothing(churn, tmp_path, capsys):
    out = tmp_path / "nowhere"
    code = cli_main(["export", "churn@production", "--format", "pmml", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert "Unknown export format 'pmml'" in err and "mlflow, onnx, docker, kserve" in err
    assert not out.exists()

    with pytest.raises(NotFoundError, match="No registered model 'churm'"):
        export_model("churm@production", "docker", out)
    with pytest.raises(NotFoundError, match="no alias 'prod'"):
        export_model("churn@prod", "docker", out)
    assert cli_main(["export", "churm@1", "--format", "docker", str(out)]) == 2
    assert "No registered model" in capsys.readouterr().err
    assert not out.exists()

    busy = tmp_path / "busy"
    (busy / "notes").mkdir(parents=True)
    (busy / "train.py").write_text("print('mine')\n")
    (busy / "notes" / "todo.md").write_text("keep me\n")
    before = {p: p.read_bytes() for p in busy.rglob("*") if p.is_file()}
    for fmt in ("mlflow", "onnx", "docker", "kserve"):
        with pytest.raises(ValidationError, match="is not empty") as info:
            export_model("churn@production", fmt, busy)
        assert "new or empty folder" in str(info.value)
    assert {p: p.read_bytes() for p in busy.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in busy.iterdir()) == ["notes", "train.py"]

    a_file = tmp_path / "model.txt"
    a_file.write_text("x")
    with pytest.raises(ValidationError, match="is a file"):
        export_model("churn@production", "docker", a_file)
    assert a_file.read_text() == "x"
    # an empty folder is fine, and nothing temporary is left beside it
    empty = tmp_path / "empty"
    empty.mkdir()
    export_model("churn@production", "mlflow", empty)
    assert (empty / "MLmodel").is_file()
    assert [p.name for p in tmp_path.iterdir() if "export-" in p.name] == []
