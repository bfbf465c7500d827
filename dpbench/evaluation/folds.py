"""Grouped, class-stratified cross-validation folds that can be scored (the linear probe's selection of C)."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

from dpbench.errors import DpbenchError

Folds = list[tuple[np.ndarray, np.ndarray]]


def _scorable(y: np.ndarray, train: np.ndarray, val: np.ndarray, n_classes_present: int, metric: str) -> bool:
    """A fold can be scored: its training part has every class and its validation part can be measured."""
    if len(np.unique(y[train])) < n_classes_present or len(val) == 0:
        return False
    return metric != "roc_auc" or len(np.unique(y[val])) == 2


def grouped_folds(groups: np.ndarray, y: np.ndarray, folds: int = 5, seed: int | None = None,
                  metric: str = "accuracy") -> tuple[Folds, int]:
    """Deterministic grouped, class-stratified folds ``(train_idx, val_idx)``, no group on both sides, and how
    many of them cannot be scored.

    Tries ``min(folds, n_groups)`` folds, then fewer (down to 2), and keeps the largest count whose folds can all
    be scored (every class in each training part; two classes in each validation part for ROC AUC). When no count
    makes every fold scorable, the count with the most scorable folds is kept (ties: more folds). With ``seed``,
    groups are assigned to folds in a seeded random order, so each seed is its own CV draw.
    """
    n_groups = len(np.unique(groups))
    if n_groups < 2:
        raise DpbenchError(f"grouped cross-validation needs at least 2 groups in the training split, got {n_groups}; "
                           "add training data from more patients/slides")
    n_present = len(np.unique(y))
    best: tuple[int, int, Folds] | None = None  # (scorable, k, splits)
    for k in range(max(2, min(folds, n_groups)), 1, -1):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "least populated class has fewer members than n_splits"
            splitter = (StratifiedGroupKFold(n_splits=k, shuffle=False) if seed is None
                        else StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed))
            splits = [(tr, va) for tr, va in splitter.split(np.zeros(len(y)), y, groups)]
        scorable = sum(_scorable(y, tr, va, n_present, metric) for tr, va in splits)
        if scorable == len(splits):
            return splits, 0
        if best is None or scorable > best[0]:
            best = (scorable, k, splits)
    assert best is not None
    return best[2], len(best[2]) - best[0]
