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
