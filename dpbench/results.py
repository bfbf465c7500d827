"""The results file: one method's scores per task and seed, with the provenance a board needs.

The evaluation protocols write it; the scorer and the leaderboard read it. Test predictions are kept at full
precision (sample key → per-class scores) and the reported score is the task's metric of exactly those numbers, so a
board can re-score a submission itself and get the same value. How each hyper-parameter was chosen is kept too
(:class:`Selection`), with any degenerate choice named in ``warnings``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from dpbench.errors import DpbenchError

#: 1: scores and provenance; 2: predictions, selection curves, warnings, task info; 3: split sizes per task.
#: Files of every earlier schema still read (later fields have defaults); a file of a later one is refused by name.
RESULTS_SCHEMA = 3
_STRICT = ConfigDict(extra="forbid", frozen=True)


class Selection(BaseModel):
    """How the protocol chose its hyper-parameter: the grid, the score of every grid value, and what was odd."""

    model_config = _STRICT

    parameter: str  # "C" (linear probe) or "lr" (fine-tuning; its epoch is in TaskScore.selected)
    value: float
    criterion: str  # what was maximised, e.g. "grouped 5-fold CV roc_auc on train+val"
    grid: list[float]
    curve: list[float | None]  # the criterion per grid value; None: no fold or split could score it
    folds: int | None = None  # CV folds used (the probe)
    unscorable_folds: int = 0  # CV folds left out because they could not be scored (a single class)
    tie_rule: str = ""
    fallback: str | None = None  # set when the criterion could not decide and a default was used


class TaskScore(BaseModel):
    """The test score of one method on one task for one seed."""

    model_config = _STRICT

    task: str
    seed: int
    metric: str
    score: float
    # test sample key → per-class scores, full precision; ``score`` is the metric of exactly these numbers
    predictions: dict[str, list[float]] | None = None
    prediction_kind: Literal["probability", "decision_value"] = "probability"
    confusion: list[list[int]] | None = None  # rows: true class, columns: predicted class (arg-max of predictions)
    selected: dict[str, float] = Field(default_factory=dict)  # hyper-parameters the protocol chose (C, lr, epoch)
    selection: Selection | None = None
    warnings: list[str] = Field(default_factory=list)  # degenerate choices: grid edge, fallback, unscorable folds

    @field_validator("score")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("score must be a finite number")
        return value


class SplitSize(BaseModel):
    """One split of a task as built: its images and the groups (patients, slides...) they come from."""

    model_config = _STRICT

    images: int
    groups: int


class TaskInfo(BaseModel):
    """What a board needs to show a task without the registry (a user's task card has no registry entry): its
    classes, metric, split unit and licence as built, and for a card task the card's sha256 and fields (its
    ``data`` section left out: it names local paths)."""

    model_config = _STRICT

    defined_by: Literal["registry", "card", "manifest"]  # manifest: neither a registry task nor a stored card
    classes: list[str]
    metric: str
    split_unit: str
    licence: str
    redistributable: bool
    synthetic: bool = False
    card_sha256: str | None = None
    card: dict[str, Any] | None = None
    splits: dict[str, SplitSize] = Field(default_factory=dict)  # train/val/test as built (older files: empty)


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
    tasks: dict[str, TaskInfo] = Field(default_factory=dict)  # task → what it is (classes, metric, its card)
    # the split the scores (and predictions) are of: test (final evaluation) or val (model selection, §IV-D)
    scored_split: Literal["test", "val"] = "test"


class Results(BaseModel):
    """``results.json``: one method on one pool."""

    model_config = _STRICT

    schema_version: int = RESULTS_SCHEMA
    method: str
    provenance: Provenance
    scores: list[TaskScore] = Field(min_length=1)
    skipped: dict[str, str] = Field(default_factory=dict)  # task → why it was not scored

    @model_validator(mode="before")
    @classmethod
    def _known_schema(cls, data: Any) -> Any:
        """A file of a later schema fails on this, first, rather than on the first field it added."""
        version = data.get("schema_version", RESULTS_SCHEMA) if isinstance(data, dict) else RESULTS_SCHEMA
        if isinstance(version, int) and version > RESULTS_SCHEMA:
            raise ValueError(f"results schema {version} is newer than this dpbench reads (up to {RESULTS_SCHEMA}); "
                             "upgrade dpbench-pathology")
        return data


def load_results(path: Path) -> Results:
    """Read a results file, or raise one clear error naming the file and the first problem."""
    try:
        return Results.model_validate_json(path.read_bytes())
    except FileNotFoundError as exc:
        raise DpbenchError(f"results file {path} does not exist") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where, message = ".".join(str(p) for p in first["loc"]), first["msg"].removeprefix("Value error, ")
        if not where:  # the file as a whole: e.g. a later schema
            raise DpbenchError(f"{path}: {message}") from exc
        raise DpbenchError(f"{path} is not a dpbench results file: {where}: {message}") from exc


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
