"""A fresh IPython shell for the parts that run cells, and the training cell they time."""

from __future__ import annotations

from typing import Any

from _common import now

SETUP_CELL = """\
import warnings
import pandas as pd
from sklearn.datasets import load_breast_cancer
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split
warnings.filterwarnings("ignore", category=ConvergenceWarning)
X, y = load_breast_cancer(return_X_y=True, as_frame=True)
"""

MAX_ITER = 200

TRAIN_CELL = f"""\
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)
model = LogisticRegression(max_iter={MAX_ITER}).fit(X_train, y_train)
accuracy = accuracy_score(y_test, model.predict(X_test))
"""


def new_shell() -> Any:
    """A fresh in-process IPython shell (what a kernel wraps), history kept in memory."""
    from IPython.core.interactiveshell import InteractiveShell

    return InteractiveShell.instance()


def run(ip: Any, code: str) -> float:
    """Run a cell as a user would (stored in history); seconds taken; raise if it failed."""
    t0 = now()
    result = ip.run_cell(code, store_history=True)
    elapsed = now() - t0
    if not result.success:
        err = result.error_in_exec or result.error_before_exec
        raise RuntimeError(f"cell failed: {err!r}\n{code}")
    return elapsed
