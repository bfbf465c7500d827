"""Rank aggregation across tasks: per-task ranks, average rank (Eq. 2), its LOTO variant, Borda, bootstrap.

Conventions: rank 1 is best; ties get average ranks for computing and competition ranks ("1, 2, 2, 4")
for display; means are rounded to ``DECIMALS`` before ranking, so differences below the reported
precision cannot separate methods.

A method is ranked on a task among the methods that have a score on it (a method alone on a task ranks 1 of 1).
The gaps follow the ``Missing`` policy: ``error`` refuses them, ``worst`` counts a gap as rank (methods on the
task + 1), ``available`` averages each method over its own tasks (Eq. 2 over the tasks it has); Borda gives a
gap 0 points, as it gives a method alone on a task (1 − 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from dpbench.errors import DpbenchError
from dpbench.ranking.table import ScoreTable

DECIMALS = 4
Missing = Literal["error", "worst", "available"]
Aggregate = Literal["avg-rank", "borda"]


def _rank_rows(values: np.ndarray, higher: np.ndarray) -> np.ndarray:
    """Average ranks along the last axis (1 = best); NaN cells stay NaN and do not affect the others."""
    signed = np.where(higher[..., None], -values, values)
    filled = np.where(np.isnan(signed), np.inf, np.round(signed, DECIMALS))
    ranks = rankdata(filled, method="average", axis=-1)
    return np.where(np.isnan(values), np.nan, ranks)


def per_task_ranks(table: ScoreTable) -> pd.DataFrame:
    """Tasks × methods average ranks of the mean scores, among the methods present on each task."""
    means = table.means()
    higher = np.array([table.higher[t] for t in means.index])
    return pd.DataFrame(_rank_rows(means.to_numpy(dtype=float), higher), index=means.index, columns=means.columns)


def competition_ranks(values: pd.Series, lower_is_better: bool = True) -> pd.Series:
    """Display ranks with ties sharing the best position: 1, 2, 2, 4."""
    signed = values.to_numpy(dtype=float) if lower_is_better else -values.to_numpy(dtype=float)
    return pd.Series(rankdata(np.round(signed, 10), method="min").astype(int), index=values.index)


def _fill_missing(ranks: np.ndarray, missing: Missing, methods: list[str], tasks: list[str]) -> np.ndarray:
    holes = np.isnan(ranks)
    if not holes.any() or missing == "available":
        return ranks
    if missing == "error":
        t, m = (int(i[0]) for i in np.nonzero(holes))
        raise DpbenchError(f"{methods[m]} has no score on {tasks[t]} ({int(holes.sum())} missing cell(s)); "
                           "choose a missing-task policy (--missing worst|available) or --method borda")
    present = (~holes).sum(axis=-1, keepdims=True)
    # "worst": a missing task counts as a rank behind every method that has it (present + 1).
    return np.where(holes, present + 1.0, ranks)


def average_rank(ranks: pd.DataFrame, missing: Missing = "error") -> pd.Series:
    """Eq. 2: the mean over tasks of each method's rank (lower is better)."""
    filled = _fill_missing(ranks.to_numpy(dtype=float), missing, list(ranks.columns), list(ranks.index))
    return pd.Series(np.nanmean(filled, axis=0), index=ranks.columns, name="avg_rank")


def loto_average_ranks(ranks: pd.DataFrame, missing: Missing = "error") -> pd.DataFrame:
    """Paper §IV-E: for each target task, the average rank over all *other* tasks (targets × methods).

    The method minimising row ``t`` is the one selected for transfer to ``t``: ``t``'s own scores
    never influence its selection.
    """
    filled = _fill_missing(ranks.to_numpy(dtype=float), missing, list(ranks.columns), list(ranks.index))
    rows = []
    for i in range(filled.shape[0]):
        rows.append(np.nanmean(np.delete(filled, i, axis=0), axis=0))
    return pd.DataFrame(rows, index=ranks.index, columns=ranks.columns)


def _borda_points(ranks: np.ndarray) -> np.ndarray:
    """Borda totals of ``(..., tasks, methods)`` ranks: on each task (methods present − rank), NaN → 0, summed."""
    present = (~np.isnan(ranks)).sum(axis=-1, keepdims=True)
    return np.where(np.isnan(ranks), 0.0, present - ranks).sum(axis=-2)  # type: ignore[no-any-return]


def borda(ranks: pd.DataFrame) -> pd.Series:
    """Borda points: on each task a method gets (methods present − rank); a missing task gives 0 points."""
    return pd.Series(_borda_points(ranks.to_numpy(dtype=float)), index=ranks.columns, name="borda")


def coverage(ranks: pd.DataFrame) -> pd.Series:
    """Fraction of the table's tasks each method has a score on."""
    return pd.Series((~ranks.isna()).mean(axis=0).to_numpy(), index=ranks.columns, name="coverage")


def final_order(ranks: pd.DataFrame, method: Aggregate, missing: Missing) -> tuple[pd.Series, pd.Series]:
    """(aggregate score, competition rank) under the chosen aggregation."""
    if method == "borda":
        points = borda(ranks)
        return points, competition_ranks(points, lower_is_better=False)
    avg = average_rank(ranks, missing)
    return avg, competition_ranks(avg)


@dataclass(frozen=True)
class BootstrapResult:
    """Rank uncertainty from a paired bootstrap over tasks (and seeds within each task)."""

    rank_low: pd.Series
    rank_high: pd.Series
    p_first: pd.Series
    top_group: list[str]
    n_boot: int
    level: float
    seed: int


def bootstrap_ranks(table: ScoreTable, n_boot: int = 1000, seed: int = 0, level: float = 0.95,
                    method: Aggregate = "avg-rank", missing: Missing = "error") -> BootstrapResult:
    """Resample tasks with replacement (one draw shared by all methods) and each cell's seeds.

    Returns the ``level`` interval of each method's final rank, the probability of ranking first,
    and the top group (methods whose interval reaches rank 1).
    """
    if n_boot < 1 or not 0 < level < 1 or seed < 0:
        raise DpbenchError(f"bootstrap needs n_boot ≥ 1, 0 < level < 1 and seed ≥ 0 (got {n_boot}, {level}, {seed})")
    rng = np.random.default_rng(seed)
    tasks, methods = table.tasks, table.methods
    cells = table.seed_scores()
    means = np.full((n_boot, len(tasks), len(methods)), np.nan)
    for (t, m), scores in sorted(cells.items()):
        picks = rng.integers(0, len(scores), size=(n_boot, len(scores)))
        means[:, tasks.index(t), methods.index(m)] = scores[picks].mean(axis=1)
    task_draws = rng.integers(0, len(tasks), size=(n_boot, len(tasks)))
    resampled = np.take_along_axis(means, task_draws[:, :, None], axis=1)
    higher = np.array([table.higher[t] for t in tasks])[task_draws]
    ranks = _rank_rows(resampled, higher)
    if method == "borda":
        score = -_borda_points(ranks)
    else:
        filled = np.stack([_fill_missing(r, missing, methods, tasks) for r in ranks])
        drawn = (~np.isnan(filled)).sum(axis=1)
        # "available": a method none of whose tasks was drawn ranks last in that redraw.
        score = np.where(drawn > 0, np.nansum(filled, axis=1) / np.maximum(drawn, 1), np.inf)
    finals = rankdata(np.round(score, 10), method="min", axis=1)
    tail = (1 - level) / 2 * 100
    low = pd.Series(np.percentile(finals, tail, axis=0, method="lower"), index=methods)
    high = pd.Series(np.percentile(finals, 100 - tail, axis=0, method="higher"), index=methods)
    p_first = pd.Series((finals == 1).mean(axis=0), index=methods)
    return BootstrapResult(low.astype(int), high.astype(int), p_first, [m for m in methods if low[m] == 1],
                           n_boot, level, seed)
