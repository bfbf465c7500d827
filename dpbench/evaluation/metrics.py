"""The paper's metrics: ROC AUC for binary tasks, accuracy for multi-class tasks."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, roc_auc_score

from dpbench.errors import DpbenchError, Unscorable


def score(metric: str, y_true: np.ndarray, class_scores: np.ndarray) -> float:
    """Score per-class scores ``(n, K)`` (probabilities or decision values) against labels with the task's metric:
    ROC AUC of column 1 (scikit-learn's, ties count one half), or accuracy of the arg-max (first maximum wins).
    The one metric definition of the project: probe selection, reported scores and re-scoring all use it."""
    if metric == "roc_auc":
        if len(np.unique(y_true)) < 2:
            raise Unscorable("ROC AUC is undefined: the evaluated split holds a single class")
        return float(roc_auc_score(y_true, class_scores[:, 1]))
    if metric == "accuracy":
        return float(accuracy_score(y_true, class_scores.argmax(axis=1)))
    raise DpbenchError(f"unknown metric {metric!r}")


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> list[list[int]]:
    """Rows: true class, columns: predicted class."""
    return confusion_matrix(y_true, y_pred, labels=list(range(n_classes))).astype(int).tolist()  # type: ignore[no-any-return]
