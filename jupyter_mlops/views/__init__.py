"""In-notebook views (ipywidgets + altair): the runs explorer and run comparison.

Each view also has a static ``_repr_html_`` for saved notebooks. ipywidgets and altair
load only when a view is first built, so importing this package stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

# Imported eagerly (it loads no widget library) so that the function ``compare``, not
# the submodule of the same name, is what ``jupyter_mlops.views.compare`` names.
from .compare import Comparison, compare

if TYPE_CHECKING:
    from .runs import RunsView, runs_view

__all__ = ["Comparison", "RunsView", "compare", "runs_view"]


def __getattr__(name: str) -> Any:
    if name in ("RunsView", "runs_view"):
        from . import runs

        value = getattr(runs, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
