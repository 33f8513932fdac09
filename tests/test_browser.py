"""The notebook views in a real JupyterLab, driven by Playwright in Debian's chromium.

JupyterLab runs on 127.0.0.1 with a token; the browser blocks every request that does
not go there, so the views must render with no internet. Screenshots are kept under
``tests/artifacts/``.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from .lab_helpers import CHROMIUM, LAUNCH_ARGS, TOKEN, running_lab

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "tests" / "artifacts"


@pytest.fixture
def lab(tmp_path):
    """A JupyterLab server on 127.0.0.1 serving a copy of examples/registry.ipynb."""
    root = tmp_path / "lab"
    root.mkdir()
    shutil.copy(REPO / "examples" / "registry.ipynb", root / "registry.ipynb")
    with running_lab(root, tmp_path / "store", tmp_path / "lab.log") as url:
        yield url


def _run_all(page) -> None:
    """Run every cell from the Run menu, again if a cold kernel swallowed the first click."""
    started = page.locator(".jp-CodeCell .jp-InputPrompt", has_text="[*]").or_(
        page.locator(".jp-CodeCell .jp-InputPrompt", has_text="[1]")
    )
    for _attempt in range(4):
        page.locator(".jp-CodeCell .jp-InputArea-editor").first.click()
        page.keyboard.press("Escape")
        page.click("text=Run", timeout=10_000)
        page.click("text=Run All Cells", timeout=10_000)
        try:
            started.first.wait_for(state="attached", timeout=30_000)
            return
        except Exception:
            continue
    pytest.fail("JupyterLab never started running the notebook")


def test_views_render_offline_in_jupyterlab(lab):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    blocked: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})

        def route(r):
            target = r.request.url
            if target.startswith(("http://127.0.0.1", "data:", "blob:")):
                r.continue_()
            else:
                blocked.append(target)
                r.abort()

        page.route("**/*", route)
        page.goto(f"{lab}/lab/tree/registry.ipynb?token={TOKEN}")
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=90_000)
        page.wait_for_selector(
            ".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=90_000
        )
        _run_all(page)
        # the last cell's output lists the audit events (text found only in outputs); the
        # notebook is windowed, so keep its end in view while waiting for it
        events = page.locator(".jp-OutputArea-output", has_text="alias_set")
        deadline = time.monotonic() + 240
        while events.count() == 0:
            assert time.monotonic() < deadline, "the last cell's output never appeared"
            page.locator(".jp-NotebookPanel .jp-WindowedPanel-outer").first.evaluate(
                "e => { e.scrollTop = e.scrollHeight; }"
            )
            page.wait_for_timeout(500)
        events.first.scroll_into_view_if_needed()

        # a drawn widget: an output holding a Lumino widget (the static table before it holds none)
        drawn = page.locator(".jp-OutputArea-output:has(.lm-Widget)")
        runs_view = drawn.filter(has_text="1–3 of 3").first
        try:  # widgets render after their comm messages arrive: give them time
            runs_view.wait_for(state="attached", timeout=120_000)
        finally:
            page.screenshot(path=str(ARTIFACTS / "notebook_after_run.png"), full_page=True)
        runs_view.scroll_into_view_if_needed(timeout=60_000)
        assert runs_view.is_visible()
        runs_view.screenshot(path=str(ARTIFACTS / "runs_view.png"))

        compare = drawn.filter(has_text="Compare").filter(has_text="Curves").first
        compare.get_by_text("Curves", exact=True).first.click()
        marks = compare.locator("svg .mark-line path, svg .mark-symbol path, canvas")
        deadline = time.monotonic() + 30
        while marks.count() == 0 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert marks.count() > 0, "the loss curves did not draw"
        compare.screenshot(path=str(ARTIFACTS / "compare_curves.png"))
        registry = drawn.filter(has_text="Set alias").first
        registry.scroll_into_view_if_needed(timeout=60_000)
        assert registry.get_by_text("production").first.is_visible()
        registry.screenshot(path=str(ARTIFACTS / "registry_view.png"))
        # each view's static table (for saved notebooks) is there, and hidden by its widget
        statics = page.locator(".mlops-static")
        assert statics.count() == 3
        shown = [statics.nth(i).evaluate("e => getComputedStyle(e).display") for i in range(3)]
        assert shown == ["none"] * 3
        browser.close()
    assert all(u.startswith(("http", "ws")) for u in blocked)  # only outside requests were refused


LONG_RUN = "a-sweep-of-gradient-boosting-with-a-really-long-descriptive-run-name-number-"
LONG_EXPERIMENT = "churn-prediction-for-the-enterprise-segment-with-an-overly-long-experiment-name"


@pytest.fixture
def long_names_lab(tmp_path):
    """JupyterLab serving a notebook that tracks runs with long names in two experiments
    and opens the runs explorer over every experiment."""
    import nbformat

    setup = (
        "import jupyter_mlops as mlops\n"
        "for i in range(3):\n"
        f"    with mlops.track({LONG_RUN!r} + str(i), experiment={LONG_EXPERIMENT!r} + str(i % 2),"
        " capture=False) as run:\n"
        "        run.log_param('learning_rate', 0.1 * (i + 1))\n"
        "        run.log_metric('accuracy', 0.8 + i / 100)\n"
    )
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(setup), nbformat.v4.new_code_cell('mlops.runs_view("*")')],
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
    )
    root = tmp_path / "lab"
    root.mkdir()
    nbformat.write(nb, root / "long_names.ipynb")
    with running_lab(root, tmp_path / "store", tmp_path / "lab.log") as url:
        yield url


def test_runs_explorer_columns_never_overprint(long_names_lab):
    """Long run and experiment names are cut with an ellipsis inside their own column (the
    full text in the tooltip): no cell's box runs into its neighbour's."""
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        page.goto(f"{long_names_lab}/lab/tree/long_names.ipynb?token={TOKEN}")
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=90_000)
        page.wait_for_selector(
            ".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=90_000
        )
        _run_all(page)
        view = page.locator(".jp-OutputArea-output:has(.lm-Widget)").filter(has_text="1–3 of 3")
        view.first.wait_for(state="attached", timeout=120_000)
        view = view.first
        view.scroll_into_view_if_needed(timeout=60_000)
        columns = view.locator(".widget-gridbox > .widget-html")
        deadline = time.monotonic() + 30
        while columns.count() < 5 and time.monotonic() < deadline:
            page.wait_for_timeout(250)
        view.screenshot(path=str(ARTIFACTS / "runs_view_long_names.png"))
        n = columns.count()
        assert n >= 6  # run id, name, experiment, status, start, duration, ...
        texts = [
            columns.nth(i).locator("div[title]").first.get_attribute("title") for i in range(n)
        ]
        assert any(t.startswith(LONG_EXPERIMENT) for t in texts), texts
        headers = view.locator(".widget-gridbox > button")
        assert headers.count() == n
        heads = [headers.nth(i).bounding_box() for i in range(n)]
        for i in range(n - 1):
            assert heads[i]["x"] + heads[i]["width"] <= heads[i + 1]["x"] + 0.5
        for row in range(3):
            cells = [columns.nth(i).locator("div[title]").nth(row) for i in range(n)]
            boxes = [c.bounding_box() for c in cells]
            for i in range(n - 1):
                left, right = boxes[i], boxes[i + 1]
                assert left["x"] + left["width"] <= right["x"] + 0.5, (
                    f"{cells[i].get_attribute('title')!r} runs into "
                    f"{cells[i + 1].get_attribute('title')!r}"
                )
            name_cell = cells[1]
            full = name_cell.get_attribute("title")
            assert full.startswith(LONG_RUN)
            # cut with an ellipsis: the text is wider than its box, which clips it
            clipped = name_cell.evaluate(
                "e => [e.scrollWidth > e.clientWidth, getComputedStyle(e).textOverflow]"
            )
            assert clipped == [True, "ellipsis"]
        browser.close()
