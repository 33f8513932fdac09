"""Models whose output is a probability or a value (an XGBoost or LightGBM ``Booster``
from a training function), as scikit-learn's scorers take them: a classifier with
``classes_``, ``predict`` and ``predict_proba``, or a regressor. A gate scores every
flavor's model through these, so ``accuracy >= champion`` means the same for a
``Booster`` as for an ``XGBClassifier``. Imported only when a gate scores such a model.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin

__all__ = ["ProbabilityClassifier", "ValueRegressor"]


class ProbabilityClassifier(ClassifierMixin, BaseEstimator):
    """``model.predict`` gives the positive class's probability (binary) or a row of
    class probabilities; the classes are 0..n_classes-1, as the booster was trained."""

    def __init__(self, model: Any = None, n_classes: int = 2):
        self.model = model
        self.n_classes = n_classes

    @property
    def classes_(self) -> Any:
        return np.arange(self.n_classes)

    def __sklearn_is_fitted__(self) -> bool:
        return True

    def fit(self, x: Any, y: Any = None) -> ProbabilityClassifier:
        raise TypeError("a trained booster is scored, not fitted again here")

    def predict_proba(self, x: Any) -> Any:
        """Class probabilities, one column per class."""
        p = np.asarray(self.model.predict(x), dtype=float)
        if p.ndim == 1:
            p = np.column_stack([1.0 - p, p])
        return p

    def predict(self, x: Any) -> Any:
        """The most probable class."""
        return self.classes_[np.argmax(self.predict_proba(x), axis=1)]


class ValueRegressor(RegressorMixin, BaseEstimator):
    """``model.predict`` gives the predicted value."""

    def __init__(self, model: Any = None):
        self.model = model

    def __sklearn_is_fitted__(self) -> bool:
        return True

    def fit(self, x: Any, y: Any = None) -> ValueRegressor:
        raise TypeError("a trained booster is scored, not fitted again here")

    def predict(self, x: Any) -> Any:
        """The predicted values."""
        return np.asarray(self.model.predict(x), dtype=float).ravel()
