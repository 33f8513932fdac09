"""Model performance once ground truth arrives: the served predictions joined with their
feedback labels by request id, scored with scikit-learn's metrics."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["performance"]


def performance(
    predictions: Any, labels: Any, *, classifier: bool, proba: Any = None
) -> dict[str, float]:
    """Classifier: accuracy, precision, recall, f1 (binary on the second class, else
    macro-averaged), roc_auc when probabilities are known. Regressor: mae, rmse, r2."""
    from sklearn import metrics

    y_pred = np.asarray(predictions)
    y_true = np.asarray(labels)
    if len(y_true) == 0:
        return {}
    if not classifier:
        y_true = y_true.astype(float)
        y_pred = y_pred.astype(float)
        return {
            "mae": float(metrics.mean_absolute_error(y_true, y_pred)),
            "rmse": float(np.sqrt(metrics.mean_squared_error(y_true, y_pred))),
            "r2": float(metrics.r2_score(y_true, y_pred)) if len(y_true) > 1 else float("nan"),
        }
    classes = np.unique(np.concatenate([y_true.astype(str), y_pred.astype(str)]))
    binary = len(classes) <= 2
    average = "binary" if binary else "macro"
    y_true_s, y_pred_s = y_true.astype(str), y_pred.astype(str)
    positive = classes[-1] if binary else None
    kw: dict[str, Any] = {"average": average, "zero_division": 0}
    if binary:
        kw["pos_label"] = positive
    result = {
        "accuracy": float(metrics.accuracy_score(y_true_s, y_pred_s)),
        "precision": float(metrics.precision_score(y_true_s, y_pred_s, **kw)),
        "recall": float(metrics.recall_score(y_true_s, y_pred_s, **kw)),
        "f1": float(metrics.f1_score(y_true_s, y_pred_s, **kw)),
    }
    if proba is not None and binary and len(np.unique(y_true_s)) == 2:
        scores = np.asarray([p[-1] for p in proba], dtype=float)
        result["roc_auc"] = float(metrics.roc_auc_score(y_true_s == positive, scores))
    return result
