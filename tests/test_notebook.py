"""The example notebooks, executed in a real kernel through nbclient: each in a fresh
store, and all of them together in one folder, as ``make lab`` runs them."""

from __future__ import annotations

import os
import re
import shutil
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

import jupyter_mlops as mlops

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.notebook


def execute(notebook: Path, env: dict[str, str]) -> nbformat.NotebookNode:
    nb = nbformat.read(notebook, as_version=4)
    client = NotebookClient(
        nb,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(notebook.parent)}},
    )
    client.execute(env=env)
    return nb


def run_example(name: str, tmp_path: Path, store_dir: Path) -> tuple[Path, list]:
    """Execute ``examples/<name>`` in a real kernel, as JupyterLab would run it; return the
    notebook's path and its outputs, after checking that no cell failed."""
    notebook = tmp_path / name
    shutil.copy(REPO / "examples" / name, notebook)
    env = {**os.environ, "MLOPS_HOME": str(store_dir), "JPY_SESSION_NAME": str(notebook)}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    nb = execute(notebook, env)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    return notebook, outputs


def run_serving_example(name: str, tmp_path: Path, store_dir: Path) -> list:
    """``run_example`` for a notebook that deploys: every deployment and the store's
    launcher are stopped afterwards, and nothing is left running."""
    from jupyter_mlops.serving.launcher import stop_launcher

    from .serving_helpers import processes_mentioning

    try:
        _, outputs = run_example(name, tmp_path, store_dir)
    finally:
        for d in mlops.deployments().itertuples():
            mlops.undeploy(d.deployment_id)
        stop_launcher(store_dir)
    assert processes_mentioning(str(store_dir)) == []
    return outputs


def test_quickstart_runs_and_records(tmp_path, store_dir):
    notebook, outputs = run_example("quickstart.ipynb", tmp_path, store_dir)
    texts = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert f"store {store_dir}" in texts and "experiment 'quickstart'" in texts
    cards = [
        o
        for o in outputs
        if "text/html" in o.get("data", {}) and "mlops-card" in o["data"]["text/html"]
    ]
    assert len(cards) == 4  # three tracked cells and the displayed run

    frame = mlops.runs(experiment="quickstart")
    parents = frame[~frame.name.str.contains("#")]
    assert sorted(parents.name) == ["baseline", "forest", "search"]
    assert (frame.status == "finished").all()
    assert len(frame) == 3 + 4  # the grid search's four candidates
    baseline = mlops.get_run(parents[parents.name == "baseline"].run_id.iloc[0])
    assert baseline.params["SEED"] == 42 and baseline.params["C"] == 0.5
    assert baseline.params["model.logisticregression__C"] == 0.5
    assert baseline.metrics["accuracy"] > 0.9 and "f1" in baseline.metrics
    assert baseline.inputs[0]["name"] == "df" and baseline.inputs[0]["shape"] == (569, 31)
    assert baseline.models[0]["name"] == "model" and baseline.models[0]["format"] == "skops"
    assert baseline.notebook == str(notebook)
    assert "load_breast_cancer" in baseline.code_slice
    forest = mlops.get_run(parents[parents.name == "forest"].run_id.iloc[0])
    assert forest.tags == {"family": "trees"} and forest.params["n_estimators"] == 200


def test_data_versioning_notebook(tmp_path, store_dir):
    _, outputs = run_example("data_versioning.ipynb", tmp_path, store_dir)
    history = mlops.data_history("customers")
    assert list(history.version) == [2, 1]  # replays on old versions create no new versions
    v1, v2 = history.iloc[1], history.iloc[0]
    assert v1.rows == 5000 and v2.rows == 5020
    runs = mlops.runs(experiment="churn")
    assert sorted(runs.name) == ["churn-forest", "churn-forest (replay)", "churn-forest (replay)"]
    assert len(v1.used_by_runs) == 2 and len(v2.used_by_runs) == 1
    diff = mlops.data_diff("customers@v1", "customers@v2")
    assert (diff.rows["added"], diff.rows["removed"], diff.rows["changed"]) == (60, 40, 10)
    html = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    assert any("customers@v1 → customers@v2" in h for h in html)


def test_registry_notebook(tmp_path, store_dir):
    _, outputs = run_example("registry.ipynb", tmp_path, store_dir)
    assert not [o for o in outputs if o.output_type == "stream" and o.name == "stderr"]
    widgets = [
        o for o in outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})
    ]
    assert len(widgets) == 3  # the runs explorer, the comparison, the registry panel
    # each view shows its static table as its own output first (saved and exported notebooks)
    tables = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    assert any("1–3 of 3" in h for h in tables)
    card = [o["data"]["text/markdown"] for o in outputs if "text/markdown" in o.get("data", {})]
    assert card and card[0].startswith("# cancer — version 1")
    production = mlops.get_model_version("cancer@production")
    runs = mlops.runs(experiment="registry")
    best = runs[runs["metrics.accuracy"] == runs["metrics.accuracy"].max()]
    assert production.run_id in set(best.run_id)  # C=0.1 and C=1.0 may tie
    assert list(mlops.model_events("cancer").kind) == ["registered", "alias_set"]


def test_deployment_notebook(tmp_path, store_dir):
    outputs = run_serving_example("deployment.ipynb", tmp_path, store_dir)
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "invocations: {'predictions': [" in text and "OIP v2: 1 [" in text
    assert "now served by version 2" in text
    assert "422 request id: " in text and "rows: [1]" in text and "cannot take them" in text
    html = [o["data"].get("text/html", "") for o in outputs if "data" in o]
    assert any("curl" in h and "running" in h for h in html)
    frame = mlops.deployments(all=True)
    assert list(frame.status) == ["stopped"] and frame.version.iloc[0] == 2
    assert "deployment_switched" in set(mlops.model_events("diagnosis").kind)
    assert len(mlops.inference_log("diagnosis", kind=None)) > 0
    from jupyter_mlops.serving.inference_log import feedback

    assert len(feedback("diagnosis")) == 3


def test_monitoring_notebook(tmp_path, store_dir):
    outputs = run_serving_example("monitoring.ipynb", tmp_path, store_dir)
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "400 predictions served" in text
    assert "alert [" in text and "'feature_drift: radius'" in text
    assert "callback got" in text and "callback got 0" not in text
    assert "FAIL accuracy >= 0.85" in text
    widgets = [
        o for o in outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})
    ]
    tables = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    assert widgets and any("radius" in h and "mlops-static" in h for h in tables)
    table = mlops.alerts("screening")
    assert {"feature_drift", "metric"} <= set(table.kind)


def test_retraining_notebook(tmp_path, store_dir):
    outputs = run_serving_example("retraining.ipynb", tmp_path, store_dir)
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "Gate passed:" in text and "PASS accuracy >= champion (accuracy = " in text
    assert "the deployment now serves version 2" in text
    assert "['new_data: churn_train@v3']" in text
    html = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    assert any("retrain job" in h and "promoted" in h for h in html)
    jobs = mlops.retraining_jobs("churn")
    assert list(jobs.trigger) == ["new_data: churn_train@v3", "manual"]
    assert list(jobs.status) == ["finished", "finished"]


def readme_examples() -> list[str]:
    """The example notebooks in the order README.md first names them."""
    shipped = {p.name for p in (REPO / "examples").glob("*.ipynb")}
    named: list[str] = []
    for match in re.finditer(r"([\w-]+\.ipynb)", (REPO / "README.md").read_text()):
        if match.group(1) in shipped and match.group(1) not in named:
            named.append(match.group(1))
    assert sorted(named) == sorted(shipped), f"README.md names {named}; examples/ has {shipped}"
    return named


def processes_of(folder: Path) -> list[int]:
    """Live pids working in or for ``folder``: its path on their command line (the store's
    launcher and what it forks), its store as their MLOPS_HOME (deployments, job runners)
    or a working directory inside it (kernels); the test's own process excepted."""
    home = f"MLOPS_HOME={folder / '.mlops'}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                if fh.read().rsplit(b")", 1)[1].split()[0] == b"Z":
                    continue
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                cmdline = fh.read()
            with open(f"/proc/{entry}/environ", "rb") as fh:
                environ = fh.read().split(b"\0")
            cwd = Path(os.readlink(f"/proc/{entry}/cwd"))
        except OSError:
            continue
        if str(folder).encode() in cmdline or home in environ or cwd.is_relative_to(folder):
            found.append(int(entry))
    return found


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_all_examples_in_one_folder_twice(tmp_path, monkeypatch):
    """Every example, in README order, twice, in the one folder ``make lab`` opens: no
    MLOPS_HOME, so all of them use the nearest ``.mlops/`` (the folder's own). Each must
    succeed whatever ran before it, and nothing it started may be left running."""
    from jupyter_mlops.serving.launcher import stop_launcher
    from jupyter_mlops.store import reset_current_store

    folder = tmp_path / "examples"
    folder.mkdir()
    home = folder / ".mlops"
    assert not [p for p in folder.parents if (p / ".mlops").is_dir()], "a store above the folder"
    names = readme_examples()
    for name in names:
        shutil.copy(REPO / "examples" / name, folder / name)
    for key in ("MLOPS_HOME", "MLOPS_DB_URL", "MLOPS_ARTIFACTS_URL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(folder)  # this process's calls resolve the folder's store too
    reset_current_store()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLOPS_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    failures: list[str] = []
    took: list[str] = []
    started = time.monotonic()
    try:
        for round_ in (1, 2):
            for name in names:
                notebook = folder / name
                nb = nbformat.read(notebook, as_version=4)
                began = time.monotonic()
                client = NotebookClient(
                    nb,
                    timeout=300,
                    kernel_name="python3",
                    resources={"metadata": {"path": str(folder)}},
                )
                try:  # like Run All: the first error stops the notebook
                    client.execute(env={**env, "JPY_SESSION_NAME": str(notebook)})
                except CellExecutionError:
                    pass  # the error output is in the notebook, reported below
                took.append(f"{name} {time.monotonic() - began:.0f} s")
                outputs = [
                    (i, o) for i, c in enumerate(nb.cells) if c.cell_type == "code"
                    for o in c.get("outputs", [])
                ]  # fmt: skip
                text = "".join(o.get("text", "") for _, o in outputs)
                errors = [(i, o) for i, o in outputs if o.output_type == "error"]
                if f"store {home} (" not in text:
                    failures.append(f"{name} (round {round_}) used another store:\n{text[:500]}")
                for i, o in errors:
                    failures.append(f"{name} (round {round_}) cell {i}: {o.ename}: {o.evalue}")
                reset_current_store()
                left = list(mlops.deployments().deployment_id)
                if left:
                    failures.append(f"{name} (round {round_}) left deployments running: {left}")
        assert not failures, "\n".join(failures)
        jobs = mlops.retraining_jobs()  # the notebooks check their jobs; so does the test
        assert len(jobs) == 2 * 2 and (jobs.status == "finished").all(), jobs[["status", "error"]]
    finally:
        print(
            f"examples twice in one folder: {time.monotonic() - started:.0f} s ({', '.join(took)})"
        )
        reset_current_store()
        for d in mlops.deployments().itertuples():  # only what the store records as ours
            mlops.undeploy(d.deployment_id)
        stop_launcher(home)
        reset_current_store()
    deadline = time.monotonic() + 30
    while processes_of(folder) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert processes_of(folder) == []
