"""The runs explorer: ``runs_view()`` / ``%mlops runs`` as an ipywidgets table.

The runs matching the filter are read once into a DataFrame by ``tracking.search.runs``
(one SQL query, ~0.1 s for 10,000 runs); sorting and paging then happen in pandas, and
only the current page becomes widgets. Cell widgets are reused from page to page, so
paging and sorting send value updates, not new widget models.
"""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as widgets

from ..errors import MlopsError, ValidationError
from ..html import _STYLE, format_value
from ..store import Store
from ..tracking.search import runs as search_runs
from ..tracking.search import scope_text
from .fallback import ShownEverywhere, live_style, new_token

__all__ = ["RunsView", "runs_view"]

_FIXED = ["run_id", "name", "status", "start_time", "duration_s"]
_DEFAULT_MAX = 6
_ROW = "26px"  # every row of every column: keeps the cell columns and the checkboxes aligned
_CELL = (
    "<div style='font-size:12px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis;"
    f"max-width:240px;height:{_ROW};line-height:{_ROW};text-align:{{align}};"
    "border-bottom:1px solid var(--jp-border-color3,#eee)' title='{title}'>{text}</div>"
)
_STATUS = {"finished": "#1a7f37", "running": "#0969da", "failed": "#cf222e"}
# A column's cells shrink below their text (cut with an ellipsis, the full text in the
# tooltip) instead of spilling into the next column: the HTML widget and the content box
# ipywidgets wraps around its value would otherwise keep the width of the longest text.
_COLUMN_CLASS = "mlops-runs-col"
_GRID_CSS = (
    f"<style>.{_COLUMN_CLASS},.{_COLUMN_CLASS}>.widget-html-content,"
    f".{_COLUMN_CLASS}>.jupyter-widget-html-content{{min-width:0;overflow:hidden}}</style>"
)
# Free text (names, params, tags) shrinks when the table is wider than the notebook;
# ids, statuses, times and numbers keep their width (the table scrolls sideways instead).
_SHRINKS = {"name": "120px", "experiment": "100px"}
_SHRINK_PREFIXES = ("params.", "tags.")


def _track(column: str) -> str:
    """The CSS grid track of a column (see ``_SHRINKS``)."""
    if column in _SHRINKS:
        return f"minmax({_SHRINKS[column]}, max-content)"
    if column.startswith(_SHRINK_PREFIXES):
        return "minmax(64px, max-content)"
    return "max-content"


def _cell_title(column: str, value: Any, text: str) -> str:
    """A cell's tooltip: the whole value (a run id in full, not its first 8 characters)."""
    if column == "run_id" and isinstance(value, str):
        return value
    return text


def _cell_text(column: str, value: Any) -> str:
    """A cell's text: short run ids, readable times and numbers, blank for missing."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if column == "run_id":
        return str(value)[:8]
    if column == "start_time":
        return value.to_pydatetime(warn=False).astimezone().strftime("%Y-%m-%d %H:%M")
    if column == "duration_s":
        return f"{value:.2f} s"
    if hasattr(value, "item"):
        value = value.item()
    return format_value(value)


def _is_numeric(column: str) -> bool:
    return column.startswith("metrics.") or column == "duration_s"


def default_columns(frame: Any) -> list[str]:
    """The metrics, then the params whose values differ between the runs (a few of each);
    never a param ``runs()`` leaves out by default (``attrs["hidden_params"]``)."""
    metrics = [c for c in frame.columns if c.startswith("metrics.")][:_DEFAULT_MAX]
    hidden = set(frame.attrs.get("hidden_params") or ())
    params = [c for c in frame.columns if c.startswith("params.") and c not in hidden]
    varying = [c for c in params if frame[c].astype(str).nunique(dropna=True) > 1]
    return metrics + (varying or params)[:_DEFAULT_MAX]


class RunsView(ShownEverywhere, widgets.VBox):
    """A sortable, filterable, paged table of runs with row selection and Compare.

    State a notebook (or a test) can read: ``frame`` (the filtered and sorted runs),
    ``page``, ``selected`` (run ids), ``columns`` (shown params/metrics), ``page_rows()``.
    """

    def __init__(
        self,
        experiment: str | None = None,
        filter: str | None = None,
        page_size: int = 25,
        *,
        store: Store | None = None,
    ):
        if not isinstance(page_size, int) or page_size < 1:
            raise ValidationError(f"page_size must be a positive integer, got {page_size!r}.")
        self.experiment = experiment
        self.page_size = page_size
        self.page = 0
        self.selected: list[str] = []
        self._store = store
        self._token = new_token()
        self._syncing = False
        self._wanted: list[str] | None = None  # the user's column choice, kept across filters
        self.comparison: Any = None
        self._raw = self._read(filter or None)  # errors raise here
        self.scope: str | None = self._raw.attrs.get("experiment")  # None: every experiment
        from .theme import prewarm

        prewarm()  # Compare is one click away: load its chart runtime meanwhile
        self.frame = self._raw

        small = widgets.Layout(width="auto")
        self.header = widgets.HTML()
        self.filter_box = widgets.Text(
            value=filter or "",
            placeholder="metrics.accuracy > 0.9 and params.C < 1   (Enter to apply)",
            description="Filter",
            continuous_update=False,
            layout=widgets.Layout(width="60%"),
        )
        self.error = widgets.HTML()
        self.refresh_button = widgets.Button(description="Refresh", icon="refresh", layout=small)
        self.column_chooser = widgets.SelectMultiple(
            description="Columns", rows=6, layout=widgets.Layout(width="60%")
        )
        self.all_params = widgets.Checkbox(
            value=False,
            description="all params",
            indent=False,
            tooltip="also offer the params left at their defaults in every run",
            layout=widgets.Layout(width="auto"),
        )
        self.sort_by = widgets.Dropdown(description="Sort by", layout=widgets.Layout(width="320px"))
        self.descending = widgets.ToggleButton(
            value=False, description="descending", layout=widgets.Layout(width="120px")
        )
        self.prev_button = widgets.Button(description="‹ Prev", layout=small)
        self.next_button = widgets.Button(description="Next ›", layout=small)
        self.page_label = widgets.HTML()
        self.selection_label = widgets.HTML()
        self.compare_button = widgets.Button(
            description="Compare", icon="columns", button_style="primary", layout=small
        )
        self.clear_button = widgets.Button(description="Clear selection", layout=small)
        self.grid = widgets.GridBox(layout=widgets.Layout(grid_gap="0px 14px", overflow="auto"))
        self.output = widgets.Output()
        self._column_cells: list[widgets.HTML] = []
        self._box_column = widgets.VBox()
        self._boxes: list[widgets.Checkbox] = []
        self._headers: list[widgets.Button] = []
        self._shown: list[str] = []

        self._set_column_options(default_columns(self._raw))
        self.sort_by.options = list(self._raw.columns)
        self.sort_by.value = "start_time" if "start_time" in self._raw.columns else None
        self.descending.value = True
        self._sort()

        self.filter_box.observe(lambda _: self.apply_filter(), "value")
        self.refresh_button.on_click(lambda _: self.apply_filter())
        self.column_chooser.observe(self._columns_chosen, "value")
        self.all_params.observe(lambda _: self._offer_columns(), "value")
        self.sort_by.observe(lambda _: self._resort(), "value")
        self.descending.observe(lambda _: self._resort(), "value")
        self.prev_button.on_click(lambda _: self.go_to(self.page - 1))
        self.next_button.on_click(lambda _: self.go_to(self.page + 1))
        self.compare_button.on_click(lambda _: self.compare_selected())
        self.clear_button.on_click(lambda _: self._set_selection([]))

        super().__init__(
            [
                self.header,
                widgets.HBox([self.filter_box, self.refresh_button]),
                self.error,
                widgets.HBox(
                    [
                        self.column_chooser,
                        widgets.VBox(
                            [self.sort_by, self.descending, self.all_params],
                            layout=widgets.Layout(align_items="flex-end"),
                        ),
                    ]
                ),
                widgets.HBox([self.prev_button, self.page_label, self.next_button]),
                self.grid,
                widgets.HBox([self.compare_button, self.clear_button, self.selection_label]),
                self.output,
                live_style(self._token),
            ]
        )
        self._render()

    # -- state -------------------------------------------------------------------------

    @property
    def columns(self) -> list[str]:
        """The table's columns: run id, name, status, start, duration, then the chosen ones."""
        fixed = [c for c in _FIXED if c in self.frame.columns]
        if self.scope is None and self.frame["experiment"].nunique() > 1:
            fixed.insert(2, "experiment")
        return fixed + [c for c in self.column_chooser.value if c in self.frame.columns]

    @property
    def scope_text(self) -> str:
        """The runs' scope as the header says it: "experiment 'x'" or "all experiments"."""
        return scope_text(self.scope)

    @property
    def pages(self) -> int:
        return max(1, -(-len(self.frame) // self.page_size))

    def page_rows(self) -> Any:
        """The rows of the current page (a DataFrame slice)."""
        start = self.page * self.page_size
        return self.frame.iloc[start : start + self.page_size]

    # -- actions (what the buttons and boxes call) --------------------------------------

    def apply_filter(self, text: str | None = None) -> None:
        """Re-read the runs with the filter box's query; a bad query leaves the table as is."""
        if text is not None:
            self.filter_box.value = text  # the observer calls back here
            return
        try:
            raw = self._read(self.filter_box.value or None)
        except MlopsError as exc:
            self.error.value = _error_html(str(exc))
            return
        self.error.value = ""
        self._raw = raw
        self.scope = raw.attrs.get("experiment")
        wanted = default_columns(raw) if self._wanted is None else self._wanted
        self._set_column_options([c for c in wanted if c in raw.columns])
        sort = self.sort_by.value
        self._syncing = True
        self.sort_by.options = list(raw.columns)
        self.sort_by.value = sort if sort in raw.columns else "start_time"
        self._syncing = False
        self.page = 0
        self._sort()
        self._render()

    def sort(self, column: str, descending: bool = False) -> None:
        """Order the table by ``column`` (missing values last)."""
        self._syncing = True
        self.sort_by.value = column
        self.descending.value = descending
        self._syncing = False
        self._resort()

    def go_to(self, page: int) -> None:
        """Show page ``page`` (0-based, clamped to the pages there are)."""
        self.page = min(max(page, 0), self.pages - 1)
        self._render()

    def compare_selected(self) -> None:
        """Show ``compare()`` of the selected runs in the output area below the table."""
        from .compare import compare

        if len(self.selected) < 2:
            self.error.value = _error_html(
                "Select at least two runs (tick their boxes) to compare."
            )
            return
        try:
            comparison = compare(*self.selected, store=self._store)
        except MlopsError as exc:
            self.error.value = _error_html(str(exc))
            return
        self.error.value = ""
        self.output.outputs = (
            {
                "output_type": "display_data",
                "data": comparison._repr_mimebundle_(),
                "metadata": {},
            },
        )
        self.comparison = comparison

    # -- internals -----------------------------------------------------------------------

    def _read(self, filter: str | None) -> Any:
        """Every param is read (the chooser can offer them all); ``attrs["hidden_params"]``
        says which ``runs()`` leaves out by default, and the chooser starts without them."""
        return search_runs(self.experiment, filter, params="all", store=self._store)

    @property
    def hidden_params(self) -> list[str]:
        """The param columns the chooser leaves out unless "all params" is ticked: those
        left at their estimator's defaults in every run, the same in each."""
        return list(self._raw.attrs.get("hidden_params") or ())

    def _offer_columns(self) -> None:
        """The chooser's options follow "all params"; the chosen columns stay chosen."""
        self._set_column_options(list(self.column_chooser.value))
        self._render()

    def _set_column_options(self, chosen: list[str]) -> None:
        cols = self._raw.columns
        hidden = set() if self.all_params.value else set(self.hidden_params)
        options = (
            [c for c in cols if c.startswith("metrics.")]
            + [c for c in cols if c.startswith("params.") and (c not in hidden or c in chosen)]
            + [c for c in cols if c.startswith("tags.")]
        )
        self._syncing = True
        self.column_chooser.value = ()
        self.column_chooser.options = options
        self.column_chooser.value = tuple(c for c in chosen if c in options)
        self._syncing = False

    def _columns_chosen(self, change: dict[str, Any]) -> None:
        if self._syncing:
            return
        self._wanted = list(change["new"])
        self._render()

    def _resort(self) -> None:
        if self._syncing:
            return
        self.page = 0
        self._sort()
        self._render()

    def _sort(self) -> None:
        column = self.sort_by.value
        if column is None or column not in self._raw.columns:
            self.frame = self._raw
            return
        ascending = not self.descending.value
        try:
            self.frame = self._raw.sort_values(
                column, ascending=ascending, na_position="last", kind="stable"
            )
        except TypeError:  # a param holding numbers in some runs and text in others
            self.frame = self._raw.sort_values(
                column,
                ascending=ascending,
                na_position="last",
                kind="stable",
                key=lambda s: s.map(lambda v: None if v is None else str(v)),
            )

    def _header(self, column: str) -> widgets.Button:
        button = widgets.Button(
            tooltip=f"sort by {column}",
            layout=widgets.Layout(
                width="auto", min_width="0", max_width="240px", height="26px", padding="0 2px"
            ),
        )
        button.style.button_color = "transparent"
        button.style.font_weight = "bold"
        button.on_click(lambda _: self._header_clicked(column))
        return button

    def _header_clicked(self, column: str) -> None:
        if column == self.sort_by.value:
            self.descending.value = not self.descending.value
        else:
            self.sort(column, descending=_is_numeric(column))

    def _build_grid(self) -> None:
        """(Re)create the table's widgets: only when the shown columns change.

        One HTML widget per column holds that column's cells for the page (fixed row
        height, so the columns and the checkbox column line up): a page is a few dozen
        widget models, not one per cell.
        """
        old = [*self._headers, *self._boxes, *self._column_cells, self._box_column]
        for widget in [*old, getattr(self, "_page_box", None)]:
            if widget is not None:
                widget.close()
        self._shown = self.columns
        row = widgets.Layout(width="22px", height=_ROW, margin="0")
        self._page_box = widgets.Checkbox(indent=False, tooltip="select this page", layout=row)
        self._page_box.observe(self._page_box_changed, "value")
        self._headers = [self._header(c) for c in self._shown]
        self._boxes = []
        for i in range(self.page_size):
            box = widgets.Checkbox(indent=False, layout=row)
            box.observe(lambda change, i=i: self._box_changed(i, change["new"]), "value")
            self._boxes.append(box)
        self._box_column = widgets.VBox(layout=widgets.Layout(margin="0"))
        self._column_cells = []
        for _ in self._shown:
            cells = widgets.HTML(layout=widgets.Layout(margin="0", min_width="0"))
            cells.add_class(_COLUMN_CLASS)
            self._column_cells.append(cells)
        self.grid.layout.grid_template_columns = "22px " + " ".join(map(_track, self._shown))
        self.grid.children = [
            self._page_box,
            *self._headers,
            self._box_column,
            *self._column_cells,
        ]

    def _render(self) -> None:
        if self._syncing:
            return
        if self._shown != self.columns:
            self._build_grid()
        for column, header in zip(self._shown, self._headers, strict=True):
            label = column.split(".", 1)[1] if "." in column else column.replace("_", " ")
            if column == self.sort_by.value:
                label += " ▼" if self.descending.value else " ▲"
            header.description = label
        rows = self.page_rows()
        ids = list(rows["run_id"])
        self._syncing = True
        for i, run_id in enumerate(ids):
            self._boxes[i].value = run_id in self.selected
        self._page_box.value = bool(ids) and all(r in self.selected for r in ids)
        self._syncing = False
        self._box_column.children = self._boxes[: len(ids)]
        for column, cells in zip(self._shown, self._column_cells, strict=True):
            align = "right" if _is_numeric(column) else "left"
            parts = []
            for value in rows[column]:
                text = _cell_text(column, value)
                shown = html.escape(text)
                if column == "status":
                    shown = f"<span style='color:{_STATUS.get(text, '#9a6700')}'>●</span> {shown}"
                title = html.escape(_cell_title(column, value, text))
                parts.append(_CELL.format(align=align, title=title, text=shown))
            cells.value = "".join(parts)
        self.header.value = (
            _GRID_CSS + "<div style='font-size:13px;margin:2px 0 4px'><b>Runs</b> "
            f"<span style='opacity:.75'>· {html.escape(self.scope_text, quote=False)}</span></div>"
        )
        self.page_label.value = f"<span style='padding:0 10px'>{self._page_text()}</span>"
        self.prev_button.disabled = self.page == 0
        self.next_button.disabled = self.page >= self.pages - 1
        self._update_selection_label()

    def _page_text(self) -> str:
        total = len(self.frame)
        if not total:
            return "no runs" + (" match the filter" if self.filter_box.value.strip() else "")
        start = self.page * self.page_size
        end = min(start + self.page_size, total)
        return f"{start + 1:,}–{end:,} of {total:,}"

    def _box_changed(self, i: int, ticked: bool) -> None:
        if self._syncing:
            return
        run_id = self.page_rows()["run_id"].iloc[i]
        if ticked and run_id not in self.selected:
            self.selected.append(run_id)
        elif not ticked and run_id in self.selected:
            self.selected.remove(run_id)
        self._update_selection_label()

    def _page_box_changed(self, change: dict[str, Any]) -> None:
        if self._syncing:
            return
        ids = list(self.page_rows()["run_id"])
        if change["new"]:
            self._set_selection(self.selected + [r for r in ids if r not in self.selected])
        else:
            self._set_selection([r for r in self.selected if r not in ids])

    def _set_selection(self, run_ids: list[str]) -> None:
        self.selected = list(run_ids)
        self._render()

    def _update_selection_label(self) -> None:
        n = len(self.selected)
        self.selection_label.value = f"<span style='padding:0 10px'>{n} selected</span>"
        self.compare_button.disabled = n < 2

    # -- static display ------------------------------------------------------------------

    def _repr_html_(self) -> str:
        """The current page as an HTML table: displayed as its own output before the widget,
        for saved and exported notebooks where the widget does not run."""
        esc = html.escape
        columns = self.columns
        head = "".join(f"<th>{esc(c)}</th>" for c in columns)
        body = "".join(
            "<tr>"
            + "".join(
                f"<td>{esc(_cell_text(c, v))}</td>" for c, v in zip(columns, row, strict=True)
            )
            + "</tr>"
            for row in self.page_rows()[columns].itertuples(index=False, name=None)
        )
        query = self.filter_box.value.strip()
        where = f" · filter <code>{esc(query)}</code>" if query else ""
        return (
            _STYLE
            + "<div class=mlops-card><div class=hd><span class=nm>Runs</span>"
            + f"<span class=mut>{esc(self.scope_text, quote=False)} · {self._page_text()}{where}</span></div>"
            + f"<table><tr>{head}</tr>{body}</table></div>"
        )

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any] | None:
        """The widget and the HTML table in one bundle, for hosts that take one bundle (an
        ``Output`` widget); ``display()`` shows two outputs instead (see ``fallback``)."""
        bundle = super()._repr_mimebundle_(**kwargs)
        return {**(bundle or {}), "text/html": self._repr_html_()}

    def __repr__(self) -> str:
        return f"<RunsView {self._page_text()}>"


def _error_html(message: str) -> str:
    return (
        "<pre style='color:#cf222e;font-size:12px;margin:2px 0;white-space:pre-wrap'>"
        + html.escape(message)
        + "</pre>"
    )


def runs_view(
    experiment: str | None = None,
    filter: str | None = None,
    page_size: int = 25,
    *,
    store: Store | None = None,
) -> RunsView:
    """A sortable, filterable table of runs; tick runs and press Compare to compare them.

    ``experiment``: the default experiment's runs when ``None``, every experiment's with
    ``"*"``, or one name; the header says which. ``filter`` uses the query language of ``mlops.runs(filter=...)``.
    """
    return RunsView(experiment, filter, page_size, store=store)
