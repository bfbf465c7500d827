"""Significance across tasks: Friedman (+ Iman–Davenport), Nemenyi critical difference, pairwise
Wilcoxon with Holm correction, and the paper's per-task "twice the larger std" rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd
from scipy.stats import chi2, f, studentized_range, wilcoxon

from dpbench.errors import DpbenchError
from dpbench.ranking.table import ScoreTable


@dataclass(frozen=True)
class Friedman:
    """Omnibus test that all methods have equal average ranks."""

    k: int
    n_tasks: int
    chi2: float
    p_chi2: float
    iman_davenport: float
    p_iman_davenport: float


def _complete(ranks: pd.DataFrame) -> pd.DataFrame:
    complete = ranks.dropna(axis=0, how="any")
    if complete.shape[0] < 2 or complete.shape[1] < 2:
        raise DpbenchError("significance tests need at least 2 methods with scores on at least 2 common tasks")
    return complete


def friedman(ranks: pd.DataFrame) -> Friedman:
    """Friedman χ² from average ranks (Demšar 2006) and the Iman–Davenport F correction.

    Uses only tasks where every method has a score.
    """
    complete = _complete(ranks)
    n, k = complete.shape
    mean_ranks = complete.mean(axis=0).to_numpy()
    stat = 12 * n / (k * (k + 1)) * (float(np.sum(mean_ranks**2)) - k * (k + 1) ** 2 / 4)
    stat = max(stat, 0.0)
    denominator = n * (k - 1) - stat
    f_stat = (n - 1) * stat / denominator if denominator > 0 else float("inf")
    return Friedman(k=k, n_tasks=n, chi2=stat, p_chi2=float(chi2.sf(stat, k - 1)), iman_davenport=f_stat,
                    p_iman_davenport=float(f.sf(f_stat, k - 1, (k - 1) * (n - 1))) if k > 1 else 1.0)


def nemenyi_q(k: int, alpha: float = 0.05) -> float:
    """Critical value q_α of the Nemenyi test: studentized range (k, ∞) quantile over √2."""
    if k < 2:
        raise DpbenchError("the Nemenyi test needs at least 2 methods")
    if not 0 < alpha < 1:
        raise DpbenchError(f"the significance level must be between 0 and 1, got {alpha}")
    return float(studentized_range.ppf(1 - alpha, k, np.inf) / np.sqrt(2))


def nemenyi_cd(k: int, n_tasks: int, alpha: float = 0.05) -> float:
    """Critical difference of average ranks: q_α · sqrt(k(k+1) / (6N))."""
    return nemenyi_q(k, alpha) * float(np.sqrt(k * (k + 1) / (6 * n_tasks)))


def holm(pvalues: list[float]) -> list[float]:
    """Holm step-down adjusted p-values, in input order."""
    order = np.argsort(pvalues, kind="stable")
    m = len(pvalues)
    adjusted = np.empty(m)
    running = 0.0
    for position, index in enumerate(order):
        running = max(running, min(1.0, (m - position) * pvalues[index]))
        adjusted[index] = running
    return adjusted.tolist()


def wilcoxon_holm(table: ScoreTable, alpha: float = 0.05) -> pd.DataFrame:
    """Pairwise Wilcoxon signed-rank tests on per-task mean scores (shared tasks), Holm-corrected.

    Scores are signed so that higher is better on every task before differencing.
    """
    means = table.means()
    signs = np.array([1.0 if table.higher[t] else -1.0 for t in means.index])
    rows = []
    for a, b in combinations(means.columns, 2):
        both = means[[a, b]].dropna()
        diff = (both[a] - both[b]).to_numpy() * signs[[means.index.get_loc(t) for t in both.index]]
        diff = np.round(diff, 10)
        p = 1.0 if len(diff) == 0 or not np.any(diff) else float(wilcoxon(diff, zero_method="zsplit").pvalue)
        rows.append({"a": a, "b": b, "tasks": len(diff), "median_diff": float(np.median(diff)) if len(diff) else 0.0,
                     "p": p})
    frame = pd.DataFrame(rows, columns=["a", "b", "tasks", "median_diff", "p"])
    frame["p_holm"] = holm(frame["p"].tolist()) if len(frame) else []
    frame["significant"] = frame["p_holm"] < alpha
    return frame


def two_std_matrix(table: ScoreTable) -> pd.DataFrame:
    """Paper rule per task: A beats B when |μA − μB| > 2·max(σA, σB) in A's favour.

    Returns, for each ordered pair (a, b), the counts of tasks a wins, ties and loses against b.
    """
    stats = {(str(r.task), str(r.method)): (float(r.mean), float(r.std))
             for r in table.summary().itertuples(index=False)}
    rows = []
    for a in table.methods:
        for b in table.methods:
            if a == b:
                continue
            counts = {"wins": 0, "ties": 0, "losses": 0}
            for task in table.tasks:
                if (task, a) not in stats or (task, b) not in stats:
                    continue
                (mean_a, std_a), (mean_b, std_b) = stats[(task, a)], stats[(task, b)]
                delta = (mean_a - mean_b) * (1 if table.higher[task] else -1)
                outcome = "ties" if abs(delta) <= 2 * max(std_a, std_b) else "wins" if delta > 0 else "losses"
                counts[outcome] += 1
            rows.append({"a": a, "b": b, **counts})
    return pd.DataFrame(rows, columns=["a", "b", "wins", "ties", "losses"])


def cd_groups(avg_ranks: pd.Series, cd: float) -> list[list[str]]:
    """Maximal runs of methods (sorted by average rank) whose spread is within the critical difference."""
    ordered = avg_ranks.sort_values()
    names, values = list(ordered.index), ordered.to_numpy()
    groups: list[list[str]] = []
    for start in range(len(names)):
        end = start
        while end + 1 < len(names) and values[end + 1] - values[start] <= cd:
            end += 1
        if end > start and not any(set(names[start:end + 1]) <= set(g) for g in groups):
            groups.append(names[start:end + 1])
    return groups
