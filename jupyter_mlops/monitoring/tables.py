"""``mlops.alerts()``'s DataFrame: every message shown whole."""

from __future__ import annotations

from typing import Any

import pandas as pd

__all__ = ["AlertsFrame"]


class AlertsFrame(pd.DataFrame):
    """A pandas DataFrame whose displays (HTML in a notebook, text elsewhere) show every
    alert message in full, wrapped by the notebook, where pandas would cut text at 50
    characters; selections and slices (``frame[["kind", "message"]]``) keep that."""

    @property
    def _constructor(self) -> Any:
        return AlertsFrame

    def _repr_html_(self) -> str | None:
        with pd.option_context("display.max_colwidth", None):
            return super()._repr_html_()

    def __repr__(self) -> str:
        # one line per alert, however wide: a message folded into "..." says nothing
        with pd.option_context(
            "display.max_colwidth", None, "display.width", None, "display.max_columns", None
        ):
            return super().__repr__()
