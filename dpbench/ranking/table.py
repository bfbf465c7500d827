"""The scorer's input: a tidy table (method, task, seed, score) and each task's metric direction."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from dpbench.errors import DpbenchError

#: Metric → True when higher is better. Unknown metrics are refused rather than guessed.
METRIC_HIGHER_IS_BETTER: dict[str, bool] = {
    "roc_auc": True, "accuracy": True, "balanced_accuracy": True, "f1_macro": True, "cohen_kappa": True,
    "error_rate": False, "log_loss": False, "brier": False,
}
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
    """Validate a tidy frame. Directions come from a ``metric`` column, ``metrics``, or the registry."""
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
        raise DpbenchError(f"score of {row['method']} on {row['task']} (seed {row['seed']}) is not a finite "
                           f"number ({len(bad)} such row(s)); fix or drop them before ranking")
    dupes = frame[frame.duplicated(["method", "task", "seed"], keep=False)]
    if len(dupes):
        row = dupes.iloc[0]
        raise DpbenchError(f"duplicate rows for {row['method']} on {row['task']} seed {row['seed']}; "
                           "each (method, task, seed) must appear once")
    higher = {task: _direction(task, frame, metrics or {}) for task in sorted(frame["task"].unique())}
    lonely = [t for t in higher if frame.loc[frame["task"] == t, "method"].nunique() < 2]
    if lonely:
        raise DpbenchError(f"task(s) {', '.join(lonely)} have a single method: ranking needs at least two; "
                           "add results or drop the task")
    return ScoreTable(frame[[*COLUMNS]].reset_index(drop=True), higher)


def _direction(task: str, frame: pd.DataFrame, metrics: dict[str, str]) -> bool:
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
                           f"task in a 'metric' column, one of {', '.join(METRIC_HIGHER_IS_BETTER)}")
    (name,) = names
    if name not in METRIC_HIGHER_IS_BETTER:
        raise DpbenchError(f"unknown metric direction for {name!r} (task {task}); use one of "
                           f"{', '.join(METRIC_HIGHER_IS_BETTER)}")
    return METRIC_HIGHER_IS_BETTER[name]


def read_scores(paths: Iterable[Path]) -> ScoreTable:
    """Load CSV files (method, task, seed, score[, metric]) and/or dpbench results JSON files."""
    from dpbench.results import load_results

    frames = []
    for path in paths:
        if path.suffix.lower() == ".csv":
            try:
                frames.append(pd.read_csv(path))
            except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
                raise DpbenchError(f"cannot read {path} as CSV ({exc.__class__.__name__}: {exc})") from exc
        else:
            results = load_results(path)
            frames.append(pd.DataFrame([{"method": results.method, "task": s.task, "seed": s.seed,
                                         "score": s.score, "metric": s.metric} for s in results.scores]))
    if not frames:
        raise DpbenchError("no results given: pass results JSON or CSV files")
    return make_table(pd.concat(frames, ignore_index=True))
