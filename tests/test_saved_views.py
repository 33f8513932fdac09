"""Saved and exported notebooks show every view.

The examples are executed headless and exported with ``jupyter nbconvert --to html
--execute``, as CI reports are made, then opened in Debian's chromium with every request
refused but the file itself: no network and no kernel, as a reader of the report has.
Each view (runs explorer, compare, registry panel, monitoring panel) must show its table.
Screenshots are kept under ``tests/artifacts/``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .lab_helpers import CHROMIUM, LAUNCH_ARGS

pytestmark = [pytest.mark.browser, pytest.mark.notebook]

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "tests" / "artifacts"
LOCAL = ("http://127.0.0.1", "ws://127.0.0.1", "file:", "data:", "blob:")


def export_html(name: str, tmp_path: Path, store_dir: Path) -> Path:
    """``jupyter nbconvert --to html --execute examples/<name>`` on the store at
    ``store_dir``; returns the HTML file."""
    return _nbconvert(name, tmp_path, store_dir, "html").with_suffix(".html")


def _nbconvert(name: str, tmp_path: Path, store_dir: Path, to: str) -> Path:
    notebook = tmp_path / name
    shutil.copy(REPO / "examples" / name, notebook)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLOPS_")}
    env.update(MLOPS_HOME=str(store_dir), JPY_SESSION_NAME=str(notebook))
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    done = subprocess.run(
        [sys.executable, "-m", "jupyter", "nbconvert", "--to", to, "--execute", name],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return notebook


def export_notebook(name: str, tmp_path: Path, store_dir: Path) -> Path:
    """``jupyter nbconvert --to notebook --execute``: the notebook as saved after a headless
    run (with the widget state nbclient stores); returns the executed notebook."""
    return _nbconvert(name, tmp_path, store_dir, "notebook").with_suffix(".nbconvert.ipynb")


def visible_tables(page, views: dict[str, str]) -> dict[str, list[list[str]]]:
    """For each view (name → a text only its outputs hold), the visible rows of the tables
    in the first visible output holding that text."""
    found: dict[str, list[list[str]]] = {}
    for view, text in views.items():
        outputs = page.locator(".jp-OutputArea-output", has_text=text)
        for i in range(outputs.count()):  # JupyterLab skips drawing cells out of view
            outputs.nth(i).evaluate("e => e.scrollIntoView()")
        shown = [outputs.nth(i) for i in range(outputs.count()) if outputs.nth(i).is_visible()]
        rows = shown[0].locator("tr") if shown else None
        found[view] = [
            [c.strip() for c in rows.nth(i).locator("td, th").all_inner_texts()]
            for i in range(rows.count() if rows else 0)
            if rows.nth(i).is_visible()
        ]
    return found


def read_views(html_file: Path, views: dict[str, str]) -> dict[str, list[list[str]]]:
    """Open ``html_file`` offline in chromium and read its views (see ``visible_tables``)."""
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    refused: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        page = browser.new_page(viewport={"width": 1300, "height": 1000})

        def route(r):
            if r.request.url.startswith(("file:", "data:", "blob:")):
                r.continue_()
            else:
                refused.append(r.request.url)
                r.abort()

        page.route("**/*", route)
        page.goto(html_file.as_uri())
        page.wait_for_load_state("load")
        page.screenshot(path=str(ARTIFACTS / f"export_{html_file.stem}.png"), full_page=True)
        card = page.locator(".mlops-card").first  # the first run card (README's picture)
        if card.count():
            card.scroll_into_view_if_needed()
            assert card.is_visible() and card.bounding_box()["height"] > 40
            card.screenshot(path=str(ARTIFACTS / f"run_card_{html_file.stem}.png"))
        found = visible_tables(page, views)
        browser.close()
    assert refused, "the exported page asked for nothing outside: the test would not show it"
    return found


def cells(rows: list[list[str]]) -> set[str]:
    return {c for row in rows for c in row}


REGISTRY_VIEWS = {"runs": "1–3 of 3", "compare": "Compare C=", "registry": "Model registry"}


def check_registry_views(views: dict[str, list[list[str]]]) -> None:
    """The three views of examples/registry.ipynb show their tables with their rows."""
    runs, compare, registry = views["runs"], views["compare"], views["registry"]
    # the runs explorer: a header row and one row per run
    assert len(runs) == 4 and {"C=0.01", "C=0.1", "C=1.0"} <= cells(runs), runs
    assert "metrics.accuracy" in runs[0]
    # compare: params and metrics side by side
    assert {"accuracy", "loss", "C"} <= cells(compare), compare
    assert {"0.01", "0.1", "1"} <= cells(compare)
    # the registry panel: the versions of the model with the alias
    assert any("production" in c for c in cells(registry)), registry
    assert any(row[:1] == ["1"] for row in registry), registry


def test_registry_example_exports_every_view(tmp_path, store_dir):
    html_file = export_html("registry.ipynb", tmp_path, store_dir)
    check_registry_views(read_views(html_file, REGISTRY_VIEWS))


def test_jupyterlab_reopening_the_saved_notebook_shows_every_view(tmp_path, store_dir, monkeypatch):
    """The notebook run headless and saved, then reopened in JupyterLab, whose new kernel
    has none of its widgets. Untrusted (as nbconvert leaves it), the tables stand in for
    the widgets. Trusted and saved as JupyterLab saves it (no widget state),
    the tables stand in and the "model not found" outputs are hidden; trusted with the
    widget state nbclient keeps, the widgets draw from it and hide the tables."""
    from playwright.sync_api import sync_playwright

    from .lab_helpers import TOKEN, running_lab

    (tmp_path / "run").mkdir()
    executed = export_notebook("registry.ipynb", tmp_path / "run", store_dir)
    saved = json.loads(executed.read_text())
    assert "widgets" in saved["metadata"]
    root = tmp_path / "lab"
    root.mkdir()
    (root / "trusted_with_state.ipynb").write_text(json.dumps(saved))
    del saved["metadata"]["widgets"]
    for name in ("untrusted", "trusted"):
        (root / f"{name}.ipynb").write_text(json.dumps(saved))
    # the notebook signatures of this test only, shared by `jupyter trust` and the server
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "jupyter-data"))
    trust = [sys.executable, "-m", "jupyter", "trust", "trusted.ipynb", "trusted_with_state.ipynb"]
    subprocess.run(trust, cwd=root, check=True, capture_output=True, timeout=60)

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with (
        running_lab(root, store_dir, tmp_path / "lab.log") as url,
        sync_playwright() as p,
    ):
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        for name in ("untrusted", "trusted", "trusted_with_state"):
            # a page and a workspace of its own: one notebook's styles never reach another's
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.route(
                "**/*",
                lambda r: r.continue_() if r.request.url.startswith(LOCAL) else r.abort(),
            )
            page.goto(f"{url}/lab/workspaces/{name}/tree/{name}.ipynb?token={TOKEN}")
            page.locator(".jp-OutputArea-output", has_text="alias_set").first.wait_for(
                state="attached", timeout=90_000
            )
            loading = page.locator(".jp-OutputArea-output", has_text="Loading widget")
            deadline = time.monotonic() + 90
            while loading.count() and time.monotonic() < deadline:  # the manager settles
                time.sleep(0.5)
            assert not loading.count()
            page.screenshot(path=str(ARTIFACTS / f"reopened_{name}.png"))
            statics = page.locator(".mlops-static")
            assert statics.count() == 3
            display = [
                statics.nth(i).evaluate("e => getComputedStyle(e).display") for i in range(3)
            ]
            if name != "trusted_with_state":
                check_registry_views(visible_tables(page, REGISTRY_VIEWS))
                assert "none" not in display
                failed = page.locator(".jp-OutputArea-output", has_text="model not found")
                assert failed.count() == 3
                if name == "trusted":  # an untrusted page drops the <style> that hides them
                    assert not [i for i in range(3) if failed.nth(i).is_visible()]
            else:
                drawn = page.locator(".jp-OutputArea-output:has(.lm-Widget)")
                for text, inside in [
                    ("1–3 of 3", "C=0.01"),
                    ("Curves", "Compare C="),
                    ("Set alias", "production"),
                ]:
                    widget = drawn.filter(has_text=text).first
                    widget.scroll_into_view_if_needed(timeout=30_000)
                    assert widget.is_visible() and inside in widget.inner_text()
                assert display == ["none"] * 3
            page.close()
        browser.close()


def test_monitoring_example_exports_the_panel(tmp_path, store_dir):
    from jupyter_mlops.serving.launcher import stop_launcher

    from .serving_helpers import processes_mentioning

    try:
        html_file = export_html("monitoring.ipynb", tmp_path, store_dir)
    finally:
        stop_launcher(store_dir)
    assert processes_mentioning(str(store_dir)) == []
    views = read_views(html_file, {"monitor": "predictions in the last 1h"})
    panel = cells(views["monitor"])
    # the drift table (every served feature) and the alerts the check raised
    assert {"radius", "texture", "smoothness", "symmetry"} <= panel, views["monitor"]
    assert "drifted" in panel and "feature_drift" in panel
