"""One look for every chart the views draw, and charts that render with no internet.

``chart_widget(chart)`` turns an altair chart into a widget that draws offline:

* ``alt.JupyterChart`` in offline mode when ``anywidget`` and ``vl-convert-python`` are
  installed (offline mode bundles Vega from vl-convert; it is enabled once per process);
* otherwise an ``Output`` widget holding the spec as ``application/vnd.vegalite.v5+json``,
  which JupyterLab draws with the Vega-Lite it ships (5.x, no network). altair 6 writes
  Vega-Lite 6 specs; the plain line and point charts drawn here read the same in 5, so
  only the ``$schema`` is relabelled.

``chart_html(chart)`` is the static counterpart for saved notebooks: inline SVG when
vl-convert is installed, else an empty string (callers show a table instead).
"""

from __future__ import annotations

import html
import json
import threading
from functools import cache
from typing import Any

__all__ = [
    "HEIGHT",
    "PALETTE",
    "THEME",
    "WIDTH",
    "chart_backend",
    "chart_html",
    "chart_spec",
    "chart_widget",
    "prewarm",
    "theme_config",
]

THEME = "jupyter_mlops"
WIDTH = 560
HEIGHT = 260
# Colour-blind-safe categorical palette (Okabe–Ito; grey instead of black, which would
# vanish on a dark JupyterLab theme, and the pale yellow last).
PALETTE = [
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#CC79A7",
    "#56B4E9",
    "#D55E00",
    "#999999",
    "#F0E442",
]
_FONT = "system-ui, -apple-system, 'Segoe UI', sans-serif"
_V5_SCHEMA = "https://vega.github.io/schema/vega-lite/v5.json"
_V5_MIME = "application/vnd.vegalite.v5+json"


def theme_config() -> dict[str, Any]:
    """The altair theme: sizes for a ~700 px notebook column, fonts, palette, tooltips."""
    axis = {
        "labelFontSize": 11,
        "titleFontSize": 12,
        "titleFontWeight": 600,
        "gridColor": "#e5e7eb",
        "domainColor": "#9ca3af",
        "tickColor": "#9ca3af",
    }
    return {
        "config": {
            "view": {"continuousWidth": WIDTH, "continuousHeight": HEIGHT, "stroke": None},
            "font": _FONT,
            "axis": axis,
            "legend": {"labelFontSize": 11, "titleFontSize": 12, "orient": "right"},
            "title": {"fontSize": 13, "anchor": "start", "fontWeight": 600},
            "range": {"category": PALETTE},
            "line": {"strokeWidth": 2},
            "point": {"size": 60, "filled": True},
            "mark": {"tooltip": {"content": "encoding"}},
        }
    }


@cache
def _register() -> None:
    import altair as alt

    alt.theme.register(THEME, enable=False)(theme_config)


def chart_spec(chart: Any) -> dict[str, Any]:
    """The chart's Vega-Lite spec (a plain dict) with our theme applied."""
    import altair as alt

    _register()
    with alt.theme.enable(THEME):
        return chart.to_dict()


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


@cache
def chart_backend() -> str:
    """``"jupyterchart"`` (offline JupyterChart) or ``"vegalite-v5"`` (JupyterLab's Vega)."""
    if _importable("anywidget") and _importable("vl_convert"):
        import altair as alt

        try:
            alt.JupyterChart.enable_offline()
            return "jupyterchart"
        except Exception:  # a broken vl-convert install: fall back, never fail the view
            pass
    return "vegalite-v5"


def prewarm() -> None:
    """Load altair and the offline chart runtime in the background (a few seconds cold), so
    the first chart a view draws does not wait for them. Views with charts one click away
    (the runs explorer's Compare) call this when they open."""

    def work() -> None:
        try:
            chart_backend()
            if _importable("vl_convert"):
                import vl_convert as vlc

                vlc.vegalite_to_svg({"mark": "point", "data": {"values": [{}]}})
        except Exception:
            pass

    threading.Thread(target=work, daemon=True, name="mlops-chart-warm-up").start()


def chart_widget(chart: Any) -> Any:
    """An ipywidget that draws ``chart`` with no network access (see the module docstring)."""
    import ipywidgets as widgets

    if chart_backend() == "jupyterchart":
        import altair as alt

        _register()
        with alt.theme.enable(THEME):
            return alt.JupyterChart(chart)
    spec = chart_spec(chart)
    spec["$schema"] = _V5_SCHEMA
    out = widgets.Output()
    out.outputs = (
        {
            "output_type": "display_data",
            "data": {_V5_MIME: spec, "text/plain": "<chart: needs JupyterLab to draw>"},
            "metadata": {},
        },
    )
    return out


def chart_html(chart: Any) -> str:
    """Inline SVG of ``chart`` for static HTML, or ``""`` when vl-convert is not installed."""
    if not _importable("vl_convert"):
        return ""
    import vl_convert as vlc

    try:
        svg = vlc.vegalite_to_svg(json.dumps(chart_spec(chart)))
    except Exception as exc:  # a static fallback must never break the display
        return f"<div class=mut>chart not rendered: {html.escape(str(exc))}</div>"
    return f"<div>{svg}</div>"
