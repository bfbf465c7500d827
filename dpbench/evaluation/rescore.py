"""Re-scoring a results file from its stored predictions and the pool's own test labels.

A reported score is trustworthy only if anyone holding the test labels gets the same number from the stored
predictions; :func:`rescore` is that check (the leaderboard runs it on every submission).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dpbench.errors import DpbenchError
from dpbench.evaluation.metrics import score
from dpbench.pool.manifest import PoolFolder, as_folder
from dpbench.pool.tarstream import iter_tar_samples
from dpbench.results import Results, TaskScore


@dataclass(frozen=True)
class Rescored:
    """One (task, seed): the score in the file, the score of its stored predictions, and any problem."""

    task: str
    seed: int
    reported: float
    rescored: float | None
    problem: str | None = None

    @property
    def matches(self) -> bool:
        return self.problem is None and self.rescored == self.reported


def test_labels(pool: PoolFolder | Path, task: str) -> dict[str, int]:
    """Sample key → label of a task's test split, read from its shards."""
    labels: dict[str, int] = {}
    for path in as_folder(pool).shards(task, "test"):
        for key, parts in iter_tar_samples(path):
            labels[key] = int(parts["cls"])
    return labels


def rescore_one(entry: TaskScore, labels: dict[str, int]) -> Rescored:
    """Score one entry's stored predictions against ``labels`` with the entry's metric."""
    if entry.predictions is None:
        return Rescored(entry.task, entry.seed, entry.score, None, "no stored predictions")
    missing, extra = set(labels) - set(entry.predictions), set(entry.predictions) - set(labels)
    if missing or extra:
        return Rescored(entry.task, entry.seed, entry.score, None,
                        f"predictions cover {len(entry.predictions)} keys; the test split has {len(labels)} "
                        f"({len(missing)} missing, {len(extra)} unknown)")
    keys = sorted(labels)
    y = np.array([labels[k] for k in keys])
    matrix = np.array([entry.predictions[k] for k in keys], dtype=np.float64)
    try:
        value = score(entry.metric, y, matrix)
    except DpbenchError as exc:
        return Rescored(entry.task, entry.seed, entry.score, None, str(exc))
    return Rescored(entry.task, entry.seed, entry.score, value)


def rescore(results: Results, pool: PoolFolder | Path) -> list[Rescored]:
    """Every (task, seed) of ``results`` re-scored from its predictions and ``pool``'s test labels."""
    folder = as_folder(pool)
    labels = {task: test_labels(folder, task) for task in dict.fromkeys(s.task for s in results.scores)}
    return [rescore_one(s, labels[s.task]) for s in results.scores]
