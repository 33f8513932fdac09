"""Model performance once ground truth arrives: the served predictions joined with their
feedback labels by request id, scored with scikit-learn's metrics."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["performance"]


def performance(
    predictions: Any,
    labels: Any,
    *,
    classifier: bool,
    proba: Any = None,
    classes: list[Any] | None = None,
) -> dict[str, float]:
    """Classifier: accuracy, precision, recall, f1 (binary on the second class, else
    macro-averaged), roc_auc when probabilities are known (one column per class of
    ``classes``, the model's order; one-vs-rest macro average beyond two classes).
    Regressor: mae, rmse, r2."""
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
    model_classes = [str(c) for c in classes] if classes else None
    classes_seen = np.unique(np.concatenate([y_true.astype(str), y_pred.astype(str)]))
    binary = len(model_classes or classes_seen) <= 2
    average = "binary" if binary else "macro"
    y_true_s, y_pred_s = y_true.astype(str), y_pred.astype(str)
    positive = (model_classes or list(classes_seen))[-1] if binary else None
    kw: dict[str, Any] = {"average": average, "zero_division": 0}
    if binary:
        kw["pos_label"] = positive
    result = {
        "accuracy": float(metrics.accuracy_score(y_true_s, y_pred_s)),
        "precision": float(metrics.precision_score(y_true_s, y_pred_s, **kw)),
        "recall": float(metrics.recall_score(y_true_s, y_pred_s, **kw)),
        "f1": float(metrics.f1_score(y_true_s, y_pred_s, **kw)),
    }
    if proba is None:
        return result
    scores = np.vstack([np.asarray(p, dtype=float) for p in proba])
    present = set(np.unique(y_true_s))
    if binary and len(present) == 2:
        result["roc_auc"] = float(metrics.roc_auc_score(y_true_s == positive, scores[:, -1]))
    elif (
        not binary
        and model_classes
        and scores.shape[1] == len(model_classes)
        and present == set(model_classes)
    ):
        result["roc_auc"] = float(
            metrics.roc_auc_score(y_true_s, scores, multi_class="ovr", labels=model_classes)
        )
    return result
