"""Saved and exported notebooks show every view.

The examples are executed headless and exported with ``jupyter nbconvert --to html
--execute``, as CI reports are made, then opened in Debian's chromium with every request
refused but the file itself: no network and no kernel, as a reader of the report has.
Each view (runs explorer, compare, registry panel, monitoring panel) must show its table.
Screenshots are kept under ``tests/artifacts/``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .lab_helpers import CHROMIUM, LAUNCH_ARGS

pytestmark = [pytest.mark.browser, pytest.mark.notebook]

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "tests" / "artifacts"


def export_html(name: str, tmp_path: Path, store_dir: Path) -> Path:
    """``jupyter nbconvert --to html --execute examples/<name>`` on the store at
    ``store_dir``; returns the HTML file."""
    notebook = tmp_path / name
    shutil.copy(REPO / "examples" / name, notebook)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLOPS_")}
    env.update(MLOPS_HOME=str(store_dir), JPY_SESSION_NAME=str(notebook))
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    done = subprocess.run(
        [sys.executable, "-m", "jupyter", "nbconvert", "--to", "html", "--execute", name],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return notebook.with_suffix(".html")


def read_views(html_file: Path, views: dict[str, str]) -> dict[str, list[list[str]]]:
    """Open ``html_file`` offline in chromium; for each view (name → a text only its output
    holds) the visible rows of the tables of the first visible output holding that text."""
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    refused: list[str] = []
    found: dict[str, list[list[str]]] = {}
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
        for view, text in views.items():
            outputs = page.locator(".jp-OutputArea-output", has_text=text)
            shown = [outputs.nth(i) for i in range(outputs.count()) if outputs.nth(i).is_visible()]
            if not shown:
                found[view] = []
                continue
            rows = shown[0].locator("tr")
            found[view] = [
                [c.strip() for c in rows.nth(i).locator("td, th").all_inner_texts()]
                for i in range(rows.count())
                if rows.nth(i).is_visible()
            ]
        browser.close()
    assert refused, "the exported page asked for nothing outside: the test would not show it"
    return found


def cells(rows: list[list[str]]) -> set[str]:
    return {c for row in rows for c in row}


def test_registry_example_exports_every_view(tmp_path, store_dir):
    html_file = export_html("registry.ipynb", tmp_path, store_dir)
    views = read_views(
        html_file,
        {"runs": "1–3 of 3", "compare": "Compare C=", "registry": "Model registry"},
    )
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
