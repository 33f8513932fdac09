"""``mlops.runs(filter=..., order_by=...)``: the query language and its SQL."""

from __future__ import annotations

from pathlib import Path

import pytest

import jupyter_mlops as mlops
from jupyter_mlops.errors import QueryError, ValidationError
from jupyter_mlops.tracking import query as q
from jupyter_mlops.tracking.defaults import set_default_experiment

from .conftest import cli, run_cell


@pytest.fixture
def six_runs(store_dir):
    mlops.set_experiment("q")  # runs() reads the default experiment's runs
    specs = [
        ("a", "lbfgs", 0.1, 0.70, "growth"),
        ("b", "lbfgs", 1.0, 0.85, "growth"),
        ("c", "saga", 10.0, 0.91, "core"),
        ("d", "saga", 0.5, 0.95, None),
        ("e", "newton", 2.0, None, "core"),
        ("f'; DROP TABLE runs; --", "x", 3.0, 0.5, None),
    ]
    for name, solver, c, acc, team in specs:
        with mlops.track(name, experiment="q", capture=False) as run:
            run.log_params({"model.C": c, "solver": solver, "max_iter": 100})
            if acc is not None:
                run.log_metric("acc", acc)
                run.log_metric("f1-score", acc - 0.05)
            if team:
                run.set_tag("team", team)
    return store_dir


def names(frame):
    return list(frame.name)


def test_filter_and_order(six_runs):
    frame = mlops.runs(filter="metrics.acc > 0.8 and params.model.C <= 1", order_by="-metrics.acc")
    assert names(frame) == ["d", "b"]
    frame = mlops.runs(
        filter="metrics.acc > 0.5 and status = 'finished'", order_by="metrics.acc", limit=2
    )
    assert names(frame) == ["a", "b"]
    assert names(mlops.runs(filter="params.solver in ('saga', 'newton')", order_by="name")) == [
        "c",
        "d",
        "e",
    ]
    assert names(mlops.runs(filter="tags.team = 'core' or name like 'a%'", order_by="name")) == [
        "a",
        "c",
        "e",
    ]
    assert names(mlops.runs(filter="metrics.acc is null")) == ["e"]
    assert names(mlops.runs(filter="not params.model.C < 2", order_by="-params.model.C")) == [
        "c",
        "f'; DROP TABLE runs; --",
        "e",
    ]
    assert names(mlops.runs(filter="metrics.`f1-score` >= 0.89")) == ["d"]
    assert names(mlops.runs(filter="metrics.acc >= 2 * params.model.C")) == ["a"]


def test_columns_and_types(six_runs):
    frame = mlops.runs(experiment="q", order_by="name")
    # the attributes README lists for the filter language, in its order, are the columns
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    listed = readme.split("the attributes\n`", 1)[1].split("`", 1)[0].split()
    assert listed == [
        "run_id",
        "name",
        "experiment",
        "status",
        "start_time",
        "end_time",
        "duration_s",
        "parent_run_id",
        "user",
    ]
    assert list(frame.columns[: len(listed)]) == listed
    assert frame.parent_run_id.tolist() == [None] * 6  # top-level runs
    assert (frame.end_time >= frame.start_time).all() and frame.user.notna().all()
    assert str(frame["end_time"].dtype).startswith("datetime64")
    assert {"params.model.C", "params.solver", "metrics.acc", "tags.team"} <= set(frame.columns)
    assert str(frame["params.max_iter"].dtype) == "int64"
    assert str(frame["params.model.C"].dtype) == "float64"
    assert str(frame["start_time"].dtype).startswith("datetime64")
    assert mlops.runs(experiment="nope").empty


def test_names_with_quotes_are_data_not_sql(six_runs):
    frame = mlops.runs(filter="name = 'f''; DROP TABLE runs; --'")
    assert len(frame) == 1
    assert len(mlops.runs()) == 6


@pytest.mark.parametrize(
    ("text", "position", "fragment"),
    [
        ("metrics.acc >", 13, "Expected a field or a value"),
        ("metrics.acc > 0.5 and", 21, "Expected a field or a value"),
        ("accuracy > 0.5", 0, "Unknown field 'accuracy'"),
        ("metrics.acc > 0.5; DROP TABLE runs", 17, "Unexpected character ';'"),
        ("metrics.acc > 0.5 or 1=1 --", 27, "Expected a field or a value"),
        ("status = 'finished", 9, "Unexpected character"),
        ("(metrics.acc > 1", 16, "Expected ')'"),
        ("metrics > 1", 0, "needs a name"),
        ("metrics.acc", 0, "Expected a condition"),
    ],
)
def test_syntax_errors_name_the_position(six_runs, text, position, fragment):
    with pytest.raises(QueryError) as info:
        mlops.runs(filter=text)
    assert info.value.position == position, str(info.value)
    assert fragment in str(info.value)
    assert f"at position {position}" in str(info.value)
    assert len(mlops.runs()) == 6


def test_empty_filter_means_all_runs(six_runs):
    assert len(mlops.runs(filter="")) == len(mlops.runs(filter="  ")) == 6


def test_errors_are_mlops_errors():
    with pytest.raises(mlops.MlopsError):
        q.parse("x >")


def test_order_by_forms():
    assert [(f.key, d) for f, d in q.parse_order("-metrics.acc")] == [("acc", True)]
    assert [(f.key, d) for f, d in q.parse_order("metrics.acc desc, name")] == [
        ("acc", True),
        ("name", False),
    ]
    with pytest.raises(QueryError):
        q.parse_order("metrics.acc sideways")


def test_time_filters(six_runs):
    assert len(mlops.runs(filter="start_time > '2000-01-01'")) == 6
    assert mlops.runs(filter="start_time < '2000-01-01'").empty
    with pytest.raises(QueryError, match="not a date"):
        mlops.runs(filter="start_time > 'yesterday'")


@pytest.mark.parametrize(
    "text",
    [
        "metrics.acc " + "+1" * 2000 + " > 0",  # the report's case: RecursionError before
        "(" * 100_000 + "metrics.acc > 0" + ")" * 100_000,
        "not " * 5000 + "metrics.acc > 0",
        "metrics.acc > " + "-" * 5000 + "1",
    ],
)
def test_deep_filters_are_refused_with_the_limit(six_runs, text):
    with pytest.raises(QueryError, match=f"more than {q.MAX_DEPTH} levels"):
        mlops.runs(filter=text)
    assert len(mlops.runs()) == 6  # nothing changed


def test_long_flat_filters_work_up_to_the_limit(six_runs):
    wide = " or ".join(f"metrics.acc = {i / 100}" for i in range(q.MAX_CONDITIONS))
    assert len(mlops.runs(filter=wide)) == 5  # every run with a metric (e has none)
    with pytest.raises(QueryError, match=r"in \(\.\.\.\)"):
        mlops.runs(filter=wide + " or metrics.acc = 7")
    values = ", ".join(str(i / 100) for i in range(3000))
    assert len(mlops.runs(filter=f"metrics.acc in ({values})")) == 5
    sums = "metrics.acc " + "+ 0" * 90 + " > 0.9"
    assert names(mlops.runs(filter=sums, order_by="name")) == ["c", "d"]


def open_notebook(ip, name: str) -> None:
    """What a new kernel for notebook ``name`` does: the frontend tells the kernel the
    notebook's path and ``%load_ext`` announces the experiment named after it."""
    from IPython.utils.capture import capture_output

    set_default_experiment(None)
    ip.user_ns["__session__"] = str(Path.cwd() / f"{name}.ipynb")
    with capture_output() as out:
        assert run_cell(ip, "%reload_ext jupyter_mlops").success
    assert f"experiment '{name}'" in out.stdout


def train(ip, name: str, accuracy: float) -> str:
    code = (
        f"%%track {name}\nimport jupyter_mlops as mlops\nmlops.log_metric('accuracy', {accuracy})\n"
    )
    assert run_cell(ip, code).success
    return mlops.runs(experiment="*", filter=f"name = '{name}'").run_id[0]


@pytest.fixture
def two_notebooks(ip):
    """quickstart.ipynb then registry.ipynb run in one folder (one store), as ``make lab``."""
    open_notebook(ip, "quickstart")
    ids = {"qs": train(ip, "qs", 0.97)}
    open_notebook(ip, "registry")
    ids |= {"reg-a": train(ip, "reg-a", 0.90), "reg-b": train(ip, "reg-b", 0.80)}
    return ids


def test_runs_default_to_the_notebooks_experiment(two_notebooks):
    ids = two_notebooks
    # the case: the registry notebook's best run is its own, not quickstart's
    frame = mlops.runs(order_by="-metrics.accuracy")
    assert list(frame.name) == ["reg-a", "reg-b"] and frame.run_id[0] == ids["reg-a"]
    assert set(frame.experiment) == {"registry"} and frame.attrs["experiment"] == "registry"
    # "*" for every experiment, a name for another one, a filter on experiment sets the scope
    every = mlops.runs(experiment="*", order_by="-metrics.accuracy")
    assert list(every.name) == ["qs", "reg-a", "reg-b"] and every.attrs["experiment"] is None
    assert list(mlops.runs(experiment="quickstart").name) == ["qs"]
    assert list(mlops.runs(filter="experiment = 'quickstart'").name) == ["qs"]
    assert names(mlops.runs(filter="experiment != 'nope'", order_by="name")) == [
        "qs",
        "reg-a",
        "reg-b",
    ]
    assert names(mlops.runs(filter="metrics.accuracy > 0.85")) == ["reg-a"]
    # set_experiment moves the default scope; get_run reads any run
    mlops.set_experiment("quickstart")
    assert list(mlops.runs().name) == ["qs"]
    assert mlops.get_run(ids["reg-b"]).experiment == "registry"


def test_callers_that_mean_every_experiment_get_every_one(two_notebooks, store_dir):
    from jupyter_mlops.server.payloads import runs_payload
    from jupyter_mlops.store import current_store

    # the sidebar's REST route lists the store's recent runs, whatever the kernel's experiment
    assert {r["name"] for r in runs_payload(current_store())} == {"qs", "reg-a", "reg-b"}
    out = cli(store_dir, "runs", "--format", "csv", "-c", "name")
    assert sorted(out.stdout.split()[1:]) == ["qs", "reg-a", "reg-b"]
    out = cli(store_dir, "runs", "--format", "csv", "-c", "name", "-e", "quickstart")
    assert out.stdout.split()[1:] == ["qs"]


@pytest.mark.parametrize("bad", ["", "  ", 3])
def test_a_bad_experiment_is_refused_and_nothing_changes(two_notebooks, bad):
    with pytest.raises(ValidationError, match="experiment name or '\\*'"):
        mlops.runs(experiment=bad)
    assert len(mlops.runs(experiment="*")) == 3 and len(mlops.runs()) == 2


SWEEP_SETUP = """
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import ExtraTreesClassifier, HistGradientBoostingClassifier
from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
rng = np.random.default_rng(0)
churn = pd.DataFrame({"tenure": rng.normal(size=120), "plan": rng.choice(["a", "b"], 120)})
churn["churned"] = (churn.tenure > 0).astype(int)
X, y = churn[["tenure", "plan"]], churn.churned
"""
SWEEP = """%%track lr-{lr}
pre = ColumnTransformer([("num", StandardScaler(), ["tenure"]),
                         ("cat", OneHotEncoder(handle_unknown="ignore"), ["plan"])])
pipe = Pipeline([("pre", pre), ("hgb", HistGradientBoostingClassifier(learning_rate={lr}, max_iter=10))])
pipe.fit(X, y)
accuracy = pipe.score(X, y)
"""


@pytest.fixture
def sweep(ip):
    """Three runs of a ColumnTransformer pipeline that differ only in the learning rate."""
    assert run_cell(ip, SWEEP_SETUP).success
    for lr in (0.05, 0.1, 0.2):
        assert run_cell(ip, SWEEP.format(lr=lr)).success
    return ip


def _params(frame):
    return {c for c in frame.columns if c.startswith("params.")}


def test_runs_shows_the_params_that_vary_or_differ_from_their_defaults(sweep, store_dir):
    every = mlops.runs(params="all")
    frame = mlops.runs()
    assert len(frame) == len(every) == 3
    shown, stored = _params(frame), _params(every)
    assert len(stored) >= 40 and len(shown) <= 10  # not dozens of untouched defaults
    assert "params.pipe.hgb__learning_rate" in shown  # differs between the runs
    assert "params.pipe.hgb__max_iter" in shown  # the same in each, but not the default
    assert "params.pipe.pre__cat__handle_unknown" in shown
    for default in ("params.pipe.pre__cat__categories", "params.pipe.hgb__l2_regularization"):
        assert default in stored and default not in shown
    assert set(frame.attrs["hidden_params"]) == stored - shown
    assert set(every.attrs["hidden_params"]) == stored - shown  # "all" says the same
    assert (every[sorted(shown)].astype(str) == frame[sorted(shown)].astype(str)).all().all()
    # a hidden param is still stored and filters and orders; named, it is a column
    hit = mlops.runs(filter="params.pipe.pre__cat__categories = 'auto'")
    assert len(hit) == 3 and "params.pipe.pre__cat__categories" in hit
    assert "params.pipe.hgb__l2_regularization" not in hit
    ordered = mlops.runs(order_by="params.pipe.hgb__tol")
    assert "params.pipe.hgb__tol" in ordered and len(ordered) == 3
    run = mlops.get_run(frame.run_id[0])
    assert run.params["pipe.pre__cat__categories"] == "auto"  # kept on the run
    # the CLI's columns may name a hidden param
    out = cli(store_dir, "runs", "--format", "csv", "-c", "name,params.pipe.hgb__tol")
    assert out.returncode == 0 and out.stdout.splitlines()[0] == "name,params.pipe.hgb__tol"
    assert len(out.stdout.splitlines()) == 4


def test_the_runs_explorer_chooser_starts_from_the_params_worth_a_column(sweep):
    from jupyter_mlops.views.runs import runs_view

    view = runs_view()
    offered = {c for c in view.column_chooser.options if c.startswith("params.")}
    assert offered == _params(mlops.runs())
    assert "params.pipe.hgb__learning_rate" in view.columns  # the one that varies
    view.all_params.value = True  # every stored param on offer, the choice kept
    assert {c for c in view.column_chooser.options if c.startswith("params.")} == _params(
        mlops.runs(params="all")
    )
    assert "params.pipe.hgb__learning_rate" in view.columns
    view.column_chooser.value = (*view.column_chooser.value, "params.pipe.hgb__tol")
    assert "params.pipe.hgb__tol" in view.columns
    view.all_params.value = False  # a chosen hidden param stays chosen
    assert "params.pipe.hgb__tol" in view.columns
    assert "params.pipe.hgb__l2_regularization" not in view.column_chooser.options


def test_a_default_that_differs_between_estimators_is_shown(ip):
    """Two forests under one name: ``bootstrap`` is each class's default, but the runs
    differ in it, so it is a column; ``max_depth`` set in one run only is one too."""
    assert run_cell(ip, SWEEP_SETUP).success
    num = "X[['tenure']]"
    assert run_cell(ip, f"%%track rf\nmodel = RandomForestClassifier(5).fit({num}, y)\n").success
    assert run_cell(
        ip, f"%%track et\nmodel = ExtraTreesClassifier(5, max_depth=3).fit({num}, y)\n"
    ).success
    shown = _params(mlops.runs())
    assert {"params.model.bootstrap", "params.model.max_depth"} <= shown
    assert "params.model.min_samples_leaf" not in shown  # 1 in both: the default in both


def test_runs_recorded_before_summaries_listed_defaults_hide_them_too(sweep):
    """A store written by an earlier version: its summaries have no list of defaults, which
    is then read from the runs' tags."""
    import json

    import sqlalchemy as sa

    from jupyter_mlops.store import current_store, schema

    expected = _params(mlops.runs())
    r = schema.runs
    with current_store().write() as conn:
        for run_id, summary in conn.execute(sa.select(r.c.run_id, r.c.summary)).all():
            doc = json.loads(summary)
            doc.pop("d")
            conn.execute(r.update().where(r.c.run_id == run_id).values(summary=json.dumps(doc)))
    assert _params(mlops.runs()) == expected


@pytest.mark.parametrize("bad", ["every", "ALL", 1, ["params.C"]])
def test_a_bad_params_choice_is_refused_and_nothing_changes(six_runs, bad):
    before = mlops.runs(params="all")
    with pytest.raises(ValidationError, match=r"params must be None .* or 'all'"):
        mlops.runs(params=bad)
    after = mlops.runs(params="all")
    assert after.drop(columns=["start_time", "end_time"]).equals(
        before.drop(columns=["start_time", "end_time"])
    )
