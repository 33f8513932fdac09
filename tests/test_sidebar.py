"""The MLOps sidebar in a real JupyterLab, driven through Playwright in Debian's chromium:
open it, see the model a CI run registered, deploy it, see it ready and answer a request,
stop it, retrain with a click and see the job finish. Screenshots go to tests/artifacts/
(the README's image is one of them)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import requests

import jupyter_mlops as mlops
from jupyter_mlops.serving.launcher import stop_launcher

from .conftest import cli
from .lab_helpers import CHROMIUM, LAUNCH_ARGS, TOKEN, running_lab
from .retraining_helpers import wait_for
from .serving_helpers import processes_mentioning

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "tests" / "artifacts"
EXAMPLE = REPO / "examples" / "ci_train.ipynb"


@pytest.fixture
def project(store_dir, tmp_path):
    """A store with ``cancer@1`` in production (registered by a CI run of the example
    notebook, which also saved the holdout) and a retraining policy that runs it again."""
    out = cli(store_dir, "ci", "run", str(EXAMPLE), "--register", "cancer",
              "--promote", "production", "--holdout", "cancer_holdout@latest")  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    mlops.retrain_policy(
        "cancer",
        on="schedule",
        schedule="0 3 * * *",
        notebook=str(EXAMPLE),
        parameters={"C": 0.5},
        gate=["accuracy >= champion - 0.02"],
        holdout="cancer_holdout@latest",
    )
    root = tmp_path / "lab"
    root.mkdir()
    # The background loop every 2 s: health, traffic (p50), monitors, policies.
    try:
        with running_lab(root, store_dir, tmp_path / "lab.log", "--JupyterMlops.interval=2") as url:
            yield url
    finally:
        for d in mlops.deployments().itertuples():
            mlops.undeploy(d.deployment_id)
        stop_launcher(store_dir)  # the sidebar's Deploy started the store's launcher
    wait_for(lambda: processes_mentioning(str(store_dir)) == [], 30)


def test_sidebar_deploys_stops_and_retrains(project):
    from playwright.sync_api import sync_playwright
    from sklearn.datasets import load_breast_cancer

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(f"{project}/lab?token={TOKEN}")
        tab = page.locator('.lm-TabBar-tab[data-id="jupyter-mlops-sidebar"]')
        tab.wait_for(timeout=90_000)
        sidebar = page.locator("#jupyter-mlops-sidebar")
        started = time.monotonic()
        tab.click()
        model = sidebar.locator('[data-model-row="cancer"]')
        model.wait_for(timeout=30_000)
        first_paint = time.monotonic() - started
        assert "production → v1" in model.inner_text()
        assert sidebar.locator('[data-section="deployments"] .jp-mlops-empty').is_visible()
        try:
            # Deploy from the sidebar; the deployment becomes ready and answers.
            model.locator('button[data-action="deploy"]').click()
            row = sidebar.locator("[data-deployment-row]")
            row.locator(".jp-mlops-badge", has_text="running").wait_for(timeout=60_000)
            url = row.locator(".jp-mlops-url").inner_text().strip()
            x = load_breast_cancer(as_frame=True).data.iloc[:3]
            answer = requests.post(
                f"{url}/invocations",
                json={"dataframe_split": x.to_dict(orient="split")},
                timeout=30,
            )
            assert answer.status_code == 200 and len(answer.json()["predictions"]) == 3
            # The request shows in the sidebar once the log is written (each second).
            row.locator(".jp-mlops-line", has_text="1 request ·").wait_for(timeout=30_000)
            # The loop aggregates the last hour's traffic: the p50 latency appears.
            row.locator(".jp-mlops-line", has_text=re.compile(r"p50 [\d.]+ ms")).wait_for(
                timeout=30_000
            )
            page.screenshot(path=str(ARTIFACTS / "sidebar_deployed.png"))
            # Monitor opens a new notebook that shows the monitoring panel.
            row.locator('button[data-action="monitor"]').click()
            panel = page.locator(".jp-NotebookPanel:visible")
            # the live panel (its static table, for saved notebooks, hides once it draws)
            panel.locator(".jp-OutputArea-output:visible", has_text="cancer").first.wait_for(
                timeout=120_000
            )
            assert (
                'mlops.monitor("cancer@production")' in panel.locator(".jp-Cell").first.inner_text()
            )
            page.screenshot(path=str(ARTIFACTS / "sidebar_monitor_notebook.png"))
            # Stop asks first.
            row.locator('button[data-action="stop"]').click()
            page.locator(".jp-Dialog").get_by_role("button", name="Stop").click()
            sidebar.locator('[data-section="deployments"] .jp-mlops-empty').wait_for(timeout=60_000)
            assert mlops.deployments().empty
            # Retrain now: the policy's notebook runs, the gate passes, the alias moves.
            sidebar.locator('[data-policy-row="cancer"] button[data-action="retrain"]').click()
            job = sidebar.locator("[data-job-row]", has_text="manual: sidebar").first
            job.locator(".jp-mlops-badge", has_text="promoted").wait_for(timeout=240_000)
            assert "cancer@1 → cancer@2" in job.inner_text()
            assert "PASS accuracy >= champion - 0.02" in job.inner_text()
            assert mlops.get_model_version("cancer@production").version == 2
            # The command palette lists the sidebar's actions.
            page.keyboard.press("Control+Shift+C")
            page.locator(".lm-CommandPalette-input").fill("MLOps")
            palette = page.locator(".lm-CommandPalette-content").inner_text()
            for label in ("Deploy a Model", "Retrain a Model Now", "Promote a Model Version"):
                assert label in palette
            page.keyboard.press("Escape")
            # Restored with the layout: after a reload the sidebar is open again.
            page.reload()
            sidebar.locator('[data-model-row="cancer"]').wait_for(timeout=60_000)
            # JupyterLab's dark theme: the sidebar follows its CSS variables.
            page.locator(".lm-MenuBar-itemLabel", has_text="Settings").click()
            page.locator(".lm-Menu-itemLabel", has_text="Theme").first.hover()
            page.locator(".lm-Menu-itemLabel").get_by_text("JupyterLab Dark", exact=True).click()
            page.wait_for_selector(
                "body[data-jp-theme-light='false']", state="attached", timeout=30_000
            )
            page.wait_for_timeout(1500)
            sidebar.screenshot(path=str(ARTIFACTS / "sidebar_dark.png"))
            background = sidebar.evaluate("e => getComputedStyle(e).backgroundColor")
            red, green, blue = (int(v) for v in re.findall(r"\d+", background)[:3])
            assert red + green + blue < 3 * 90, background  # dark, from the theme's variables
        finally:
            sidebar.screenshot(path=str(ARTIFACTS / "sidebar.png"))
            page.screenshot(path=str(ARTIFACTS / "sidebar_lab.png"))
            browser.close()
    print(f"sidebar first paint {first_paint * 1000:.0f} ms")


@pytest.fixture
def no_policy_project(store_dir, tmp_path):
    """``cancer@1`` in production (registered by a CI run), and no retraining policy."""
    out = cli(store_dir, "ci", "run", str(EXAMPLE), "--register", "cancer",
              "--promote", "production", "--holdout", "cancer_holdout@latest")  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    root = tmp_path / "lab"
    root.mkdir()
    try:
        with running_lab(root, store_dir, tmp_path / "lab.log", "--JupyterMlops.interval=2") as url:
            yield url
    finally:
        stop_launcher(store_dir)
    wait_for(lambda: processes_mentioning(str(store_dir)) == [], 60)


def test_retrain_without_a_policy_opens_the_form_with_the_models_defaults(no_policy_project):
    """Retrain is offered on every model: without a policy it opens the retrain form,
    filled from the model's defaults; Cancel submits nothing, Retrain starts the job."""
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(f"{no_policy_project}/lab?token={TOKEN}")
            tab = page.locator('.lm-TabBar-tab[data-id="jupyter-mlops-sidebar"]')
            tab.wait_for(timeout=90_000)
            tab.click()
            sidebar = page.locator("#jupyter-mlops-sidebar")
            model = sidebar.locator('[data-model-row="cancer"]')
            model.wait_for(timeout=30_000)
            before = len(mlops.retraining_jobs())  # the CI run that registered cancer@1
            retrain = model.locator('button[data-action="retrain"]')
            retrain.click()
            dialog = page.locator(".jp-Dialog")
            dialog.locator(".jp-mlops-retrain-form").wait_for(timeout=30_000)
            assert "Retrain cancer" in dialog.inner_text()
            assert "cancer@1 (production)" in dialog.inner_text()
            assert dialog.locator('input[name="promote"]').input_value() == "production"
            defaults = requests.get(
                f"{no_policy_project}/jupyter-mlops/api/retraining/defaults/cancer",
                headers={"Authorization": f"token {TOKEN}"},
                timeout=30,
            ).json()
            shown = dialog.locator('textarea[name="data"]').input_value()
            assert shown.splitlines() == [f"{k} = {v}" for k, v in defaults["data"].items()]
            assert (
                dialog.locator('textarea[name="gate"]').input_value().splitlines()
                == (defaults["gate"])
            )
            dialog.get_by_role("button", name="Cancel").click()
            dialog.wait_for(state="detached", timeout=30_000)
            assert len(mlops.retraining_jobs()) == before  # Cancel submits nothing
            retrain.click()
            dialog.locator(".jp-mlops-retrain-form").wait_for(timeout=30_000)
            dialog.get_by_role("button", name="Retrain").click()
            job = sidebar.locator("[data-job-row]", has_text="manual").first
            job.wait_for(timeout=60_000)
            # the job runs to its end (whatever its gate says), so nothing is left running
            job.locator(
                ".jp-mlops-badge", has_text=re.compile("promoted|not promoted|gate failed|failed")
            ).wait_for(timeout=240_000)
            assert len(mlops.retraining_jobs()) == before + 1
            page.screenshot(path=str(ARTIFACTS / "sidebar_retrain_form.png"))
        finally:
            browser.close()
