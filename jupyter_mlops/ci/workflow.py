"""``jupyter-mlops ci init --github``: a GitHub Actions workflow that runs ``jupyter-mlops
ci run`` on every push and pull request. Pull requests are gated only (``--dry-run``:
nothing registered); a push to the main branch registers and promotes what passes."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from ..errors import ConflictError

__all__ = ["WORKFLOW_PATH", "ci_command", "github_workflow", "write_github_workflow"]

WORKFLOW_PATH = Path(".github/workflows/mlops.yml")


def ci_command(
    notebook: str,
    *,
    gates: list[str],
    register: str | None,
    promote: str | None,
    holdout: str | None = None,
) -> str:
    """The ``jupyter-mlops ci run`` line of the workflow (reports to ``mlops-report/``)."""
    parts = ["jupyter-mlops", "ci", "run", notebook]
    for gate in gates:
        parts += ["--gate", gate]
    if holdout:
        parts += ["--holdout", holdout]
    if register:
        parts += ["--register", register]
    if promote:
        parts += ["--promote", promote]
    parts += ["--junit", "mlops-report/junit.xml", "--summary", "mlops-report/summary.md"]
    parts += ["--output", "mlops-report/executed.ipynb"]
    return shlex.join(parts)


def _scores_models(gates: list[str]) -> bool:
    """Whether a gate scores models on a holdout (a scorer name, not ``metrics.NAME``);
    import paths are not imported here, only by the run."""
    from ..retraining.gate import is_import_path, parse_gate

    expressions = [g for g in gates if not is_import_path(g)]
    return any(getattr(item, "metrics", ()) for item in parse_gate(expressions))


def github_workflow(
    notebook: str = "notebooks/train.ipynb",
    *,
    gates: list[str] | None = None,
    register: str | None = "model",
    promote: str | None = "staging",
    holdout: str | None = None,
    branch: str = "main",
) -> str:
    """The workflow's YAML text."""
    gates = gates if gates is not None else ["accuracy >= champion"]
    if holdout is None and register and _scores_models(gates):
        holdout = f"{register}_holdout@latest"  # the notebook snapshots its test split there
    command = ci_command(notebook, gates=gates, register=register, promote=promote, holdout=holdout)
    dry = "${{ github.event_name == 'pull_request' && '--dry-run' || '' }}"
    holdout_name = (holdout or "").split("@")[0]
    where = (
        f"""# The gate scores both models on {holdout}: the notebook saves its test split
# there, e.g. mlops.snapshot(pd.concat([X_test, y_test], axis=1), "{holdout_name}")."""
        if holdout
        else "# The gate reads the metrics the notebook's tracked cells record (metrics.NAME)."
    )
    return f"""# Written by `jupyter-mlops ci init --github`: train, gate, register and promote a model.
# Pull requests are gated only (--dry-run); a push to {branch} registers and promotes.
# Point MLOPS_DB_URL / MLOPS_ARTIFACTS_URL (repository secrets) at the team's store so the
# gate compares with the real champion; without them the store lives in the workspace.
{where}
name: mlops

on:
  push:
    branches: [{branch}]
  pull_request:

jobs:
  train-gate-promote:
    runs-on: ubuntu-latest
    timeout-minutes: 60
    env:
      MLOPS_DB_URL: ${{{{ secrets.MLOPS_DB_URL }}}}
      MLOPS_ARTIFACTS_URL: ${{{{ secrets.MLOPS_ARTIFACTS_URL }}}}
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with:
          python-version: "3.11"
          cache: pip
      - name: Install
        run: |
          python -m pip install --upgrade pip
          if [ -f requirements.txt ]; then pip install -r requirements.txt; fi
          pip install jupyter_mlops
      - name: Train, gate, register, promote
        run: |
          {command} {dry}
      - name: Summary
        if: always()
        run: cat mlops-report/summary.md >> "$GITHUB_STEP_SUMMARY" || true
      - name: Keep the reports and the executed notebook
        if: always()
        uses: actions/upload-artifact@v4
        with:
          name: mlops-report
          path: mlops-report/
      - name: Test report
        if: always()
        uses: mikepenz/action-junit-report@v4
        with:
          report_paths: mlops-report/junit.xml
"""


def write_github_workflow(
    root: str | os.PathLike[str] = ".", *, force: bool = False, **options: object
) -> Path:
    """Write ``.github/workflows/mlops.yml`` under ``root``; an existing file is kept
    unless ``force``."""
    path = Path(root) / WORKFLOW_PATH
    if path.exists() and not force:
        raise ConflictError(f"{path} exists; pass --force to replace it.")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(github_workflow(**options))  # type: ignore[arg-type]
    return path
