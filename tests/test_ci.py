"""`jupyter-mlops ci run` and `ci init --github`, driven through the command line on the
example training notebook, as a CI system runs them."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

import jupyter_mlops as mlops
from jupyter_mlops.store import reset_current_store

from .conftest import cli
from .serving_helpers import processes_mentioning

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "ci_train.ipynb"
GATES = ["--gate", "accuracy>=0.9", "--gate", "accuracy >= champion - 0.005"]
REGISTER = ["--register", "cancer", "--promote", "staging", "--holdout", "cancer_holdout@latest"]

pytestmark = pytest.mark.slow


def _versions() -> list[int]:
    reset_current_store()
    try:
        return list(mlops.model_versions("cancer").version)
    except mlops.MlopsError:
        return []


def _staging() -> int:
    reset_current_store()
    return mlops.get_model_version("cancer@staging").version


def test_ci_run_registers_promotes_then_refuses_a_worse_model(store_dir, tmp_path):
    out = cli(
        store_dir, "ci", "run", str(EXAMPLE), "-p", "C=0.5", *GATES, *REGISTER,
        "--junit", str(tmp_path / "r1.xml"), "--summary", str(tmp_path / "s1.md"),
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.startswith("jupyter-mlops ci: passed")
    assert "PASS accuracy>=0.9 (accuracy = 0.95" in out.stdout
    assert "no champion yet, passes as the first model" in out.stdout
    assert "promoted cancer@staging → cancer@1" in out.stdout
    assert "KeyboardInterrupt" not in out.stderr  # the kernel's noise goes to its log file
    assert _versions() == [1] and _staging() == 1
    suite = ET.parse(tmp_path / "r1.xml").getroot().find("testsuite")
    assert (suite.get("tests"), suite.get("failures")) == ("7", "0")
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["holdout"] == "cancer_holdout@v1" and props["holdout_rows"] == "143"
    summary = (tmp_path / "s1.md").read_text()
    assert summary.startswith("## ✅ jupyter-mlops ci: `ci_train.ipynb` passed")
    assert "| accuracy | 0.95" in summary and "`cancer@staging` → `cancer@1`" in summary
    # The executed notebook is kept with the run, parameters injected.
    run = mlops.get_run(props["run"])
    assert run.tags["mlops.register"] == "cancer"
    executed = json.loads(run.artifact_bytes("executed_notebook"))
    sources = ["".join(c["source"]) for c in executed["cells"]]
    assert any("C = 0.5" in s for s in sources)
    # A model far worse than the champion: exit 1, the failing check named, nothing changes.
    out = cli(
        store_dir, "ci", "run", str(EXAMPLE), "-p", "C=0.0005", *GATES, *REGISTER,
        "--junit", str(tmp_path / "r2.xml"), "--summary", str(tmp_path / "s2.md"),
    )  # fmt: skip
    assert out.returncode == 1, out.stdout + out.stderr
    assert re.search(
        r"FAIL accuracy >= champion - 0.005 \(accuracy = 0.93\d*, champion = 0.95", out.stdout
    )
    assert _versions() == [1] and _staging() == 1
    suite = ET.parse(tmp_path / "r2.xml").getroot().find("testsuite")
    failures = [c.get("name") for c in suite.iter("testcase") if c.find("failure") is not None]
    assert failures == ["gate: accuracy >= champion - 0.005"]
    assert "❌ FAIL `accuracy >= champion - 0.005`" in (tmp_path / "s2.md").read_text()
    jobs = mlops.retraining_jobs("cancer")
    assert list(jobs.kind) == ["ci", "ci"] and list(jobs.promoted) == [False, True]
    # A headless job's kernel starts no serving launcher: nothing is left running.
    assert processes_mentioning(str(store_dir)) == []


def test_ci_run_bad_input_fails_clearly_and_registers_nothing(store_dir, tmp_path):
    out = cli(store_dir, "ci", "run", str(EXAMPLE), "-p", "C=-1", *GATES, *REGISTER)
    assert out.returncode == 1
    assert "ci_train.ipynb raised in cell 4: InvalidParameterError" in out.stdout
    assert "executed notebook is at" in out.stdout
    assert _versions() == []
    out = cli(store_dir, "ci", "run", str(EXAMPLE), "--gate", "acc >= 0.9", "--register", "cancer")
    assert out.returncode == 2 and "unknown metric 'acc'. Did you mean accuracy" in out.stderr
    out = cli(store_dir, "ci", "run", str(tmp_path / "nope.ipynb"), "--register", "cancer")
    assert out.returncode == 2 and "No notebook at" in out.stderr
    out = cli(store_dir, "ci", "run", str(EXAMPLE), "--promote", "staging")
    assert out.returncode == 2 and "add --register NAME" in out.stderr
    out = cli(store_dir, "ci", "run", str(EXAMPLE), "-p", "C", "--register", "cancer")
    assert out.returncode == 2 and "write -p name=value" in out.stderr
    assert _versions() == []


def test_ci_init_github_writes_a_workflow_whose_command_runs(store_dir, tmp_path):
    repo = tmp_path / "repo"
    (repo / "notebooks").mkdir(parents=True)
    shutil.copy(EXAMPLE, repo / "notebooks" / "train.ipynb")
    args = ["ci", "init", "--github", "--root", str(repo), "--register", "cancer",
            "--gate", "accuracy>=0.9", "--holdout", "cancer_holdout@latest"]  # fmt: skip
    out = cli(store_dir, *args)
    assert out.returncode == 0, out.stderr
    workflow = yaml.safe_load((repo / ".github/workflows/mlops.yml").read_text())
    assert workflow[True] == {"push": {"branches": ["main"]}, "pull_request": None}  # `on:`
    steps = workflow["jobs"]["train-gate-promote"]["steps"]
    command = next(s["run"] for s in steps if s.get("name") == "Train, gate, register, promote")
    again = cli(store_dir, *args)
    assert again.returncode == 2 and "exists; pass --force" in again.stderr

    def run(pull_request: bool) -> subprocess.CompletedProcess:
        line = re.sub(r"\$\{\{.*?\}\}", "--dry-run" if pull_request else "", command)
        argv = shlex.split(line)
        assert argv[:3] == ["jupyter-mlops", "ci", "run"]
        env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("MLOPS_")}
        env |= {"MLOPS_HOME": str(store_dir), "MLOPS_DB_URL": "", "MLOPS_ARTIFACTS_URL": ""}
        return subprocess.run(
            [sys.executable, "-m", "jupyter_mlops.cli", *argv[1:]],
            cwd=repo, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip

    # A pull request is gated only; a push registers and promotes.
    out = run(pull_request=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert _versions() == []
    out = run(pull_request=False)
    assert out.returncode == 0, out.stdout + out.stderr
    assert _versions() == [1] and _staging() == 1
    report = repo / "mlops-report"
    assert {p.name for p in report.iterdir()} >= {"junit.xml", "summary.md", "executed.ipynb"}


RECORDED_NB = """\
%%track
model = LogisticRegression(C=C, max_iter=5000).fit(X_train, y_train)
test_accuracy = model.score(X_test, y_test)
"""


def _small_notebook(path: Path) -> Path:
    """A notebook whose tracked cell records the metric it computed, ``test_accuracy``,
    and snapshots no holdout."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    params = nbformat.v4.new_code_cell("C = 1.0")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [
        params,
        nbformat.v4.new_code_cell(
            "%load_ext jupyter_mlops\n"
            "from sklearn.datasets import load_breast_cancer\n"
            "from sklearn.linear_model import LogisticRegression\n"
            "from sklearn.model_selection import train_test_split\n"
            "data = load_breast_cancer(as_frame=True)\n"
            "X_train, X_test, y_train, y_test = train_test_split(\n"
            "    data.data, data.target, random_state=0)"
        ),
        nbformat.v4.new_code_cell(RECORDED_NB),
    ]
    nbformat.write(nb, path)
    return path


def test_ci_gates_on_the_metric_the_notebook_recorded(store_dir, tmp_path):
    notebook = _small_notebook(tmp_path / "train.ipynb")
    gate = ["--gate", "metrics.test_accuracy >= 0.9"]
    vs_champion = ["--gate", "metrics.test_accuracy >= champion.metrics.test_accuracy - 0.005"]
    register = ["--register", "cancer", "--promote", "staging"]
    # No holdout: the value the run recorded is judged; first model, registered, promoted.
    out = cli(
        store_dir, "ci", "run", str(notebook), *gate, *vs_champion, *register,
        "--summary", str(tmp_path / "s1.md"),
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    recorded = mlops.get_run(_run_of(out.stdout)).metrics["test_accuracy"]
    assert f"PASS metrics.test_accuracy >= 0.9 (metrics.test_accuracy = {recorded:.4g})" in (
        out.stdout
    )
    assert "no champion yet, passes as the first model" in out.stdout
    assert "promoted cancer@staging → cancer@1" in out.stdout
    summary = (tmp_path / "s1.md").read_text()
    assert f"| metrics.test_accuracy (recorded) | {recorded:.4f} | — | — |" in summary
    assert _versions() == [1] and _staging() == 1
    # A worse model: the champion's recorded value, with the note that the data may differ.
    out = cli(
        store_dir, "ci", "run", str(notebook), "-p", "C=0.0005", *vs_champion, *register,
        "--summary", str(tmp_path / "s2.md"),
    )  # fmt: skip
    assert out.returncode == 1, out.stdout + out.stderr
    assert re.search(
        r"FAIL metrics.test_accuracy >= champion.metrics.test_accuracy - 0.005 "
        r"\(metrics.test_accuracy = 0.93\d*, champion.metrics.test_accuracy = 0.95\d*; "
        r"recorded by each run, possibly on different data\)",
        out.stdout,
    )
    summary = (tmp_path / "s2.md").read_text()
    assert re.search(
        r"\| metrics.test_accuracy \(recorded\) \| 0.93\d+ \| 0.95\d+ \| -0.0", summary
    )
    assert "possibly on different data" in summary
    assert _versions() == [1] and _staging() == 1
    # A metric the notebook does not record: a FAIL line that names what it did record.
    out = cli(store_dir, "ci", "run", str(notebook), "--gate", "metrics.test_f1 >= 0.9")
    assert out.returncode == 1, out.stdout + out.stderr
    assert "FAIL metrics.test_f1 >= 0.9 (the challenger run " in out.stdout
    assert "recorded no metric 'test_f1'; it recorded: test_accuracy)" in out.stdout
    # The champion's run is known at submit: a metric it lacks is refused before running.
    out = cli(
        store_dir, "ci", "run", str(notebook), *register,
        "--gate", "metrics.test_accuracy >= champion.metrics.test_f1",
    )  # fmt: skip
    assert out.returncode == 2
    assert "the champion run of cancer@1" in out.stderr and "no metric 'test_f1'" in out.stderr
    assert "unknown metric" not in out.stderr
    assert _versions() == [1] and _staging() == 1


def _run_of(stdout: str) -> str:
    return re.search(r"^  run ([0-9a-f]{8})$", stdout, re.M).group(1)


def test_ci_init_with_a_recorded_metric_gate_asks_for_no_holdout(store_dir, tmp_path):
    args = ["ci", "init", "--github", "--root", str(tmp_path), "--register", "cancer",
            "--gate", "metrics.test_accuracy >= 0.9"]  # fmt: skip
    out = cli(store_dir, *args)
    assert out.returncode == 0, out.stderr
    text = (tmp_path / ".github/workflows/mlops.yml").read_text()
    steps = yaml.safe_load(text)["jobs"]["train-gate-promote"]["steps"]
    command = next(s["run"] for s in steps if s.get("name") == "Train, gate, register, promote")
    assert "--gate 'metrics.test_accuracy >= 0.9'" in command and "--holdout" not in command
    assert "reads the metrics the notebook's tracked cells record" in text
    # A gate that scores models still gets the holdout the notebook snapshots.
    out = cli(store_dir, *args[:-1], "accuracy >= champion", "--force")
    assert out.returncode == 0, out.stderr
    assert (
        "--holdout cancer_holdout@latest" in (tmp_path / ".github/workflows/mlops.yml").read_text()
    )
