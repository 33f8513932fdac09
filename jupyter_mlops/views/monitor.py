"""``mlops.monitor("churn@production")``: the monitoring panel of a deployed model.

Request volume and latency over time, the drift table (most severe first), reference vs
current distributions per feature, drift share and performance over time, the prediction
distribution, and the alerts; a window selector, Refresh, and Check now (which records
the check and raises or resolves alerts). Everything is aggregated before it is drawn,
and the drift of a very large window is computed on its newest ``max_rows`` rows (said in
the header). The tables show first; each chart is drawn when its tab is opened, while the
chart runtime loads in the background. A static HTML rendering stands in for saved
notebooks.
"""

from __future__ import annotations

import html
import time
from typing import Any

import ipywidgets as widgets

from ..durations import parse_duration
from ..errors import MlopsError
from ..html import _STYLE
from ..monitoring import monitor as service
from ..monitoring.summary import check_history, distributions, traffic
from ..store import Store, current_store
from .fallback import ShownEverywhere, live_style, new_token

__all__ = ["MonitorView", "monitor_view"]

WINDOWS = ["15m", "1h", "6h", "1d", "7d", "30d"]
MAX_ROWS = 200_000


class MonitorView(ShownEverywhere, widgets.VBox):
    """The monitoring panel. Readable state: ``evaluation`` (the last evaluation),
    ``traffic`` and ``history`` (the frames behind the charts), ``message``."""

    def __init__(
        self,
        model: str,
        *,
        window: str | None = None,
        max_rows: int = MAX_ROWS,
        store: Store | None = None,
    ):
        self._store = store or current_store()
        self._token = new_token()
        self.config = service.get_monitor(model, self._store)  # a clear error for a bad name
        self.model = model
        self.max_rows = max_rows
        default = window or (self.config.window if isinstance(self.config.window, str) else "1h")
        options = WINDOWS if default in WINDOWS else [default, *WINDOWS]
        self.window = widgets.Dropdown(options=options, value=default, description="Window")
        self.refresh_button = widgets.Button(description="Refresh", icon="refresh")
        self.check_button = widgets.Button(
            description="Check now", icon="check", tooltip="Record a check; raise or resolve alerts"
        )
        self.feature = widgets.Dropdown(description="Feature")
        self.header = widgets.HTML()
        self.drift_html = widgets.HTML()
        self.alerts_html = widgets.HTML()
        self.traffic_box = widgets.VBox()
        self.dist_box = widgets.VBox()
        self.history_box = widgets.VBox()
        self.prediction_box = widgets.VBox()
        self.message = ""
        self.evaluation: Any = None
        self.traffic: Any = None
        self.history: Any = None
        self._dist: Any = None
        self.window.observe(lambda _: self.refresh(), names="value")
        self.refresh_button.on_click(lambda _: self.refresh())
        self.check_button.on_click(lambda _: self.check_now())
        self.feature.observe(lambda _: self._draw_distribution(), names="value")
        tabs = widgets.Tab(
            children=[
                widgets.VBox([self.drift_html]),
                widgets.VBox([self.feature, self.dist_box]),
                self.traffic_box,
                self.history_box,
                self.prediction_box,
                widgets.VBox([self.alerts_html]),
            ]
        )
        for i, title in enumerate(
            ["Drift", "Distributions", "Traffic", "Over time", "Predictions", "Alerts"]
        ):
            tabs.set_title(i, title)
        self.tabs = tabs
        self._stale: set[int] = set()
        tabs.observe(lambda _: self._draw_selected(), names="selected_index")
        super().__init__(
            [
                widgets.HTML(_STYLE),
                live_style(self._token),
                self.header,
                widgets.HBox([self.window, self.refresh_button, self.check_button]),
                tabs,
            ]
        )
        self.refresh()
        from .theme import prewarm

        prewarm()  # the chart runtime loads in the background once the tables are shown

    # -- data -------------------------------------------------------------------------
    def _since(self) -> float:
        return time.time() - parse_duration(self.window.value, "window")

    def refresh(self) -> None:
        """Recompute everything for the selected window (no alert is raised)."""
        try:
            self.evaluation = service.evaluate(
                self.model,
                window=self.window.value,
                max_rows=self.max_rows,
                store=self._store,
            )
            name = self.evaluation.outcome.model
            self.traffic = traffic(name, since=self._since(), store=self._store)
            self.history = check_history(name, store=self._store)
            self.message = ""
        except MlopsError as exc:
            self.message = str(exc)
        self._draw()

    def check_now(self) -> None:
        """Record a check now (alerts are raised or resolved), then refresh."""
        try:
            outcome = service.check(self.model, store=self._store)
            self.message = f"Checked: {outcome.state}; {len(outcome.opened)} alert(s) raised, " + (
                f"{len(outcome.resolved)} resolved."
            )
        except MlopsError as exc:
            self.message = str(exc)
        message = self.message
        self.refresh()
        self.message = message
        self._draw_header()

    # -- drawing ----------------------------------------------------------------------
    def _draw(self) -> None:
        self._draw_header()
        ev = self.evaluation
        report = ev.outcome.report if ev is not None else None
        self.drift_html.value = (
            report._repr_html_()
            if report is not None
            else "<div class=mut>No drift to show: not enough predictions in this window "
            f"(at least {self.config.min_rows} are needed; see mlops.set_monitor).</div>"
        )
        self._draw_alerts()
        if report is not None:
            order = report.to_frame()["column"].tolist()
            self._dist = distributions(ev.reference, ev.current, order[:12])
            options = [c for c in order if c in set(self._dist["column"])]
            previous = self.feature.value
            self._stale.discard(1)
            self.feature.options = options
            self.feature.value = previous if previous in options else (options or [None])[0]
        else:
            self._dist = None
            self.feature.options = []
        # charts are drawn when their tab is shown: the first render needs no chart runtime
        self._stale = {1, 2, 3, 4}
        self._draw_selected()

    def _draw_selected(self) -> None:
        """Draw the selected tab's charts if the data changed since they were drawn."""
        index = self.tabs.selected_index
        if index not in self._stale:
            return
        self._stale.discard(index)
        {
            1: self._draw_distribution,
            2: self._draw_traffic,
            3: self._draw_history,
            4: self._draw_predictions,
        }[index]()

    def _draw_header(self) -> None:
        esc = html.escape
        ev = self.evaluation
        if ev is None:
            self.header.value = f"<div class=mlops-card>{esc(self.message)}</div>"
            return
        o = ev.outcome
        color = {"ok": "#1a7f37", "alert": "#cf222e"}.get(o.state, "#57606a")
        sampled = (
            f" (drift on the newest {o.rows:,} of {ev.total_rows:,})"
            if ev.total_rows > o.rows
            else ""
        )
        perf = ", ".join(f"{k} {v:.3f}" for k, v in o.performance.items() if k != "labelled_rows")
        refused = o.rejections
        rejected = (
            f"<div class=mut>rejections: {esc(refused.line())}</div>"
            if refused is not None and refused.received
            else ""
        )
        self.header.value = (
            "<div class=mlops-card><div class=hd>"
            + f"<span class=nm>{esc(o.model)}@{o.version}</span>"
            + f"<span class=badge style='background:{color}'>{esc(o.state)}</span>"
            + f"<span class=mut>{ev.total_rows:,} predictions in the last "
            + f"{esc(str(self.window.value))}{sampled}; reference "
            + f"{esc(ev.reference_label or '—')}</span></div>"
            + (f"<div class=mut>performance: {esc(perf)}</div>" if perf else "")
            + rejected
            + (f"<div class=mut>{esc(self.message)}</div>" if self.message else "")
            + "</div>"
        )

    def _draw_alerts(self) -> None:
        esc = html.escape
        frame = service.alerts(self.model, store=self._store).head(50)
        if frame.empty:
            self.alerts_html.value = "<div class=mut>No alerts.</div>"
            return
        rows = "".join(
            f"<tr><td>{esc(str(r.status))}</td><td>{esc(r.kind)}</td><td>{esc(r.message)}</td>"
            f"<td>{r.occurrences}</td><td>{esc(str(r.last_seen)[:19])}</td></tr>"
            for r in frame.itertuples()
        )
        self.alerts_html.value = (
            "<table><tr><th>status</th><th>kind</th><th>message</th><th>times</th>"
            f"<th>last seen</th></tr>{rows}</table>"
        )

    def traffic_chart(self) -> Any:
        """Requests per bucket and p50 latency, one above the other."""
        import altair as alt

        base = alt.Chart(self.traffic).encode(x=alt.X("bucket:T", title=None))
        volume = (
            base.mark_bar()
            .encode(y=alt.Y("rows:Q", title="predictions"))
            .properties(height=120, width=520)
        )
        latency = (
            base.mark_line(point=True)
            .encode(y=alt.Y("p50_ms:Q", title="p50 latency (ms)"))
            .properties(height=120, width=520)
        )
        return alt.vconcat(volume, latency)

    def _draw_traffic(self) -> None:
        from .theme import chart_widget

        if self.traffic is None or self.traffic.empty:
            self.traffic_box.children = [widgets.HTML("<div class=mut>No traffic.</div>")]
            return
        self.traffic_box.children = [chart_widget(self.traffic_chart())]

    def _draw_history(self) -> None:
        import altair as alt

        from .theme import chart_widget

        if self.history is None or self.history.empty:
            self.history_box.children = [
                widgets.HTML("<div class=mut>No checks recorded yet: press Check now.</div>")
            ]
            return
        frame = self.history.copy()
        metrics = [c for c in frame.columns if c not in ("time", "state", "rows", "labelled_rows")]
        long = frame.melt(id_vars=["time"], value_vars=metrics, var_name="metric").dropna()
        chart = (
            alt.Chart(long)
            .mark_line(point=True)
            .encode(x=alt.X("time:T", title=None), y="value:Q", color="metric:N")
            .properties(height=180, width=520, title="Drift share and performance per check")
        )
        self.history_box.children = [chart_widget(chart)]

    def distribution_chart(self, column: str) -> Any:
        """Reference vs current shares for one column."""
        import altair as alt

        frame = self._dist[self._dist["column"] == column]
        return (
            alt.Chart(frame)
            .mark_bar(opacity=0.7)
            .encode(
                x=alt.X("label:N", sort=alt.SortField("order"), title=column),
                xOffset="side:N",
                y=alt.Y("share:Q", axis=alt.Axis(format="%")),
                color=alt.Color(
                    "side:N",
                    scale=alt.Scale(domain=["reference", "current"], range=["#8c959f", "#0969da"]),
                ),
                tooltip=["label", "side", alt.Tooltip("share:Q", format=".1%")],
            )
            .properties(height=200, width=520)
        )

    def _draw_distribution(self) -> None:
        from .theme import chart_widget

        if self.tabs.selected_index != 1:  # drawn when the tab is shown
            self._stale.add(1)
            return
        column = self.feature.value
        if self._dist is None or not column:
            self.dist_box.children = []
            return
        self.dist_box.children = [chart_widget(self.distribution_chart(column))]

    def _draw_predictions(self) -> None:
        from .theme import chart_widget

        ev = self.evaluation
        if ev is None or "prediction" not in getattr(ev.current, "columns", []):
            self.prediction_box.children = [widgets.HTML("<div class=mut>No predictions.</div>")]
            return
        preds = distributions(ev.reference, ev.current, ["prediction"])
        saved, self._dist = self._dist, preds
        try:
            chart = self.distribution_chart("prediction")
        finally:
            self._dist = saved
        self.prediction_box.children = [chart_widget(chart)]

    # -- static display ---------------------------------------------------------------
    def _repr_html_(self) -> str:
        """The header, traffic figures, the drift table and the alerts, for saved notebooks
        (no chart: rendering one would slow down every display of the live panel)."""
        traffic_line = ""
        if self.traffic is not None and not self.traffic.empty:
            t = self.traffic
            traffic_line = (
                f"<div class=mut>traffic: {int(t['rows'].sum()):,} predictions from "
                f"{str(t['bucket'].min())[:16]} to {str(t['bucket'].max())[:16]}; median "
                f"p50 latency {t['p50_ms'].median():.2f} ms, worst p95 {t['p95_ms'].max():.2f} ms"
                "</div>"
            )
        return (
            _STYLE
            + self.header.value
            + traffic_line
            + self.drift_html.value
            + "<div class=mlops-card><div class=hd><span class=nm>Alerts</span></div>"
            + self.alerts_html.value
            + "</div>"
        )

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any] | None:
        bundle = super()._repr_mimebundle_(**kwargs)
        return {**(bundle or {}), "text/html": self._repr_html_()}

    def __repr__(self) -> str:
        state = self.evaluation.outcome.state if self.evaluation is not None else "?"
        return f"<MonitorView {self.model} {state}>"


def monitor_view(model: str, *, window: str | None = None) -> MonitorView:
    """The monitoring panel of ``model`` (``churn@production``)."""
    return MonitorView(model, window=window)
