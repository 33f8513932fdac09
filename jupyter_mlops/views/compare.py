"""``compare(run_a, run_b, ...)``: runs side by side, as a widget and as static HTML.

``compare(run_id)`` with one run shows that run's numbers and curves (nothing to diff).

Params and metrics side by side with differing values highlighted (params lined up by the
estimator's own parameter path, so ``clf.hgb__learning_rate`` and
``grid.best.hgb__learning_rate`` share the row ``learning_rate``: see
``tracking.param_paths``); metric curves over
steps overlaid; a scatter of any metric against any param; a diff of the first two runs'
code; their data inputs side by side, with ``data_diff`` where a shared input changed
version. The numbers are plain data through ``to_dict()``.
"""

from __future__ import annotations

import difflib
import html
import math
from functools import cached_property
from typing import Any

from ..errors import MlopsError, ValidationError
from ..html import _STYLE, format_value
from ..store import Store
from ..tracking.param_paths import GROUPS, AlignedParam, aligned_params
from ..tracking.record import Run, get_run
from . import theme
from .fallback import display_view, live_style, new_token

__all__ = ["Comparison", "compare"]

_CSS = """<style>
.mlops-card tr.mlops-diff td{background:rgba(212,167,44,.22)}
.mlops-card .mlops-code{font-family:var(--jp-code-font-family,monospace);font-size:11px;
 white-space:pre;overflow-x:auto;margin:4px 0;line-height:1.4}
.mlops-card .mlops-add{background:rgba(46,160,67,.18)}
.mlops-card .mlops-del{background:rgba(248,81,73,.18)}
</style>"""
_MISSING = object()


def _same(values: list[Any]) -> bool:
    """Whether every run has this value (NaN equals NaN; a missing value differs)."""

    def norm(v: Any) -> Any:
        return "NaN" if isinstance(v, float) and math.isnan(v) else v

    first = norm(values[0])
    return all(v is not _MISSING for v in values) and all(norm(v) == first for v in values)


def _shown(value: Any) -> str:
    return "–" if value is _MISSING else format_value(value)


class Comparison:
    """Runs compared (one run: its numbers and curves); a widget in a notebook, HTML elsewhere."""

    def __init__(self, runs: list[Run], store: Store | None = None):
        self.runs = runs
        self._store = store
        self._token = new_token()
        # the widget's dropdowns, once built (handles for code that drives the view)
        self.curve_metric: Any = None
        self.scatter_param: Any = None
        self.scatter_metric: Any = None
        names = [r.name for r in runs]
        self.labels = [
            r.name if names.count(r.name) == 1 else f"{r.name} ({r.run_id[:6]})" for r in runs
        ]

    # -- the numbers ---------------------------------------------------------------------

    @cached_property
    def aligned(self) -> list[dict[str, AlignedParam]]:
        """Each run's params by row label (``model.learning_rate``, ``pipeline.steps``,
        ``C``): lined up by the estimator's own parameter path, not the variable's name."""
        out = []
        searches: dict[str, dict[str, Any] | None] = {}
        for run in self.runs:
            classes = {m["name"]: str(m.get("class") or "").rsplit(".", 1)[-1] for m in run.models}
            parent = run.parent_run_id
            if parent is not None and parent not in searches:  # a search's candidate
                try:
                    searches[parent] = get_run(parent, store=self._store).params
                except MlopsError:
                    searches[parent] = None
            search = searches.get(parent) if parent is not None else None
            out.append({p.label: p for p in aligned_params(run.params, classes, search)})
        return out

    def _param_keys(self) -> list[str]:
        """Every param row, grouped (model, pipeline, search, other groups, variables)."""
        found: dict[str, AlignedParam] = {}
        for params in self.aligned:
            for label, p in params.items():
                found.setdefault(label, p)

        def order(label: str) -> tuple[int, str, str]:
            group = found[label].group
            rank = GROUPS.index(group) if group in GROUPS[:3] else 3
            if group == "variables":
                rank = 4
            return (rank, group, found[label].name)

        return sorted(found, key=order)

    def _param(self, index: int, key: str) -> Any:
        """Run ``index``'s value of param row ``key`` (or of a stored param key)."""
        found = self.aligned[index].get(key)
        if found is not None:
            return found.value
        return self.runs[index].params.get(key, _MISSING)

    def _rows(self, part: str) -> list[tuple[str, list[Any], bool]]:
        """(key, one value per run, differs) for ``part`` = "params" or "metrics"."""
        if part == "params":
            keys = self._param_keys()
            out = []
            for key in keys:
                values = [self._param(i, key) for i in range(len(self.runs))]
                out.append((key, values, not _same(values)))
            return out
        out = []
        for key in sorted({k for r in self.runs for k in r.metrics}):
            values = [r.metrics.get(key, _MISSING) for r in self.runs]
            out.append((key, values, not _same(values)))
        return out

    def model_text(self, index: int) -> str:
        """What run ``index`` trained, as the table's header says it: ``clf ·
        HistGradientBoostingClassifier`` (empty when the run recorded no model class)."""
        found = self.aligned[index].get("model.class")
        if found is None:
            return ""
        return f"{found.variable} · {format_value(found.value)}" if found.variable else ""

    def to_dict(self) -> dict[str, Any]:
        """Runs, params and metrics side by side (one value per run, ``None`` if absent);
        params by row label: ``model.learning_rate``, ``pipeline.steps``, or a variable's
        name (``C``)."""

        def plain(rows: list[tuple[str, list[Any], bool]]) -> dict[str, list[Any]]:
            return {k: [None if v is _MISSING else v for v in vs] for k, vs, _ in rows}

        params, metrics = self._rows("params"), self._rows("metrics")
        return {
            "runs": [
                {"run_id": r.run_id, "name": r.name, "label": label}
                for r, label in zip(self.runs, self.labels, strict=True)
            ],
            "params": plain(params),
            "metrics": plain(metrics),
            "differs": {
                "params": [k for k, _, d in params if d],
                "metrics": [k for k, _, d in metrics if d],
            },
        }

    def table_html(self, only_differences: bool = False) -> str:
        """Params and metrics side by side; rows whose values differ are highlighted."""
        esc = html.escape
        span = len(self.runs) + 1
        head = "<tr><th></th>" + "".join(
            f"<th>{esc(label)}<br><code class=mut>{esc(r.run_id[:8])}</code>"
            + (f"<br><span class=mut>{esc(model)}</span>" if (model := self.model_text(i)) else "")
            + "</th>"
            for i, (r, label) in enumerate(zip(self.runs, self.labels, strict=True))
        )
        body = ""
        rows = [row for row in self._rows("metrics") if row[2] or not only_differences]
        if rows:
            body += f"<tr><th colspan={span}>metrics</th></tr>"
        for key, values, differs in rows:
            cls = " class=mlops-diff" if differs else ""
            cells = "".join(f"<td><code>{esc(_shown(v))}</code></td>" for v in values)
            body += f"<tr{cls}><td>{esc(key)}</td>{cells}</tr>"
        rows = [row for row in self._rows("params") if row[2] or not only_differences]
        if rows:
            body += f"<tr><th colspan={span}>params</th></tr>"
        filed = [[self.aligned[i].get(key) for i in range(len(self.runs))] for key, _, _ in rows]
        groups = [next((p.group for p in found if p is not None), "") for found in filed]
        shown_group = None
        for (key, values, differs), found, group in zip(rows, filed, groups, strict=True):
            if group != shown_group and len(set(groups)) > 1:  # a heading per group
                body += f"<tr><td colspan={span} class=mut><i>{esc(group)}</i></td></tr>"
            shown_group = group
            cells = "".join(self._param_cell(p, v) for p, v in zip(found, values, strict=True))
            cls = " class=mlops-diff" if differs else ""
            name = next((p.name for p in found if p is not None), key)
            body += f"<tr{cls}><td>{esc(name)}</td>{cells}</tr>"
        return f"<table>{head}</tr>{body}</table>"

    @staticmethod
    def _param_cell(found: AlignedParam | None, value: Any) -> str:
        """One run's value of a param row, with the key it is stored under (the variable
        and the full path: ``clf.hgb__learning_rate``) in its tooltip."""
        esc = html.escape
        if found is None:
            return f"<td><code>{esc(_shown(value))}</code></td>"
        return f"<td title='{esc(found.stored)}'><code>{esc(_shown(value))}</code></td>"

    # -- curves and scatter --------------------------------------------------------------

    @cached_property
    def histories(self) -> dict[str, Any]:
        """{metric: DataFrame run/step/value} for the metrics logged at more than one step."""
        import pandas as pd

        out: dict[str, Any] = {}
        for key in sorted({k for r in self.runs for k in r.metrics}):
            parts = []
            for run, label in zip(self.runs, self.labels, strict=True):
                if key not in run.metrics:
                    continue
                frame = run.metric_history(key)[["step", "value"]]
                parts.append(frame.assign(run=label))
            if any(len(p) > 1 for p in parts):
                out[key] = pd.concat(parts, ignore_index=True)
        return out

    def curve_chart(self, metric: str) -> Any:
        """Metric ``metric`` over steps, one line per run."""
        import altair as alt

        return (
            alt.Chart(self.histories[metric], title=f"{metric} over steps")
            .mark_line(point=True)
            .encode(
                x=alt.X("step:Q", title="step", axis=alt.Axis(tickMinStep=1, format="d")),
                y=alt.Y("value:Q", title=metric, scale=alt.Scale(zero=False)),
                color=alt.Color("run:N", title="run", sort=self.labels),
                tooltip=["run:N", "step:Q", alt.Tooltip("value:Q", format=".4~g")],
            )
        )

    def scatter_data(self, param: str, metric: str) -> Any:
        """One row per run: its label, ``param`` and ``metric`` values."""
        import pandas as pd

        rows = []
        for i, (r, label) in enumerate(zip(self.runs, self.labels, strict=True)):
            value = self._param(i, param)
            value = None if value is _MISSING else value
            rows.append({"run": label, param: value, metric: r.metrics.get(metric)})
        return pd.DataFrame(rows)

    def scatter_chart(self, param: str, metric: str) -> Any:
        """``metric`` against ``param`` across the runs."""
        import altair as alt

        data = self.scatter_data(param, metric)
        values = data[param].dropna()
        numeric = len(values) > 0 and all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in values
        )
        data[param] = data[param].map(lambda v: v if numeric or v is None else str(v))
        kind = "Q" if numeric else "N"
        return (
            alt.Chart(data, title=f"{metric} against {param}")
            .mark_point(size=90, filled=True)
            .encode(
                x=alt.X(f"{param}:{kind}", title=param, scale=alt.Scale(zero=False)),
                y=alt.Y(f"{metric}:Q", title=metric, scale=alt.Scale(zero=False)),
                color=alt.Color("run:N", title="run", sort=self.labels),
                tooltip=["run:N", f"{param}:{kind}", alt.Tooltip(f"{metric}:Q", format=".4~g")],
            )
        )

    def _keys(self, part: str) -> list[str]:
        if part == "params":
            return self._param_keys()
        return sorted({k for r in self.runs for k in getattr(r, part)})

    # -- code and data -------------------------------------------------------------------

    def code_diff_html(self) -> str:
        """A unified diff of the first two runs' code (one run: its code)."""
        if len(self.runs) == 1:
            code = self.runs[0].code or ""
            if not code:
                return "<div class=mut>No code recorded.</div>"
            return "<div class=mlops-code>" + html.escape(code) + "</div>"
        a, b = self.runs[:2]
        lines = list(
            difflib.unified_diff(
                (a.code or "").splitlines(),
                (b.code or "").splitlines(),
                fromfile=self.labels[0],
                tofile=self.labels[1],
                lineterm="",
            )
        )
        if not lines:
            return "<div class=mut>The two runs ran the same code.</div>"
        out = []
        for line in lines:
            cls = ""
            if line.startswith("+") and not line.startswith("+++"):
                cls = "mlops-add"
            elif line.startswith("-") and not line.startswith("---"):
                cls = "mlops-del"
            elif line.startswith("@@"):
                cls = "mut"
            out.append(f"<span class='{cls}'>{html.escape(line)}</span>")
        return "<div class=mlops-code>" + "\n".join(out) + "</div>"

    @cached_property
    def _refs(self) -> dict[int, str]:
        from ..data.versions import refs_for

        ids = [i["data_version_id"] for r in self.runs for i in r.inputs]
        return refs_for([i for i in ids if i is not None], store=self._store)

    def _input_text(self, item: dict[str, Any]) -> str:
        ref = self._refs.get(item["data_version_id"]) or f"#{item['content_hash'][:10]}"
        shape = "×".join(str(d) for d in item.get("shape") or ())
        return f"{ref} {shape}".strip()

    def data_html(self) -> str:
        """Every run's data inputs and outputs side by side; differing content highlighted."""
        esc = html.escape
        by_run = [{(i["role"], i["name"]): i for i in r.inputs} for r in self.runs]
        keys = sorted({k for d in by_run for k in d})
        if not keys:
            return "<div class=mut>No data inputs recorded.</div>"
        body = ""
        for key in keys:
            items = [d.get(key) for d in by_run]
            hashes = [i["content_hash"] if i else None for i in items]
            cls = " class=mlops-diff" if len(set(hashes)) > 1 else ""
            cells = "".join(
                f"<td><code>{esc(self._input_text(i)) if i else '–'}</code></td>" for i in items
            )
            role = "" if key[0] == "input" else f" ({key[0]})"
            body += f"<tr{cls}><td>{esc(key[1])}{role}</td>{cells}</tr>"
        head = "".join(f"<th>{esc(label)}</th>" for label in self.labels)
        return f"<table><tr><th>data</th>{head}</tr>{body}</table>"

    @cached_property
    def data_diffs(self) -> list[tuple[str, Any]]:
        """(name, DataDiff or a message) for inputs of the first two runs that changed."""
        from ..data.diff import data_diff

        if len(self.runs) < 2:
            return []
        a, b = ({(i["role"], i["name"]): i for i in r.inputs} for r in self.runs[:2])
        out: list[tuple[str, Any]] = []
        for key in sorted(set(a) & set(b)):
            ia, ib = a[key], b[key]
            if ia["content_hash"] == ib["content_hash"]:
                continue
            ra, rb = self._refs.get(ia["data_version_id"]), self._refs.get(ib["data_version_id"])
            if not (ra and rb):
                out.append((key[1], "changed, but no data versions were saved to diff"))
                continue
            try:
                out.append((key[1], data_diff(ra, rb, store=self._store)))
            except MlopsError as exc:
                out.append((key[1], f"cannot diff {ra} and {rb}: {exc}"))
        return out

    def _data_diffs_html(self) -> str:
        parts = []
        for name, diff in self.data_diffs:
            if isinstance(diff, str):
                parts.append(f"<div class=mut>{html.escape(name)}: {html.escape(diff)}</div>")
            else:
                parts.append(diff._repr_html_())
        return "".join(parts)

    # -- displays ------------------------------------------------------------------------

    @property
    def scope_text(self) -> str:
        """The experiments the compared runs come from, as the header says them."""
        names = sorted({r.experiment for r in self.runs})
        if len(names) == 1:
            return f"experiment '{names[0]}'"
        return "experiments " + ", ".join(f"'{n}'" for n in names)

    def _header_html(self) -> str:
        esc = html.escape
        return (
            "<div class=hd><span class=nm>Compare "
            + esc(", ".join(self.labels))
            + f"</span><span class=mut>{len(self.runs)} run{'s' if len(self.runs) > 1 else ''} · "
            + esc(self.scope_text, quote=False)
            + "</span></div>"
        )

    def _curves_static(self) -> str:
        """Curves for static HTML: SVG when vl-convert is installed, else final values."""
        parts = []
        for metric, frame in self.histories.items():
            svg = theme.chart_html(self.curve_chart(metric))
            if svg:
                parts.append(svg)
                continue
            summary = frame.groupby("run", sort=False)["value"].agg(["count", "last", "max", "min"])
            rows = "".join(
                f"<tr><td>{html.escape(str(run))}</td><td>{int(s['count'])}</td>"
                f"<td>{format_value(s['last'])}</td><td>{format_value(s['min'])}</td>"
                f"<td>{format_value(s['max'])}</td></tr>"
                for run, s in summary.iterrows()
            )
            parts.append(
                f"<div><table><tr><th>{html.escape(metric)}</th><th>steps</th><th>last</th>"
                f"<th>min</th><th>max</th></tr>{rows}</table></div>"
            )
        return "<div class=grid>" + "".join(parts) + "</div>" if parts else ""

    def _repr_html_(self) -> str:
        return (
            _STYLE
            + _CSS
            + "<div class=mlops-card>"
            + self._header_html()
            + "<div class=grid>"
            + self.table_html()
            + self.data_html()
            + "</div>"
            + self._curves_static()
            + "<details><summary>code diff</summary>"
            + self.code_diff_html()
            + "</details>"
            + self._data_diffs_html()
            + "</div>"
        )

    @cached_property
    def widget(self) -> Any:
        """The interactive view (built once): tabs for numbers, curves, scatter, code, data."""
        return _build_widget(self)

    def _ipython_display_(self) -> None:
        """The static HTML as one output, then the widget (see ``fallback``)."""
        try:
            widget = self.widget
        except ImportError:  # no ipywidgets: the HTML is the display
            from IPython.display import HTML, display

            display(HTML(self._repr_html_()))
            return
        display_view(self._repr_html_(), widget, self._token, repr(self))

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        """The widget and the HTML in one bundle, for hosts that take one bundle (the runs
        explorer's Compare output); ``display()`` shows two outputs instead."""
        bundle = {"text/plain": repr(self), "text/html": self._repr_html_()}
        try:
            bundle.update(
                {k: v for k, v in self.widget._repr_mimebundle_().items() if k != "text/plain"}
            )
        except ImportError:  # no ipywidgets: the HTML is the display
            pass
        return bundle

    def __repr__(self) -> str:
        n = len(self.runs)
        return f"<Comparison of {n} run{'s' if n > 1 else ''}: {', '.join(self.labels)}>"


def _build_widget(c: Comparison) -> Any:
    """Tabs: side by side (with a differences-only switch), curves, scatter, code, data."""
    import ipywidgets as widgets

    def card(body: str) -> Any:
        return widgets.HTML(_STYLE + _CSS + f"<div class=mlops-card>{body}</div>")

    tabs: list[tuple[str, Any]] = []
    table = card(c.table_html())
    only = widgets.Checkbox(description="only differences", indent=False)
    only.observe(lambda ch: setattr(table, "value", card(c.table_html(ch["new"])).value), "value")
    tabs.append(("Params & metrics", widgets.VBox([only, table])))

    if c.histories:
        stepped = list(c.histories)
        metric = widgets.Dropdown(options=stepped, value=stepped[0], description="Metric")
        curves = widgets.VBox([theme.chart_widget(c.curve_chart(stepped[0]))])
        metric.observe(
            lambda ch: setattr(curves, "children", (theme.chart_widget(c.curve_chart(ch["new"])),)),
            "value",
        )
        tabs.append(("Curves", widgets.VBox([metric, curves] if len(stepped) > 1 else [curves])))
        c.curve_metric = metric

    params, metrics = c._keys("params"), c._keys("metrics")
    if params and metrics:
        x = widgets.Dropdown(options=params, value=params[0], description="Param")
        y = widgets.Dropdown(options=metrics, value=metrics[0], description="Metric")
        scatter = widgets.VBox([theme.chart_widget(c.scatter_chart(x.value, y.value))])

        def redraw(_: Any) -> None:
            scatter.children = (theme.chart_widget(c.scatter_chart(x.value, y.value)),)

        x.observe(redraw, "value")
        y.observe(redraw, "value")
        tabs.append(("Scatter", widgets.VBox([widgets.HBox([x, y]), scatter])))
        c.scatter_param, c.scatter_metric = x, y

    tabs.append(("Code", card(c.code_diff_html())))
    tabs.append(("Data", card(c.data_html() + c._data_diffs_html())))
    tab = widgets.Tab(children=[w for _, w in tabs], titles=[t for t, _ in tabs])
    header = widgets.HTML(_STYLE + "<div class=mlops-card>" + c._header_html() + "</div>")
    return widgets.VBox([header, tab, live_style(c._token)])


def compare(*runs: str | Run, store: Store | None = None) -> Comparison:
    """Compare runs (run ids, id prefixes, or ``Run`` objects); one run shows its params,
    metrics and curves over steps.

    ``compare(*mlops.runs(filter=...).run_id)`` compares every run a query finds.
    """
    if len(runs) == 1 and isinstance(runs[0], list | tuple):
        runs = tuple(runs[0])
    if not runs:
        raise ValidationError(
            "compare() needs at least one run: pass run ids, e.g. compare(*mlops.runs().run_id)."
        )
    loaded = [r if isinstance(r, Run) else get_run(r, store=store) for r in runs]
    ids = [r.run_id for r in loaded]
    if len(set(ids)) < len(ids):
        raise ValidationError("compare() got the same run twice; pass distinct runs.")
    return Comparison(loaded, store=store)
