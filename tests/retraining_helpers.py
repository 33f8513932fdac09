"""Helpers for the retraining and CI tests: churn data whose relation between features and
label changes between versions (so a retrained model beats the champion on new data), a
champion trained in a real IPython shell (so its run has a replayable code slice)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

import jupyter_mlops as mlops

FEATURES = ["tenure", "charges", "calls", "age"]


def churn_data(seed: int, rows: int, weight: float = 1.0, shift: float = 0.0) -> pd.DataFrame:
    """``churned`` depends on tenure and on charges with ``weight`` (its sign flips between
    the old world and the new); ``shift`` moves the calls feature (drift a monitor sees)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, len(FEATURES)))
    x[:, 2] += shift
    y = (x[:, 0] + weight * x[:, 1] + 0.3 * rng.normal(size=rows)) > 0
    frame = pd.DataFrame(x, columns=FEATURES)
    frame["churned"] = y.astype(int)
    return frame


TRAIN_CELL = """%%track --register churn
X_train, X_test, y_train, y_test = train_test_split(
    df.drop(columns="churned"), df.churned, random_state=0
)
model = LogisticRegression(max_iter=1000).fit(X_train, y_train)
accuracy = model.score(X_test, y_test)
"""


def train_champion(ip: Any, *, cell: str = TRAIN_CELL) -> Any:
    """``churn_train@v1`` (old world), ``churn@1`` trained on it in ``ip``, production → 1."""
    mlops.snapshot(churn_data(0, 600, 1.0), "churn_train")
    setup = ip.run_cell(
        "import jupyter_mlops as mlops\n"
        "from sklearn.linear_model import LogisticRegression\n"
        "from sklearn.model_selection import train_test_split\n"
        "df = mlops.load_data('churn_train@latest')",
        store_history=True,
    )
    setup.raise_error()
    result = ip.run_cell(cell, store_history=True)
    result.raise_error()
    mlops.set_alias("churn", "production", 1)
    return mlops.get_model_version("churn@production")


def new_world() -> None:
    """``churn_train@v2`` and ``churn_holdout@v1`` from the new world (charges flipped)."""
    mlops.snapshot(churn_data(1, 600, -1.0), "churn_train")
    mlops.snapshot(churn_data(2, 400, -1.0), "churn_holdout")


def wait_for(predicate: Any, timeout: float = 60.0, every: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {predicate}")
