"""The scorer's input: a tidy table (method, task, seed, score) and each task's metric direction and range."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from dpbench.errors import DpbenchError


@dataclass(frozen=True)
class MetricRange:
    """What ranking needs to know of a metric: its direction and the values a score can take."""

    higher_is_better: bool
    low: float
    high: float


#: Metric → direction and range; unknown metrics are refused rather than guessed. Ranking computes no metric:
#: scores come from dpbench.evaluation.metrics.score (or the submitter) and are only read here.
METRICS: dict[str, MetricRange] = {
    "roc_auc": MetricRange(True, 0, 1), "accuracy": MetricRange(True, 0, 1),
    "balanced_accuracy": MetricRange(True, 0, 1), "f1_macro": MetricRange(True, 0, 1),
    "cohen_kappa": MetricRange(True, -1, 1), "error_rate": MetricRange(False, 0, 1),
    "log_loss": MetricRange(False, 0, math.inf), "brier": MetricRange(False, 0, 2),  # multi-class Brier: ≤ 2
}
METRIC_HIGHER_IS_BETTER: dict[str, bool] = {name: m.higher_is_better for name, m in METRICS.items()}
RANGE_SLACK = 1e-9  # float noise at a bound (an AUC of 1 + 1e-12) is not a wrong score
COLUMNS = ("method", "task", "seed", "score")


@dataclass(frozen=True)
class ScoreTable:
    """Validated scores: one row per (method, task, seed); ``higher`` gives each task's direction."""

    frame: pd.DataFrame
    higher: dict[str, bool]

    @property
    def methods(self) -> list[str]:
        return sorted(self.frame["method"].unique())

    @property
    def tasks(self) -> list[str]:
        return sorted(self.frame["task"].unique())

    def summary(self) -> pd.DataFrame:
        """Per (task, method): mean, std (ddof=1, 0 for one seed) and number of seeds."""
        grouped = self.frame.groupby(["task", "method"])["score"]
        out = grouped.agg(mean="mean", std="std", n="count").reset_index()
        out["std"] = out["std"].fillna(0.0)
        return out

    def means(self) -> pd.DataFrame:
        """Tasks × methods matrix of mean scores (NaN where a method lacks a task)."""
        return self.summary().pivot(index="task", columns="method", values="mean").reindex(
            index=self.tasks, columns=self.methods)

    def seed_scores(self) -> dict[tuple[str, str], np.ndarray]:
        """(task, method) → the per-seed scores, in seed order."""
        ordered = self.frame.sort_values(["task", "method", "seed"])
        return {(t, m): g["score"].to_numpy(dtype=float) for (t, m), g in ordered.groupby(["task", "method"])}


def make_table(frame: pd.DataFrame, metrics: dict[str, str] | None = None) -> ScoreTable:
    """Validate a tidy frame. Metrics come from a ``metric`` column, ``metrics``, or the registry.

    Every score must be a finite number within its metric's range; an optional ``source`` column (the file a
    row came from) is named in the error. At least two methods are needed; a task that only some methods have
    is kept: the aggregation's missing-task policy decides what each gap counts as.
    """
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise DpbenchError(f"scores lack column(s) {', '.join(missing)}; expected {', '.join(COLUMNS)}[, metric]")
    frame = frame.copy()
    frame["method"] = frame["method"].astype(str)
    frame["task"] = frame["task"].astype(str)
    frame["score"] = pd.to_numeric(frame["score"], errors="coerce")
    bad = frame[~np.isfinite(frame["score"].to_numpy(dtype=float))]
    if len(bad):
        row = bad.iloc[0]
        raise DpbenchError(f"{_where(row)}score of {row['method']} on task {row['task']} (seed {row['seed']}) is "
                           f"{row['score']}, not a finite number ({len(bad)} such row(s)); fix or drop them")
    dupes = frame[frame.duplicated(["method", "task", "seed"], keep=False)]
    if len(dupes):
        row = dupes.iloc[0]
        raise DpbenchError(f"duplicate rows for {row['method']} on {row['task']} seed {row['seed']}; "
                           "each (method, task, seed) must appear once")
    names = {task: _metric(task, frame, metrics or {}) for task in sorted(frame["task"].unique())}
    _check_ranges(frame, names)
    methods = sorted(frame["method"].unique())
    if len(methods) < 2:
        raise DpbenchError(f"scores of a single method ({methods[0]}): ranking needs at least two; "
                           "add another method's results")
    if frame.groupby("task")["method"].nunique().max() < 2:
        raise DpbenchError(f"no task has scores of two methods ({', '.join(methods)} share none): ranking compares "
                           "methods on a task; add results on common tasks")
    higher = {task: METRICS[name].higher_is_better for task, name in names.items()}
    return ScoreTable(frame[[*COLUMNS]].reset_index(drop=True), higher)


def _where(row: pd.Series) -> str:
    """``"FILE: "`` when the row came from a file (a ``source`` column), else nothing."""
    source = row.get("source")
    return f"{source}: " if isinstance(source, str) and source else ""


def _check_ranges(frame: pd.DataFrame, names: dict[str, str]) -> None:
    """Refuse scores outside their metric's range: an AUC of 7.5 is a broken file, not a great method."""
    ranges = [METRICS[names[task]] for task in frame["task"]]
    scores = frame["score"].to_numpy(dtype=float)
    low = np.array([r.low for r in ranges]) - RANGE_SLACK
    high = np.array([r.high for r in ranges]) + RANGE_SLACK
    outside = frame[(scores < low) | (scores > high)]
    if len(outside):
        row = outside.iloc[0]
        name = names[row["task"]]
        raise DpbenchError(f"{_where(row)}score {row['score']:g} of {row['method']} on task {row['task']} "
                           f"(seed {row['seed']}) is outside [{METRICS[name].low:g}, {METRICS[name].high:g}], the "
                           f"range of {name} ({len(outside)} such row(s)); fix the score or its metric")


def _metric(task: str, frame: pd.DataFrame, metrics: dict[str, str]) -> str:
    """The one metric of ``task``: from the frame's ``metric`` column, ``metrics``, or the task registry."""
    names: set[str] = set()
    if "metric" in frame.columns:
        names = set(frame.loc[frame["task"] == task, "metric"].dropna().astype(str))
    if not names and task in metrics:
        names = {metrics[task]}
    if not names:
        from dpbench.errors import RegistryError
        from dpbench.tasks.registry import get_task

        try:
            names = {get_task(task).metric}
        except RegistryError:
            names = set()
    if len(names) != 1:
        found = ", ".join(sorted(names)) or "none"
        raise DpbenchError(f"unknown metric direction for task {task} (metrics: {found}); give one metric per "
                           f"task in a 'metric' column, one of {', '.join(METRICS)}")
    (name,) = names
    if name not in METRICS:
        raise DpbenchError(f"unknown metric direction for {name!r} (task {task}); use one of {', '.join(METRICS)}")
    return name


def read_scores(paths: Iterable[Path]) -> ScoreTable:
    """Load CSV files (method, task, seed, score[, metric]) and/or dpbench results JSON files."""
    from dpbench.results import load_results

    frames = []
    for path in paths:
        if path.suffix.lower() == ".csv":
            try:
                frame = pd.read_csv(path)
            except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
                raise DpbenchError(f"cannot read {path} as CSV ({exc.__class__.__name__}: {exc})") from exc
        else:
            results = load_results(path)
            frame = pd.DataFrame([{"method": results.method, "task": s.task, "seed": s.seed, "score": s.score,
                                   "metric": s.metric} for s in results.scores])
        frames.append(frame.assign(source=str(path)))
    if not frames:
        raise DpbenchError("no results given: pass results JSON or CSV files")
    return make_table(pd.concat(frames, ignore_index=True))
