"""The results file: one method's scores per task and seed, with the provenance a board needs.

The evaluation protocols write it; the scorer and the leaderboard read it. Test predictions are kept
(sample key → class probabilities) so that a board can re-score a submission itself.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import NamedTuple

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from dpbench.errors import DpbenchError

RESULTS_SCHEMA = 1
_STRICT = ConfigDict(extra="forbid", frozen=True)


class TaskScore(BaseModel):
    """The test score of one method on one task for one seed."""

    model_config = _STRICT

    task: str
    seed: int
    metric: str
    score: float
    predictions: dict[str, list[float]] | None = None  # test sample key → class scores
    confusion: list[list[int]] | None = None  # rows: true class, columns: predicted class
    selected: dict[str, float] = Field(default_factory=dict)  # hyper-parameters the protocol chose (C, lr, epoch)

    @field_validator("score")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("score must be a finite number")
        return value


class Provenance(BaseModel):
    """Where the numbers come from (fields later protocols fill in; unknown ones stay empty)."""

    model_config = _STRICT

    dpbench_version: str
    pool: str
    pool_version: str
    manifest_sha256: str | None = None
    split_sha256: dict[str, str] = Field(default_factory=dict)
    encoder: str | None = None
    weights_sha256: str | None = None
    protocol: str | None = None
    settings: dict[str, str | int | float | bool | None] = Field(default_factory=dict)
    hardware: str | None = None
    wall_seconds: float | None = None
    synthetic: bool = False


class Results(BaseModel):
    """``results.json``: one method on one pool."""

    model_config = _STRICT

    schema_version: int = RESULTS_SCHEMA
    method: str
    provenance: Provenance
    scores: list[TaskScore] = Field(min_length=1)
    skipped: dict[str, str] = Field(default_factory=dict)  # task → why it was not scored


def load_results(path: Path) -> Results:
    """Read a results file, or raise one clear error naming the file and the first problem."""
    try:
        return Results.model_validate_json(path.read_bytes())
    except FileNotFoundError as exc:
        raise DpbenchError(f"results file {path} does not exist") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise DpbenchError(f"{path} is not a dpbench results file: {where}: {first['msg']}") from exc


class TaskSummary(NamedTuple):
    """One task's scores over its seeds: metric, mean, sample standard deviation (0 for one seed), seed count."""

    metric: str
    mean: float
    std: float
    n: int


def scores_by_task(results: Results) -> dict[str, list[TaskScore]]:
    """The scores grouped by task, tasks in the order they first appear."""
    grouped: dict[str, list[TaskScore]] = {}
    for score in results.scores:
        grouped.setdefault(score.task, []).append(score)
    return grouped


def task_summaries(results: Results) -> dict[str, TaskSummary]:
    """Per task (in the order they first appear): metric, mean ± std over seeds and the number of seeds."""
    summaries = {}
    for task, scores in scores_by_task(results).items():
        values = [s.score for s in scores]
        std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
        summaries[task] = TaskSummary(scores[0].metric, float(np.mean(values)), std, len(values))
    return summaries
