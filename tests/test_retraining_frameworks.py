"""Boosted models through retraining and CI: an XGBoost champion replayed on new data
(a cell with an eval set and early stopping), gated on the framework's own model; a
LightGBM ``lgb.train`` booster, gated as the classifier its objective makes it; and
``jupyter-mlops ci run`` on a notebook that trains a LightGBM model."""

from __future__ import annotations

import re

import nbformat
import pytest

import jupyter_mlops as mlops
from jupyter_mlops.store import reset_current_store

from .conftest import cli
from .retraining_helpers import churn_data, new_world, train_champion

xgb = pytest.importorskip("xgboost")
lgb = pytest.importorskip("lightgbm")

XGB_CELL = """%%track --register churn
import xgboost as xgb
X_train, X_test, y_train, y_test = train_test_split(
    df.drop(columns="churned"), df.churned, random_state=0
)
model = xgb.XGBClassifier(n_estimators=200, max_depth=3, early_stopping_rounds=10, n_jobs=1)
model.fit(X_train, y_train, eval_set=[(X_test, y_test)], verbose=False)
accuracy = model.score(X_test, y_test)
"""

LGB_TRAIN_CELL = """%%track --register churn
import lightgbm as lgb
X_train, X_test, y_train, y_test = train_test_split(
    df.drop(columns="churned"), df.churned, random_state=0
)
train_set = lgb.Dataset(X_train, label=y_train)
valid_set = lgb.Dataset(X_test, label=y_test, reference=train_set)
booster = lgb.train(
    {"objective": "binary", "num_leaves": 7, "learning_rate": 0.1, "verbose": -1, "num_threads": 1},
    train_set, num_boost_round=150, valid_sets=[valid_set], valid_names=["valid"],
    callbacks=[lgb.early_stopping(10, verbose=False)],
)
"""

XGB_TRAIN_CELL = """%%track --register churn
import xgboost as xgb
X_train, X_test, y_train, y_test = train_test_split(
    df.drop(columns="churned"), df.churned, random_state=0
)
dtrain = xgb.DMatrix(X_train, label=y_train)
dvalid = xgb.DMatrix(X_test, label=y_test)
booster = xgb.train({"objective": "binary:logistic", "max_depth": 3, "nthread": 1}, dtrain,
                    num_boost_round=150, evals=[(dvalid, "valid")], early_stopping_rounds=10,
                    verbose_eval=False)
"""


def test_retrain_replays_an_xgboost_champion_and_gates_on_its_model(ip):
    champion = train_champion(ip, cell=XGB_CELL)
    assert champion.format == "xgboost-ubj"
    first = mlops.get_run(champion.run_id)
    new_world()
    job = mlops.retrain(
        "churn",
        data={"df": "churn_train@latest"},
        gate=["accuracy >= champion", "roc_auc >= 0.9"],
        holdout="churn_holdout@latest",
        timeout=180,
    )
    assert job.status == "finished", job.error
    assert job.promoted and job.passed
    assert (job.champion, job.challenger) == ("churn@1", "churn@2")
    # both models were scored as XGBoost models on the same holdout rows
    scores = job.gate.scores
    assert scores["challenger"]["accuracy"] > scores["champion"]["accuracy"] + 0.2
    assert scores["challenger"]["roc_auc"] > 0.9
    challenger = mlops.load_model("churn@production")
    assert type(challenger) is xgb.XGBClassifier
    # the replay ran the cell as written: early stopping on its eval set, its params
    run = mlops.get_run(job.run_id)
    assert run.parent_run_id == first.run_id
    assert run.params["model.n_estimators"] == 200 and run.params["model.max_depth"] == 3
    assert run.params["model.early_stopping_rounds"] == 10
    history = run.metric_history("validation_0.logloss")
    assert len(history) == challenger.best_iteration + 11  # stopped 10 rounds after the best
    assert run.metrics["best_iteration"] == challenger.best_iteration
    holdout = mlops.load_data("churn_holdout@latest")
    features = holdout.drop(columns="churned")
    assert (challenger.predict(features) == holdout.churned).mean() == pytest.approx(
        scores["challenger"]["accuracy"]
    )


@pytest.mark.parametrize("cell", [LGB_TRAIN_CELL, XGB_TRAIN_CELL], ids=["lgb.train", "xgb.train"])
def test_retrain_gates_a_booster_as_the_classifier_its_objective_makes_it(ip, cell):
    train_champion(ip, cell=cell)
    booster_class = lgb.Booster if "lgb.train" in cell else xgb.Booster
    assert type(mlops.load_model("churn@production")) is booster_class
    new_world()
    job = mlops.retrain(
        "churn",
        gate=["accuracy >= champion", "roc_auc >= 0.9", "log_loss < 0.5"],
        holdout="churn_holdout@latest",
        timeout=180,
    )
    assert job.status == "finished", job.error
    assert job.passed and job.promoted, str(job.gate)
    scores = job.gate.scores
    assert scores["challenger"]["accuracy"] > scores["champion"]["accuracy"] + 0.2
    # the score is the booster's own probabilities, thresholded at 0.5
    booster = mlops.load_model("churn@production")
    holdout = mlops.load_data("churn_holdout@latest")
    features = holdout.drop(columns="churned")
    if booster_class is xgb.Booster:
        features = xgb.DMatrix(features)
    predicted = booster.predict(features) > 0.5
    assert (predicted == holdout.churned.astype(bool)).mean() == pytest.approx(
        scores["challenger"]["accuracy"]
    )


def test_a_regression_booster_scores_as_a_regressor_and_says_so_for_accuracy():
    from jupyter_mlops.retraining.gate import Candidate, Holdout, evaluate_gate, parse_gate

    frame = churn_data(3, 300)
    x, y = frame.drop(columns="churned"), frame.churned
    reg = lgb.train({"objective": "regression", "verbose": -1}, lgb.Dataset(x, label=y), 10)
    result = evaluate_gate(
        parse_gate(["rmse < 1", "accuracy >= 0.5"]),
        Candidate("reg", reg, {"inputs": [{"name": c} for c in x.columns]}),
        None,
        Holdout(x, y, "h@v1", "ab" * 32, len(x), "churned"),
    )
    assert "cannot be scored on accuracy" in str(result) and not result.passed
    assert result.scores["challenger"]["rmse"] < 1


PARAMS = "N_ESTIMATORS = 200\nNUM_LEAVES = 15\n"
SETUP = """%load_ext jupyter_mlops
import jupyter_mlops as mlops
import lightgbm as lgb
import pandas as pd
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

data = load_breast_cancer(as_frame=True)
X = data.data.iloc[:, :8]
X_train, X_test, y_train, y_test = train_test_split(X, data.target, random_state=0)
mlops.snapshot(pd.concat([X_test, y_test], axis=1), "cancer_holdout")
"""
TRAIN = """%%track --register cancer
model = lgb.LGBMClassifier(n_estimators=N_ESTIMATORS, num_leaves=NUM_LEAVES, n_jobs=1, verbose=-1)
model.fit(X_train, y_train, eval_set=[(X_test, y_test)],
          callbacks=[lgb.early_stopping(20, verbose=False)])
accuracy = model.score(X_test, y_test)
"""


@pytest.mark.slow
def test_ci_run_gates_registers_and_promotes_a_lightgbm_model(store_dir, tmp_path):
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell(PARAMS, metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(SETUP),
        nbformat.v4.new_code_cell(TRAIN),
    ]
    path = tmp_path / "train_lgbm.ipynb"
    nbformat.write(notebook, path)
    gates = ["--gate", "roc_auc>=0.95", "--gate", "accuracy >= champion - 0.01"]
    register = [
        "--register",
        "cancer",
        "--promote",
        "staging",
        "--holdout",
        "cancer_holdout@latest",
    ]
    out = cli(store_dir, "ci", "run", str(path), *gates, *register)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "PASS roc_auc>=0.95 (roc_auc = 0.9" in out.stdout
    assert "promoted cancer@staging → cancer@1" in out.stdout
    reset_current_store()
    model = mlops.load_model("cancer@staging")
    assert type(model) is lgb.LGBMClassifier and model.best_iteration_ > 0
    run = mlops.get_run(mlops.get_model_version("cancer@1").run_id)
    assert len(run.metric_history("valid_0.binary_logloss")) > 1
    assert run.params["model.num_leaves"] == 15

    # a much weaker model (two leaves, one round) fails the champion check: nothing moves
    out = cli(store_dir, "ci", "run", str(path), "-p", "N_ESTIMATORS=1", "-p", "NUM_LEAVES=2",
              *gates, *register)  # fmt: skip
    assert out.returncode == 1, out.stdout + out.stderr
    assert re.search(
        r"FAIL accuracy >= champion - 0.01 \(accuracy = 0\.\d+, champion = 0\.9", out.stdout
    )
    reset_current_store()
    assert mlops.get_model_version("cancer@staging").version == 1
    assert list(mlops.model_versions("cancer").version) == [1]
