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
