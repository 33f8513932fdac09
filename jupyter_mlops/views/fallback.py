"""Views that read everywhere: the static HTML as its own output, then the widget.

A front end shows one MIME type per output, and it prefers the widget view wherever it
has a widget manager, even one with nothing to draw: nbconvert's HTML exporter picks the
widget view whenever the notebook holds widget state (``--execute`` saves it), and the
page then needs a script from a CDN; JupyterLab reopening a notebook with no kernel says
"model not found". A ``text/html`` in the widget's own bundle is never reached there. So
a view displays two outputs:

1. ``text/html`` only: the static rendering, wrapped in ``<div class="mlops-static
   mlops-static-TOKEN">``. Every renderer reads it: exported HTML, GitHub, a reopened
   notebook, anything that takes only HTML.
2. the widget view (and a short ``text/plain``).

The widget holds a hidden ``<style>`` that hides output 1 as soon as the widget is drawn
(by a live kernel, or from saved widget state), so a live notebook shows the widget
alone, unchanged. Output 1 holds a ``<style>`` that hides output 2 while it has drawn
nothing (an exported page without its widget script, "Loading widget...", "model not
found"). Both use ``:has()`` on JupyterLab's output-area classes, which nbconvert's lab
template also writes; elsewhere only the static part is hidden by a live widget.
"""

from __future__ import annotations

import uuid
from typing import Any

__all__ = ["ShownEverywhere", "display_view", "live_style", "new_token", "static_html"]

_CHILD = ".jp-OutputArea-child"
_WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


def new_token() -> str:
    """A token naming one view's static output, shared by the widget that replaces it."""
    return uuid.uuid4().hex[:16]


def static_html(body: str, token: str) -> str:
    """``body`` as the stand-in output of the widget displayed after it (see the module)."""
    own = f".mlops-static-{token}"
    # the next output, while it holds no drawn widget (a Lumino widget inside the output)
    idle = f"{_CHILD}:has({own}) + {_CHILD}:not(:has(.jp-OutputArea-output .lm-Widget))"
    return (
        f"<style>{idle}{{display:none}}</style>"
        f"<div class='mlops-static mlops-static-{token}'>{body}</div>"
    )


def live_style(token: str) -> Any:
    """A hidden HTML widget whose ``<style>`` hides the static output of ``token``: put it
    in the view's widget tree, so that drawing the widget removes its stand-in."""
    import ipywidgets as widgets

    own = f".mlops-static-{token}"
    css = f"{own}{{display:none!important}}{_CHILD}:has({own}){{display:none!important}}"
    return widgets.HTML(f"<style>{css}</style>", layout=widgets.Layout(display="none"))


def display_view(static: str, widget: Any, token: str, text: str) -> None:
    """Display a view: the static HTML as one output, then the widget as the next one."""
    from IPython.display import display

    display({"text/html": static_html(static, token)}, raw=True)
    represent = widget._repr_mimebundle_  # None once the widget is closed
    bundle = (represent() if callable(represent) else None) or {}
    if _WIDGET_MIME in bundle:
        display({_WIDGET_MIME: bundle[_WIDGET_MIME], "text/plain": text}, raw=True)


class ShownEverywhere:
    """Mixin for a view widget with a ``_repr_html_`` and a ``live_style(self._token)``
    child: IPython displays it as the two outputs described in the module docstring."""

    _token: str

    def _ipython_display_(self) -> None:
        display_view(self._repr_html_(), self, self._token, repr(self))  # type: ignore[attr-defined]
