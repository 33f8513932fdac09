"""The runs explorer and run comparison, driven through their widget models."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

import jupyter_mlops as mlops
from jupyter_mlops.errors import NotFoundError, QueryError, ValidationError
from jupyter_mlops.store import current_store, schema
from jupyter_mlops.tracking.values import encode_param
from jupyter_mlops.tracking.writer import get_or_create_experiment
from jupyter_mlops.views import Comparison, RunsView, compare, runs_view, theme

from .conftest import run_cell

REPO = Path(__file__).resolve().parents[1]
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
SETUP = """
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
import jupyter_mlops as mlops
rng = np.random.default_rng(0)
df = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200)})
df["y"] = (df.a + df.b > 0).astype(int)
SEED = 7
"""
TRAIN = """%%track c{C}
C = {C}
model = LogisticRegression(C=C, random_state=SEED).fit(df[["a", "b"]], df.y)
accuracy = model.score(df[["a", "b"]], df.y)
for epoch in range(4):
    mlops.log_metrics({{"loss": 1.0 / (epoch + 1 + C), "val_loss": 1.5 / (epoch + 1)}}, step=epoch)
"""


@pytest.fixture
def three(ip) -> dict[str, str]:
    """Three tracked runs (C = 0.1, 1, 10); the last one trains on a changed ``df``."""
    assert run_cell(ip, SETUP).success
    ids = {}
    for c in (0.1, 1.0, 10.0):
        if c == 10.0:
            assert run_cell(ip, "df = df.copy()\ndf.loc[0, 'a'] = 5.0").success
        assert run_cell(ip, TRAIN.format(C=c)).success
        ids[f"c{c}"] = mlops.runs(filter=f"name = 'c{c}'").run_id[0]
    return ids


def shown_names(view: RunsView) -> list[str]:
    return list(view.page_rows()["name"])


def test_runs_view_pages_sorts_filters_and_selects(three):
    view = runs_view(page_size=2)
    assert isinstance(view, RunsView)
    # defaults: newest first, the metrics and the params that vary; constant SEED hidden
    assert shown_names(view) == ["c10.0", "c1.0"]
    assert {"metrics.accuracy", "metrics.loss", "metrics.val_loss", "params.C"} <= set(
        view.column_chooser.value
    )
    assert "params.SEED" not in view.column_chooser.value
    assert "params.SEED" in view.column_chooser.options
    assert "1–2 of 3" in view.page_label.value
    assert view.prev_button.disabled and not view.next_button.disabled
    # the grid: page checkbox + headers, then the checkbox column and one HTML per column
    width = 1 + len(view.columns)
    assert len(view.grid.children) == width * 2 and len(view._box_column.children) == 2
    names = view.grid.children[width + 1 + view.columns.index("name")].value
    assert names.count("<div") == 2 and names.index("c10.0") < names.index("c1.0")

    view.next_button.click()
    assert shown_names(view) == ["c0.1"] and "3–3 of 3" in view.page_label.value
    assert view.next_button.disabled and not view.prev_button.disabled
    assert len(view._box_column.children) == 1  # the unused row is hidden
    view.prev_button.click()
    assert view.page == 0

    # sorting: a header click sorts ascending (metrics: best first), a second flips it
    header = view._headers[view._shown.index("params.C")]
    header.click()
    assert view.sort_by.value == "params.C" and list(view.frame["params.C"]) == [0.1, 1.0, 10.0]
    assert header.description.endswith("▲")
    header.click()
    assert list(view.frame["params.C"]) == [10.0, 1.0, 0.1] and header.description.endswith("▼")
    view.sort_by.value = "name"
    view.descending.value = False
    assert list(view.frame["name"]) == ["c0.1", "c1.0", "c10.0"]

    # column chooser
    view.column_chooser.value = ("params.SEED",)
    assert view.columns[-1] == "params.SEED" and "params.C" not in view.columns
    assert len(view.grid.children) == (1 + len(view.columns)) * 2
    assert "<div" in view.grid.children[-1].value and "7" in view.grid.children[-1].value

    # filter: same language as mlops.runs(filter=...); errors inline, table unchanged
    view.filter_box.value = "params.C >= 1"
    assert sorted(view.frame["name"]) == ["c1.0", "c10.0"] and view.error.value == ""
    assert "1–2 of 2" in view.page_label.value
    view.filter_box.value = "params.C >= "
    assert "position" in view.error.value
    assert sorted(view.frame["name"]) == ["c1.0", "c10.0"]
    view.filter_box.value = "name = 'nothing'"
    assert view.page_label.value.endswith("no runs match the filter</span>")
    view.filter_box.value = ""
    assert len(view.frame) == 3 and view.error.value == ""

    # selection persists across pages; the page box selects a page
    view.sort("name")
    view.compare_button.click()
    assert "at least two" in view.error.value and view.output.outputs == ()
    view._boxes[0].value = True
    assert view.selected == [three["c0.1"]] and view.compare_button.disabled
    view.next_button.click()
    view._boxes[0].value = True
    assert view.selected == [three["c0.1"], three["c10.0"]]
    assert "2 selected" in view.selection_label.value and not view.compare_button.disabled
    view.prev_button.click()
    assert view._boxes[0].value and not view._boxes[1].value
    view._page_box.value = True
    assert set(view.selected) == set(three.values())
    view.clear_button.click()
    assert view.selected == [] and not view._boxes[0].value
    view._boxes[0].value = True
    view._boxes[1].value = True

    # Compare shows the comparison (widget + HTML) in the output area
    view.compare_button.click()
    (shown,) = view.output.outputs
    assert WIDGET_MIME in shown["data"] and "text/html" in shown["data"]
    assert "c0.1" in shown["data"]["text/html"] and "c1.0" in shown["data"]["text/html"]
    assert [r.run_id for r in view.comparison.runs] == [three["c0.1"], three["c1.0"]]
    assert view.error.value == ""

    # the static fallback: the current page as a table
    static = view._repr_html_()
    assert "c0.1" in static and "c10.0" not in static
    assert "1–2 of 3" in static and "<th>params.C</th>" not in static  # chooser: SEED only
    assert "<th>params.SEED</th>" in static
    bundle = view._repr_mimebundle_()
    assert WIDGET_MIME in bundle and bundle["text/html"] == static


def test_runs_view_scope_and_bad_input(three):
    assert len(runs_view("default").frame) == 3
    assert len(runs_view("elsewhere").frame) == 0
    empty = runs_view("elsewhere")
    assert "no runs" in empty.page_label.value and "no runs" in empty._repr_html_()
    assert len(runs_view(filter="metrics.accuracy > 0").frame) == 3
    with pytest.raises(QueryError, match="position"):
        runs_view(filter="metrics.accuracy >")
    with pytest.raises(ValidationError, match="page_size"):
        runs_view(page_size=0)
    # new runs appear on Refresh
    view = runs_view()
    with mlops.track("later", capture=False) as run:
        run.log_metric("accuracy", 0.5)
    view.refresh_button.click()
    assert len(view.frame) == 4 and view.frame["name"].iloc[0] == "later"


def test_compare_side_by_side_curves_scatter_code_and_data(three):
    c = compare(three["c0.1"], three["c10.0"], three["c1.0"])
    assert isinstance(c, Comparison) and c.labels == ["c0.1", "c10.0", "c1.0"]
    d = c.to_dict()
    assert [r["name"] for r in d["runs"]] == ["c0.1", "c10.0", "c1.0"]
    assert d["params"]["C"] == [0.1, 10.0, 1.0] and d["params"]["SEED"] == [7, 7, 7]
    assert "C" in d["differs"]["params"] and "SEED" not in d["differs"]["params"]
    assert d["metrics"]["loss"][0] == pytest.approx(1 / 4.1)
    assert json.dumps(d)  # plain data

    # differences highlighted, and the widget's "only differences" switch
    table = c.table_html()
    assert "<tr class=mlops-diff><td>C</td>" in table and "<tr><td>SEED</td>" in table
    assert "SEED" not in c.table_html(only_differences=True)

    # curves: the stepped metrics, one line per run
    assert list(c.histories) == ["loss", "val_loss"]
    assert len(c.histories["loss"]) == 12 and set(c.histories["loss"].run) == set(c.labels)
    spec = theme.chart_spec(c.curve_chart("loss"))
    assert spec["mark"]["type"] == "line" and spec["encoding"]["color"]["field"] == "run"
    assert spec["config"]["range"]["category"] == theme.PALETTE

    # the widget: tabs, dropdowns that redraw the charts
    w = c.widget
    _header, tabs, _hides_the_static_table = w.children
    assert tabs.titles == ("Params & metrics", "Curves", "Scatter", "Code", "Data")
    only, table_widget = tabs.children[0].children
    only.value = True
    assert "SEED" not in table_widget.value and "mlops-diff" in table_widget.value
    curves = tabs.children[1].children[1]
    before = curves.children[0]
    assert c.curve_metric.options == ("loss", "val_loss")
    c.curve_metric.value = "val_loss"
    assert curves.children[0] is not before
    scatter = tabs.children[2].children[1]
    before = scatter.children[0]
    c.scatter_param.value = "SEED"
    c.scatter_metric.value = "loss"
    assert scatter.children[0] is not before
    data = c.scatter_data("C", "accuracy")
    assert list(data.C) == [0.1, 10.0, 1.0]

    # code diff of the first two runs, data inputs side by side with data_diff
    assert "<span class='mlops-del'>-C = 0.1</span>" in c.code_diff_html()
    assert "<span class='mlops-add'>+C = 10.0</span>" in c.code_diff_html()
    assert "df@v1" in c.data_html() and "df@v2" in c.data_html()
    ((name, diff),) = c.data_diffs
    assert name == "df" and diff.rows["changed"] == 1
    assert "df@v1 → default/df@v2" in tabs.children[4].value

    # displays: a widget with an HTML fallback in the same bundle
    bundle = c._repr_mimebundle_()
    assert WIDGET_MIME in bundle and bundle["text/plain"].startswith("<Comparison of 3 runs")
    static = c._repr_html_()
    for fragment in ("c10.0", "mlops-diff", "loss", "df@v2", "+C = 10.0", "changed"):
        assert fragment in static


def test_compare_bad_input(three):
    with pytest.raises(ValidationError, match="at least one run"):
        compare()
    with pytest.raises(ValidationError, match="at least one run"):
        compare([])
    with pytest.raises(ValidationError, match="same run twice"):
        compare(three["c0.1"], three["c0.1"])
    with pytest.raises(NotFoundError):
        compare(three["c0.1"], "ffffffffff")
    # Run objects, id prefixes and one list of them work too
    run = mlops.get_run(three["c1.0"])
    c = compare([run, three["c0.1"][:8]])
    assert [r.run_id for r in c.runs] == [three["c1.0"], three["c0.1"]]


def displayed(ip, code: str) -> list[dict]:
    """The outputs a notebook cell running ``code`` publishes (their MIME bundles)."""
    from IPython.utils.capture import capture_output

    with capture_output() as captured:
        assert run_cell(ip, code).success
    return [dict(o.data) for o in captured.outputs]


def widget_tree(widget) -> list:
    """``widget`` and every widget under it."""
    out = [widget]
    for child in getattr(widget, "children", ()):
        out += widget_tree(child)
    return out


@pytest.mark.parametrize(
    ("code", "texts"),
    [
        ("%mlops runs", ["<td>c0.1</td>", "<td>c10.0</td>", "1–3 of 3"]),
        ("mlops.compare(*mlops.runs().run_id)", ["Compare", "<td>C</td>", "mlops-diff"]),
        ("%mlops registry", ["Model registry", "<td>1</td>", "production"]),
    ],
    ids=["runs", "compare", "registry"],
)
def test_a_view_displays_its_table_then_its_widget(ip, three, code, texts):
    """Saved and exported notebooks show every view: the static table is an output of its
    own (exporters and kernel-less front ends pick the widget view of a bundle that has
    one, and show nothing), then the widget, which hides the table once it is drawn."""
    mv = mlops.register(three["c1.0"], "demo")
    mlops.set_alias("demo", "production", mv.version)
    static, live = displayed(ip, code)
    assert set(static) == {"text/html"}
    for text in texts:
        assert text in static["text/html"]
    (token,) = re.findall(r"class='mlops-static mlops-static-(\w+)'", static["text/html"])
    assert set(live) == {WIDGET_MIME, "text/plain"}
    view = ip.user_ns["_"]  # the cell's value: the view
    widget = getattr(view, "widget", view)  # a Comparison builds its widget on display
    assert live[WIDGET_MIME]["model_id"] == widget.model_id
    hiders = [
        w for w in widget_tree(widget) if f".mlops-static-{token}{{" in str(getattr(w, "value", ""))
    ]
    assert len(hiders) == 1 and hiders[0].layout.display == "none"


def test_chart_widget_renders_offline(store_dir):
    import altair as alt
    import pandas as pd

    chart = alt.Chart(pd.DataFrame({"x": [1, 2], "y": [3, 4]})).mark_line().encode(x="x", y="y")
    widget = theme.chart_widget(chart)
    if theme.chart_backend() == "jupyterchart":
        assert isinstance(widget, alt.JupyterChart)
        assert "<svg" in theme.chart_html(chart)
    else:  # JupyterLab's own Vega-Lite 5 draws it; no CDN involved
        (out,) = widget.outputs
        spec = out["data"]["application/vnd.vegalite.v5+json"]
        assert spec["$schema"].endswith("/v5.json") and spec["config"]["view"]["stroke"] is None
        assert theme.chart_html(chart) == ""
    assert alt.theme.active != theme.THEME  # our theme never leaks into the user's charts


def _populate(n: int) -> None:
    """``n`` finished runs with 3 params and 2 metrics, written in one transaction."""
    now = time.time()
    runs, params, metrics = [], [], []
    for i in range(n):
        rid = uuid.uuid4().hex
        p = {"lr": round((i * 7919 % 1000) / 1000, 3), "depth": i % 7, "opt": "adam"}
        m = {"accuracy": (i * 104729 % 10_000) / 10_000, "loss": 1 / (i + 1)}
        runs.append(
            {
                "run_id": rid,
                "experiment_id": None,
                "name": f"run-{i}",
                "status": "finished",
                "start_time": now + i,
                "end_time": now + i + 1,
                "duration_s": 1.0,
                "summary": json.dumps({"p": p, "m": m, "t": {}}),
            }
        )
        for key, value in p.items():
            text, num, vtype = encode_param(value)
            params.append({"run_id": rid, "key": key, "value": text, "num": num, "vtype": vtype})
        for key, value in m.items():
            metrics.append({"run_id": rid, "key": key, "value": value, "step": 0, "timestamp": now})
    with current_store().write() as conn:
        exp = get_or_create_experiment(conn, "big")
        for row in runs:
            row["experiment_id"] = exp
        conn.execute(schema.runs.insert(), runs)
        conn.execute(schema.params.insert(), params)
        conn.execute(schema.latest_metrics.insert(), metrics)
        conn.execute(schema.metric_history.insert(), metrics)


def test_runs_view_over_10000_runs_opens_fast(store_dir):
    _populate(10_000)
    mlops.set_experiment("big")  # the notebook's experiment: the explorer shows its runs
    mlops.runs(limit=1)  # warm the store connection and imports, as an open notebook has
    t0 = time.perf_counter()
    view = runs_view(page_size=25)
    elapsed = time.perf_counter() - t0
    print(f"\nruns_view over 10,000 runs: widget model built in {elapsed * 1000:.0f} ms")
    assert elapsed < 3.0
    assert "1–25 of 10,000" in view.page_label.value
    assert len(view._box_column.children) == 25
    assert view.grid.children[-1].value.count("<div") == 25
    assert view.columns[-4:] == ["metrics.accuracy", "metrics.loss", "params.depth", "params.lr"]
    t0 = time.perf_counter()
    view.sort("metrics.accuracy", descending=True)
    view.next_button.click()
    print(f"sort + next page: {(time.perf_counter() - t0) * 1000:.0f} ms")
    assert "26–50 of 10,000" in view.page_label.value
    assert view.frame["metrics.accuracy"].is_monotonic_decreasing
    view.filter_box.value = "params.depth = 3 and metrics.accuracy > 0.5"
    assert view.error.value == "" and 0 < len(view.frame) < 10_000
    assert "<td>run-" in view._repr_html_()


def test_views_stay_out_of_a_plain_import():
    code = (
        "import sys, jupyter_mlops, jupyter_mlops.views; "
        "print('ipywidgets' in sys.modules, 'altair' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True
    )
    assert out.stdout.split() == ["False", "False"]


PIPELINE = """%%track pipe
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
C = 0.5
model = make_pipeline(StandardScaler(with_mean=False), LogisticRegression(C=C, max_iter=300))
model = model.fit(df[["a", "b"]], df.y)
"""


def card_rows(card: str) -> tuple[list[str], list[str], list[str]]:
    """The param names a run card shows: at first sight, under "N more", under "N defaults"."""
    params = card[card.index("params (") :]
    params = params[: params.index("</div>")]
    keys = re.compile(r"<tr><td>([^<]+)</td>")
    parts = re.split(r"<details><summary class=mut>", params)
    more = [k for p in parts[1:] if p.split("<", 1)[0].endswith("more") for k in keys.findall(p)]
    folded = [k for p in parts[1:] if "default" in p.split("<", 1)[0] for k in keys.findall(p)]
    return keys.findall(parts[0]), more, folded


def test_run_card_shows_changed_params_first_and_folds_the_defaults(ip):
    assert run_cell(ip, SETUP).success
    assert run_cell(ip, PIPELINE).success
    run = mlops.get_run(mlops.runs(filter="name = 'pipe'").run_id[0])
    card = run._repr_html_()  # what the tracked cell displays under itself
    shown, more, folded = card_rows(card)
    assert more == []
    # what the user set (their variables, the pipeline's steps, what differs from
    # scikit-learn's defaults) comes first; the defaults are folded, and counted
    assert {
        "C",
        "model.steps",
        "model.standardscaler__with_mean",
        "model.logisticregression__C",
        "model.logisticregression__max_iter",
    } <= set(shown)
    assert {
        "model.memory",
        "model.standardscaler__with_std",
        "model.logisticregression__tol",
        "model.logisticregression__solver",
        "model.logisticregression__penalty",
    } <= set(folded)
    assert not set(shown) & set(folded)
    assert f"{len(folded)} defaults</summary>" in card and len(folded) >= 15
    assert f"params ({len(run.params)})" in card and len(shown) + len(folded) == len(run.params)
    # the record of defaults is no user tag: not in the header, the tags or the listing
    assert "mlops.default_params" not in card and run.tags == {}
    # every param is still stored and queryable, defaults included
    assert set(folded) <= set(run.params) and run.params["model.logisticregression__tol"] == 1e-4
    assert run.default_params == frozenset(folded)
    frame = mlops.runs(filter="params.model.logisticregression__tol = 0.0001")
    assert list(frame.name) == ["pipe"] and "params.model.memory" in frame.attrs["hidden_params"]
    assert "params.model.logisticregression__tol" in frame  # the filter names it: shown
    assert not [c for c in frame.columns if c.startswith("tags.")]
    every = mlops.runs(filter="params.model.logisticregression__tol = 0.0001", params="all")
    assert every["params.model.memory"].isna().all()


def test_a_run_card_without_recorded_defaults_shows_every_param(ip):
    """Runs recorded before defaults were kept (no record of them) render as they did."""
    with mlops.track("old", capture=False) as writer:
        writer.log_params({f"p{i}": i for i in range(14)})
    run = mlops.get_run(writer.run_id)
    assert run.default_params == frozenset()
    card = run._repr_html_()
    shown, more, folded = card_rows(card)
    assert folded == [] and not re.search(r"\d+ defaults?</summary>", card)
    assert len(shown) == 12 and len(more) == 2  # a long list folds as before
    # a damaged record of defaults is ignored, not fatal
    with current_store().write() as conn:
        conn.execute(
            schema.tags.insert(),
            {"run_id": run.run_id, "key": "mlops.default_params", "value": "{not json"},
        )
    again = mlops.get_run(writer.run_id)
    assert again.default_params == frozenset() and "p13" in again._repr_html_()


def test_defaults_are_read_from_each_estimator_class():
    import numpy as np
    from sklearn.base import BaseEstimator
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV

    from jupyter_mlops.tracking.estimators import default_params, estimator_params

    class Needs(BaseEstimator):  # no default instance: its signature says the defaults
        def __init__(self, width, depth=3, scale=1.0):
            self.width, self.depth, self.scale = width, depth, scale

    class Broken(BaseEstimator):
        def get_params(self, deep=True):
            raise RuntimeError("no params")

    # NaN equals NaN; 1 is the default 1.0; True is not the default 1
    assert default_params("m", SimpleImputer(missing_values=np.nan)) == [
        f"m.{k}" for k in SimpleImputer().get_params()
    ]
    assert "m.C" in default_params("m", LogisticRegression(C=1))
    assert "m.verbose" not in default_params("m", LogisticRegression(verbose=True))
    assert set(default_params("m", Needs(4, scale=2))) == {"m.depth"}
    assert default_params("m", Broken()) == []
    # a search: its own params against GridSearchCV, the inner ones against their class
    search = GridSearchCV(LogisticRegression(max_iter=50), {"C": [1, 2]}, cv=3)
    found = set(default_params("s", search))
    assert {"s.refit", "s.estimator__tol"} <= found
    assert not {"s.cv", "s.estimator", "s.param_grid", "s.estimator__max_iter"} & found
    assert found <= set(estimator_params("s", search))


def test_every_view_says_its_scope(ip):
    """The runs explorer and compare say which experiments they show; the explorer shows
    the notebook's experiment unless told otherwise (``--all``, a name, a filter)."""
    from .test_query import open_notebook, train

    open_notebook(ip, "quickstart")
    qs = train(ip, "qs", 0.97)
    open_notebook(ip, "registry")
    reg = [train(ip, "reg-a", 0.90), train(ip, "reg-b", 0.80)]

    static, _live = displayed(ip, "%mlops runs")
    view = ip.user_ns["_"]
    assert "experiment 'registry' · 1–2 of 2" in static["text/html"]
    assert "<td>reg-a</td>" in static["text/html"] and "<td>qs</td>" not in static["text/html"]
    assert "experiment 'registry'" in view.header.value and "experiment" not in view.columns

    for line in ("%mlops runs --all", "%mlops runs *"):
        static, _live = displayed(ip, line)
        view = ip.user_ns["_"]
        assert "all experiments · 1–3 of 3" in static["text/html"]
        assert (
            "<th>experiment</th>" in static["text/html"]
            and "<td>quickstart</td>" in (static["text/html"])
        )
        assert "all experiments" in view.header.value
    static, _live = displayed(ip, "%mlops runs quickstart")
    assert "experiment 'quickstart' · 1–1 of 1" in static["text/html"]

    # a filter naming the experiment sets the scope; the header follows it
    view = runs_view()
    view.apply_filter("experiment = 'quickstart'")
    assert list(view.frame.name) == ["qs"] and "all experiments" in view.header.value
    view.apply_filter("")
    assert set(view.frame.name) == {"reg-a", "reg-b"}
    assert "experiment 'registry'" in view.header.value

    assert "2 runs · experiment 'registry'" in compare(*mlops.runs().run_id)._repr_html_()
    mixed = compare(qs, reg[0])
    assert "experiments 'quickstart', 'registry'" in mixed._repr_html_()
    assert "experiments 'quickstart', 'registry'" in mixed.widget.children[0].value


def test_compare_one_run_shows_its_curves(three):
    """``compare(run_id)`` with one run: its numbers and its curves (nothing to diff)."""
    c = compare(three["c1.0"])
    assert c.labels == ["c1.0"] and repr(c) == "<Comparison of 1 run: c1.0>"
    assert list(c.histories) == ["loss", "val_loss"] and len(c.histories["loss"]) == 4
    assert list(c.histories["loss"].value) == pytest.approx([1 / (e + 2) for e in range(4)])
    assert c.to_dict()["params"]["C"] == [1.0] and c.to_dict()["differs"]["params"] == []
    _header, tabs, _hider = c.widget.children
    assert tabs.titles[:2] == ("Params & metrics", "Curves")
    assert c.curve_metric.options == ("loss", "val_loss")
    static = c._repr_html_()
    assert "1 run · experiment 'default'" in static and "class=mlops-diff" not in static
    assert "loss" in static and "val_loss" in static  # its curves (SVG, or the summary table)
    assert "C = 1.0" in c.code_diff_html() and c.data_diffs == []


def test_run_card_draws_a_curve_per_stepped_metric(three):
    """The card under a tracked cell: an inline SVG sparkline (min/max/last) for each
    metric logged at several steps, none for the scalar ones; escaped names; nothing
    fetched from elsewhere, so a saved notebook shows it."""
    run = mlops.get_run(three["c0.1"])
    card = run._repr_html_()
    assert card.count("<svg") == 2  # loss and val_loss; accuracy is one value
    svgs = re.findall(r"<svg.*?</svg>", card, flags=re.S)
    assert {re.search(r"aria-label='(\w+) over 4 steps'", s).group(1) for s in svgs} == {
        "loss",
        "val_loss",
    }
    assert all("width=160 height=40" in s for s in svgs)
    assert "accuracy over" not in card
    loss = [1.0 / (e + 1 + 0.1) for e in range(4)]
    assert f"<span class=mut>min</span> {min(loss):.6g}" in card
    assert f"<span class=mut>last</span> {loss[-1]:.6g}" in card
    assert not re.search(r"(src|href)=|<script|url\(", card)


def test_sparkline_escapes_and_skips_what_it_cannot_draw(ip):
    from jupyter_mlops.html import sparkline

    code = (
        "%%track odd\nimport jupyter_mlops as mlops\n"
        "for i in range(3):\n    mlops.log_metric('<b>x</b>', float(i), step=i)\n"
        "mlops.log_metric('once', 0.5)\n"
    )
    assert run_cell(ip, code).success
    card = mlops.get_run(mlops.runs(filter="name = 'odd'").run_id[0])._repr_html_()
    assert card.count("<svg") == 1 and "<b>x</b>" not in card and "&lt;b&gt;x&lt;/b&gt;" in card
    assert sparkline([(0, 1.0)]) == "" and sparkline([(0, float("nan")), (1, 2.0)]) == ""
    flat = sparkline([(0, 3.0), (1, 3.0)], "c")  # a constant curve: a flat line mid-height
    assert "points='3.0,20.0 157.0,20.0'" in flat
    long = sparkline([(i, float(i % 7)) for i in range(10_000)], "n")
    assert long.count(",") <= 2 * 160 + 10 and "over 10000 steps" in long


MODELS_SETUP = """
import time
import numpy as np
import pandas as pd
from lightgbm import LGBMClassifier
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
rng = np.random.default_rng(0)
churn = pd.DataFrame({"tenure": rng.normal(size=120), "plan": rng.choice(["a", "b"], 120)})
churn["churned"] = (churn.tenure > 0).astype(int)
X, y = churn[["tenure", "plan"]], churn.churned
def pre():
    return ColumnTransformer([("num", StandardScaler(), ["tenure"]), ("cat", OneHotEncoder(), ["plan"])])
"""
MODELS = {
    "hgb": """%%track hgb
T0 = time.time()
clf = Pipeline([("pre", pre()), ("hgb", HistGradientBoostingClassifier(learning_rate=0.1, max_iter=10))])
clf.fit(X, y)
accuracy = clf.score(X, y)
""",
    "lgbm": """%%track lgbm
T0 = time.time()
lgbm = Pipeline([("pre", pre()), ("lgbm", LGBMClassifier(learning_rate=0.05, n_estimators=5, verbose=-1))])
lgbm.fit(X, y)
accuracy = lgbm.score(X, y)
""",
    "grid": """%%track grid
T0 = time.time()
base = Pipeline([("pre", pre()), ("hgb", HistGradientBoostingClassifier(max_iter=10))])
grid = GridSearchCV(base, {"hgb__learning_rate": [0.3, 0.5]}, cv=2).fit(X, y)
accuracy = grid.score(X, y)
""",
}


def test_compare_lines_up_params_by_the_estimators_own_path(ip):
    """Three models held in differently named variables (a pipeline, another library's
    pipeline, a search over a pipeline) share the rows of their estimators' params; the
    variable stays as context, and the timer variable is no param."""
    assert run_cell(ip, MODELS_SETUP).success
    ids = {}
    for name, code in MODELS.items():
        assert run_cell(ip, code).success
        ids[name] = mlops.runs(filter=f"name = '{name}'").run_id[0]
    runs = [mlops.get_run(ids[n]) for n in ("hgb", "lgbm", "grid")]
    assert "clf.hgb__learning_rate" in runs[0].params  # stored as before, under the variable
    assert not [k for r in runs for k in r.params if k == "T0"]  # a timer, not a param
    c = compare(ids["hgb"], ids["lgbm"], ids["grid"])
    params = c.to_dict()["params"]
    best = runs[2].params["grid.best.hgb__learning_rate"]
    assert best in (0.3, 0.5)
    # the final estimator's own params line up, whatever variable or wrapper held them
    assert params["model.learning_rate"] == [0.1, 0.05, best]  # the search: its best value
    assert params["model.class"] == [
        "HistGradientBoostingClassifier",
        "LGBMClassifier",
        "HistGradientBoostingClassifier",
    ]
    assert params["model.max_iter"] == [10, None, 10]  # LightGBM has no max_iter
    assert params["pipeline.steps"] == ["['pre', 'hgb']", "['pre', 'lgbm']", "['pre', 'hgb']"]
    assert params["pipeline.pre__num__with_mean"] == [True, True, True]
    assert params["search.cv"] == [None, None, 2]
    assert "model.learning_rate" in c.to_dict()["differs"]["params"]
    assert "pipeline.pre__num__with_mean" not in c.to_dict()["differs"]["params"]
    assert not [k for k in params if "T0" in k or k.startswith(("clf.", "lgbm.", "grid."))]
    # most rows are filled in every run: one row per knob, not one per variable
    filled = sum(all(v is not None for v in values) for values in params.values())
    assert filled >= 10
    # the table: the variable as context, and the stored key in each cell's tooltip
    table = c.table_html()
    assert "clf · HistGradientBoostingClassifier" in table
    assert "lgbm · LGBMClassifier" in table and "grid · HistGradientBoostingClassifier" in table
    assert "<td>learning_rate</td>" in table
    assert "<td title='clf.hgb__learning_rate'><code>0.1</code></td>" in table
    assert "<td title='lgbm.lgbm__learning_rate'><code>0.05</code></td>" in table
    assert "title='grid.best.hgb__learning_rate'>" in table
    for group in ("model", "pipeline", "search"):
        assert f"<i>{group}</i>" in table
    # the scatter takes the lined-up rows
    data = c.scatter_data("model.learning_rate", "accuracy")
    assert list(data["model.learning_rate"]) == [0.1, 0.05, best]
    # a search's candidates (child runs store `hgb__learning_rate`) line up with the rest
    children = mlops.get_run(ids["grid"]).children
    with_children = compare(ids["hgb"], *children).to_dict()["params"]
    assert sorted(with_children["model.learning_rate"][1:]) == [0.3, 0.5]
    assert with_children["model.learning_rate"][0] == 0.1
    assert with_children["model.class"] == ["HistGradientBoostingClassifier"] * 3
    assert "hgb__learning_rate" not in with_children


def test_params_of_odd_shapes_are_filed_without_guessing():
    """Two models in one run keep their variables (which model would a row be?); keys
    that are no estimator path stay plain variables; a damaged ``steps`` is no pipeline."""
    from jupyter_mlops.tracking.param_paths import aligned_params

    two = {p.label: p.stored for p in aligned_params({"lr.C": 1.0, "tree.max_depth": 2, "k": 3})}
    assert two == {"lr.C": "lr.C", "tree.max_depth": "tree.max_depth", "k": "k"}
    odd = {p.label for p in aligned_params({".x": 1, "y.": 2, "z": 3})}
    assert odd == {".x", "y.", "z"}
    damaged = aligned_params({"p.steps": "['a', ", "p.a__k": 1}, {"p": "Pipeline"})
    assert {p.label: p.value for p in damaged} == {
        "model.steps": "['a', ",
        "model.a__k": 1,
        "model.class": "Pipeline",
    }
