"""``%%track`` driven through a real IPython shell."""

from __future__ import annotations

import warnings

import pytest

import jupyter_mlops as mlops
from jupyter_mlops.tracking.active import TrackingWarning

from .conftest import run_cell

SETUP = """
import numpy as np
import pandas as pd
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, classification_report, f1_score
from sklearn.model_selection import GridSearchCV, cross_val_score, train_test_split
df = load_breast_cancer(as_frame=True).frame
features = df.columns[:-1]
df[features] = (df[features] - df[features].mean()) / df[features].std()
SEED = 42
"""

TRAIN = """%%track baseline
X_train, X_test, y_train, y_test = train_test_split(df.drop(columns="target"), df.target, random_state=SEED)
C = 0.5
model = LogisticRegression(C=C, max_iter=5000).fit(X_train, y_train)
accuracy = accuracy_score(y_test, model.predict(X_test))
train_accuracy = model.score(X_train, y_train)
print("accuracy is", round(accuracy, 3))
accuracy
"""


def only_run(**filters):
    frame = mlops.runs(experiment="*")  # the store's only run, whatever its experiment
    assert len(frame) == 1, frame
    return mlops.get_run(frame.run_id[0])


def test_track_captures_params_metrics_data_model_code(ip, capsys):
    assert run_cell(ip, SETUP).success
    result = run_cell(ip, TRAIN)
    assert result.success, result.error_in_exec
    # the cell ran as without the magic: namespace, printed output, displayed value
    assert ip.user_ns["C"] == 0.5
    assert 0.9 < ip.user_ns["accuracy"] <= 1
    assert ip.user_ns["_"] == ip.user_ns["accuracy"]
    out = capsys.readouterr().out
    assert "accuracy is" in out

    run = only_run()
    assert run.name == "baseline" and run.status == "finished"
    assert run.duration_s is not None and run.duration_s > 0
    # params: estimator hyperparameters, cell scalars, globals read
    assert run.params["model.C"] == 0.5
    assert run.params["model.max_iter"] == 5000
    assert run.params["C"] == 0.5
    assert run.params["SEED"] == 42
    # metrics with the expression each came from
    assert run.metrics["accuracy"] == pytest.approx(ip.user_ns["accuracy"])
    assert run.metric_sources["accuracy"] == "accuracy_score(y_test, model.predict(X_test))"
    assert run.metric_sources["train_accuracy"] == "model.score(X_train, y_train)"
    # data input fingerprint
    (data,) = [i for i in run.inputs if i["name"] == "df"]
    from jupyter_mlops.data.fingerprint import content_hash

    assert data["content_hash"] == content_hash(ip.user_ns["df"])
    assert data["shape"] == (569, 31)
    assert ("target", "int64") in data["columns"]
    # model saved with skops and its signature
    (model,) = run.models
    assert model["format"] == "skops"
    sig = model["signature"]
    assert len(sig["inputs"]) == 30 and sig["inputs"][0] == {
        "name": "mean radius",
        "dtype": "float64",
    }
    loaded = run.load_model()
    X_test = ip.user_ns["X_test"]
    assert (loaded.predict(X_test) == ip.user_ns["model"].predict(X_test)).all()
    # code, stdout, environment
    assert "LogisticRegression(C=C" in run.code
    assert "accuracy is" in run.stdout
    env = run.environment
    assert env["python"] and "scikit-learn" in env["packages"] and "pandas" in env["packages"]


def test_code_slice_reexecutes_in_fresh_namespace(ip):
    run_cell(ip, SETUP)
    run_cell(ip, "unused = 123")
    run_cell(ip, "df = df[df['mean radius'] > 0]")
    run_cell(ip, TRAIN)
    run = only_run()
    script = run.code_slice
    assert "unused = 123" not in script
    assert "df = df[df['mean radius'] > 0]" in script
    assert "load_breast_cancer" in script
    namespace: dict = {}
    exec(compile(script, "<slice>", "exec"), namespace)
    assert namespace["accuracy"] == pytest.approx(run.metrics["accuracy"])


def test_failing_cell_records_failed_run_and_reraises(ip):
    run_cell(ip, "class Boom(Exception): pass")
    result = run_cell(ip, "%%track crash\nx = 1\nraise Boom('exploded')")
    err = result.error_in_exec
    assert type(err).__name__ == "Boom" and err.args == ("exploded",)
    assert ip.user_ns["x"] == 1
    run = only_run()
    assert run.status == "failed"
    assert "Boom: exploded" in run.error and "Traceback" in run.error


def test_keyboard_interrupt_records_interrupted_run(ip):
    result = run_cell(ip, "%%track stop\nraise KeyboardInterrupt")
    assert isinstance(result.error_in_exec, KeyboardInterrupt)
    assert only_run().status == "interrupted"


def test_unknown_option_is_usage_error_and_cell_does_not_run(ip, capsys):
    result = run_cell(ip, "%%track --bogus\nran = True")
    assert "ran" not in ip.user_ns
    assert type(result.error_in_exec).__name__ == "UsageError"
    assert "--bogus" in str(result.error_in_exec)
    assert len(mlops.runs()) == 0


def test_bad_tag_is_usage_error(ip):
    result = run_cell(ip, "%%track --tag novalue\nran = True")
    assert "ran" not in ip.user_ns
    assert "KEY=VALUE" in str(result.error_in_exec)


def test_options_params_metrics_tags_no_model_no_data(ip):
    run_cell(ip, SETUP)
    run_cell(ip, "class Thing:\n    def __repr__(self): return 'Thing(' + 'x' * 1000 + ')'")
    code = (
        "%%track opts -e exp2 --params obj --metrics odd --tag team=growth --tag stage=dev "
        "--no-model --no-data\n"
        "obj = Thing()\nodd = 0.25\nmodel = LogisticRegression(max_iter=5000).fit(df.drop(columns='target'), df.target)\n"
    )
    assert run_cell(ip, code).success
    run = only_run()
    assert run.experiment == "exp2"
    assert run.tags == {"team": "growth", "stage": "dev"}
    assert run.params["obj"].startswith("Thing(xxx") and len(run.params["obj"]) <= 250
    assert run.metrics["odd"] == 0.25
    assert run.models == [] and run.inputs == []
    assert run.params["model.max_iter"] == 5000


def test_search_gives_child_runs(ip):
    run_cell(ip, SETUP)
    code = (
        "%%track search\n"
        "grid = GridSearchCV(LogisticRegression(max_iter=5000), {'C': [0.1, 1.0, 10.0]}, cv=3)\n"
        "grid.fit(df.drop(columns='target'), df.target)\n"
    )
    assert run_cell(ip, code).success
    frame = mlops.runs()
    assert len(frame) == 4
    parent = mlops.get_run(frame[frame.name == "search"].run_id.iloc[0])
    assert len(parent.children) == 3
    assert parent.params["grid.best.C"] in (0.1, 1.0, 10.0)
    assert "grid.best_score" in parent.metrics
    child = mlops.get_run(parent.children[0])
    assert child.parent_run_id == parent.run_id
    # runs() says which run each candidate belongs to (top-level runs: None)
    by_name = frame.set_index("name").parent_run_id
    assert by_name["search"] is None
    assert set(by_name.drop("search")) == {parent.run_id}
    assert set(mlops.runs(filter=f"parent_run_id = '{parent.run_id}'").run_id) == set(
        parent.children
    )
    assert "C" in child.params and "mean_test_score" in child.metrics
    assert "split0_test_score" in child.metrics
    assert parent.load_model().get_params()["C"] == parent.params["grid.best.C"]


def test_cv_scores_reports_and_logged_curves(ip):
    run_cell(ip, SETUP)
    code = (
        "%%track cv\n"
        "X, y = df.drop(columns='target'), df.target\n"
        "clf = LogisticRegression(max_iter=5000)\n"
        "scores = cross_val_score(clf, X, y, cv=3)\n"
        "report = classification_report(y, clf.fit(X, y).predict(X), output_dict=True)\n"
        "import jupyter_mlops as mlops\n"
        "for epoch in range(5):\n"
        "    mlops.log_metric('loss', 1.0 / (epoch + 1), step=epoch)\n"
    )
    assert run_cell(ip, code).success
    run = only_run()
    assert run.metrics["scores.mean"] == pytest.approx(ip.user_ns["scores"].mean())
    assert run.metrics["scores.std"] == pytest.approx(ip.user_ns["scores"].std())
    assert run.metrics["report.accuracy"] == pytest.approx(ip.user_ns["report"]["accuracy"])
    assert "report.macro avg.f1-score" in run.metrics
    history = run.metric_history("loss")
    assert list(history.step) == [0, 1, 2, 3, 4]
    assert run.metrics["loss"] == pytest.approx(0.2)
    assert "epoch" not in run.params  # loop variables are not params


def test_figures_are_saved(ip):
    run_cell(ip, "import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt")
    assert run_cell(ip, "%%track plot\nfig = plt.figure()\nplt.plot([1, 2, 3])").success
    run = only_run()
    figures = [a for a in run.artifacts if a["kind"] == "figure"]
    assert len(figures) == 1
    assert run.artifact_bytes(figures[0]["name"]).startswith(b"\x89PNG")
    run_cell(ip, "plt.close('all')")


def test_unwritable_store_warns_and_cell_still_runs(ip, tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    mlops.open_store(blocker / "store")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = run_cell(ip, "%%track\nvalue = 41 + 1")
    assert result.success
    assert ip.user_ns["value"] == 42
    messages = [str(w.message) for w in caught if issubclass(w.category, TrackingWarning)]
    assert messages and "not recorded" in messages[0] and "store" in messages[0]


def test_locked_store_warns_and_nothing_is_lost(ip, store_dir, monkeypatch):
    assert run_cell(ip, "%%track first\na = 1").success
    monkeypatch.setenv("MLOPS_BUSY_TIMEOUT", "0.2")
    from jupyter_mlops.store import reset_current_store

    reset_current_store()
    import sqlite3

    holder = sqlite3.connect(store_dir / "mlops.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = run_cell(ip, "%%track second\nb = 2")
        assert result.success and ip.user_ns["b"] == 2
        messages = [str(w.message) for w in caught if issubclass(w.category, TrackingWarning)]
        assert any("locked" in m for m in messages), messages
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    frame = mlops.runs()
    assert list(frame.name) == ["first"]
    assert frame.status[0] == "finished"


def test_with_track_captures_in_plain_python(store_dir):
    from sklearn.datasets import load_iris
    from sklearn.tree import DecisionTreeClassifier

    X, y = load_iris(return_X_y=True, as_frame=True)
    depth = 3

    def train():
        with mlops.track("tree", experiment="scripts") as run:
            clf = DecisionTreeClassifier(max_depth=depth, random_state=0).fit(X, y)
            accuracy = clf.score(X, y)
            run.log_param("extra", {"a": 1})
            run.log_metric("manual", 1.5)
        return run.run_id, accuracy

    run_id, accuracy = train()
    run = mlops.get_run(run_id)
    assert run.experiment == "scripts" and run.status == "finished"
    assert run.params["clf.max_depth"] == 3 and run.params["depth"] == 3
    assert run.params["extra"] == "{'a': 1}"
    assert run.metrics["accuracy"] == pytest.approx(accuracy)
    assert run.metrics["manual"] == 1.5
    assert {i["name"] for i in run.inputs} == {"X", "y"}
    assert run.models[0]["name"] == "clf"


def test_with_track_failure_reraises_same_exception(store_dir):
    err = ValueError("bad")
    with pytest.raises(ValueError) as info, mlops.track("oops"):
        raise err
    assert info.value is err
    assert only_run().status == "failed"


def test_log_without_active_run_says_what_to_do(store_dir):
    with pytest.raises(mlops.MlopsError, match="%%track"):
        mlops.log_metric("x", 1)


def test_altair_chart_displayed_is_saved(ip):
    run_cell(ip, "import altair as alt\nimport pandas as pd\nfrom IPython.display import display")
    code = (
        "%%track chart\n"
        "points = pd.DataFrame({'x': [1, 2, 3], 'y': [3, 1, 2]})\n"
        "display(alt.Chart(points).mark_line().encode(x='x', y='y'))\n"
        "alt.Chart(points).mark_point().encode(x='x', y='y')\n"
    )
    assert run_cell(ip, code).success
    run = only_run()
    figures = [a for a in run.artifacts if a["kind"] == "figure"]
    assert [f["format"] for f in figures] == ["vega-lite", "vega-lite"]
    import json

    specs = [json.loads(run.artifact_bytes(f["name"])) for f in figures]
    assert {s["mark"]["type"] if isinstance(s["mark"], dict) else s["mark"] for s in specs} == {
        "line",
        "point",
    }


def test_with_track_inside_a_cell_captures_the_block(ip):
    run_cell(ip, SETUP)
    code = (
        "import jupyter_mlops as mlops\n"
        "with mlops.track('inline') as run:\n"
        "    clf = LogisticRegression(C=2.0, max_iter=5000).fit(df.drop(columns='target'), df.target)\n"
        "    accuracy = clf.score(df.drop(columns='target'), df.target)\n"
    )
    assert run_cell(ip, code).success
    run = only_run()
    assert run.params["clf.C"] == 2.0 and "accuracy" in run.metrics
    assert run.inputs[0]["name"] == "df" and run.models[0]["name"] == "clf"


def test_run_card_shows_the_essentials(ip):
    run_cell(ip, SETUP)
    run_cell(ip, TRAIN)
    html = only_run()._repr_html_()
    for fragment in ("baseline", "finished", "accuracy", "model.C", "df", "LogisticRegression"):
        assert fragment in html
    assert "<script" not in html


PIPELINE_SETUP = """
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.tree import DecisionTreeClassifier
rng = np.random.default_rng(0)
churn = pd.DataFrame({"tenure": rng.normal(size=60), "plan": rng.choice(["a", "b"], 60)})
churn["churned"] = (churn.tenure > 0).astype(int)
X, y = churn[["tenure", "plan"]], churn.churned
"""


def test_register_takes_the_pipeline_not_its_step_held_in_a_variable(ip, capsys):
    run_cell(ip, PIPELINE_SETUP)
    cell = (
        "%%track --register churn\n"
        "pre = ColumnTransformer([('num', StandardScaler(), ['tenure']),"
        " ('cat', OneHotEncoder(), ['plan'])])\n"
        "pipe = Pipeline([('pre', pre), ('clf', LogisticRegression())])\n"
        "pipe.fit(X, y)\n"
    )
    assert run_cell(ip, cell).success
    assert "not registered" not in capsys.readouterr().err
    run = only_run()
    assert [m["name"] for m in run.models] == ["pipe"]
    assert not any(k.startswith("pre.") for k in run.params)  # the step is no second model
    (version,) = mlops.model_versions("churn").itertuples()
    assert version.run_id == run.run_id
    loaded = mlops.load_model("churn@latest")
    assert type(loaded).__name__ == "Pipeline"
    assert list(loaded.predict(ip.user_ns["X"])) == list(
        ip.user_ns["pipe"].predict(ip.user_ns["X"])
    )


def test_register_with_two_models_fails_visibly_on_the_card_and_later_cells_work(ip, capsys):
    run_cell(ip, PIPELINE_SETUP)
    cell = (
        "%%track two --register churn\n"
        "num = X[['tenure']]\n"
        "lr = LogisticRegression().fit(num, y)\n"
        "tree = DecisionTreeClassifier(max_depth=2).fit(num, y)\n"
    )
    assert run_cell(ip, cell).success  # the cell itself ran; its registration did not
    run = only_run()
    assert sorted(m["name"] for m in run.models) == ["lr", "tree"]
    why = run.tags["mlops.register_error"]
    assert "churn" in why and "lr, tree" in why and "--model" in why
    card = run._repr_html_()
    assert "<div class=err>" in card and "Not registered as churn" in card
    assert "mlops.register_error" not in card  # shown as the error line, not as a tag
    assert "not registered" not in capsys.readouterr().err
    assert mlops.models().empty
    # later cells still work, and choosing the model registers it
    assert run_cell(
        ip,
        "%%track again --register churn --model tree\n"
        "tree = DecisionTreeClassifier(max_depth=3).fit(X[['tenure']], y)\n"
        "lr2 = 1\n",
    ).success
    assert list(mlops.model_versions("churn").version) == [1]
    assert run_cell(ip, "z = 2 + 2").success and ip.user_ns["z"] == 4


LOOP = """%%track gd
import jupyter_mlops as mlops
lr = 0.1
w = 0.0
for i in range(50):
    grad = 2 * (w - 3.0)
    w = w - lr * grad
    loss = (w - 3.0) ** 2
    mlops.log_metric("loss", loss, step=i)
"""


def test_fifty_stepped_points_are_fifty_and_loop_state_is_no_param(ip):
    assert run_cell(ip, LOOP).success
    run = only_run()
    history = run.metric_history("loss")
    assert list(history.step) == list(range(50))  # no extra point at step 0
    assert run.metrics["loss"] == pytest.approx(ip.user_ns["loss"])
    assert run.params == {"lr": 0.1}  # w, grad, loss, i: rebound in the loop, not params


def test_the_same_loop_cell_run_twice_records_the_same_both_times(ip):
    assert run_cell(ip, LOOP).success
    assert run_cell(ip, LOOP).success  # now `loss`, `w` and `grad` exist from the first run
    first, second = (mlops.get_run(r) for r in mlops.runs().sort_values("start_time").run_id)
    assert first.params == second.params == {"lr": 0.1}
    assert first.metrics == pytest.approx(second.metrics)
    assert list(second.metric_history("loss").step) == list(range(50))


def test_a_metric_assigned_in_a_while_loop_is_a_metric_and_its_state_no_param(ip):
    code = (
        "%%track\n"
        "tol = 1e-3\n"
        "w, val_loss, epoch = 0.0, 1.0, 0\n"
        "while val_loss > tol:\n"
        "    w = w + 0.5 * (1.0 - w)\n"
        "    val_loss = (1.0 - w) ** 2\n"
        "    epoch += 1\n"
    )
    assert run_cell(ip, code).success
    assert run_cell(ip, code).success
    for run_id in mlops.runs().run_id:
        run = mlops.get_run(run_id)
        assert run.params == {"tol": 1e-3}
        assert run.metrics["val_loss"] == pytest.approx(ip.user_ns["val_loss"])
        # one point per iteration of the loop (issue 15), the same on the second run
        assert list(run.metric_history("val_loss").step) == list(range(ip.user_ns["epoch"]))


def test_a_timer_is_no_param(ip):
    """Values taken from a clock, in the cell or in the earlier cell that set them, hold
    when the cell ran, not a setting: they are no params; the settings still are."""
    setup = (
        "import time, datetime\n"
        "from time import perf_counter as pc\n"
        "T_START = time.time()\n"
        "LR = 0.1\n"
    )
    assert run_cell(ip, setup).success
    code = (
        "%%track timed\n"
        "T0 = time.time()\n"
        "t1 = pc()\n"
        "stamp = datetime.datetime.now().timestamp()\n"
        "C = 0.5\n"
        "elapsed = time.time() - T0\n"
        "since_start = time.time() - T_START + LR\n"
    )
    assert run_cell(ip, code).success
    run = only_run()
    assert run.params == {"C": 0.5, "LR": 0.1}
    assert "T_START" not in mlops.runs().columns.str.removeprefix("params.")
    # named on purpose, a timer is recorded like any variable
    assert run_cell(ip, "%%track --params T0\nT0 = time.time()\nD = 3\n").success
    latest = mlops.get_run(mlops.runs(order_by="-start_time").run_id[0])
    assert set(latest.params) == {"T0", "D"} and latest.params["T0"] == ip.user_ns["T0"]
