"""Selection (§IV-D, IV-E): the rank matrix of the configurations over the left-out tasks and, per task, the
configuration chosen with that task's own column excluded (Eq. 2 without r_ik).

Computed only from the stored trial records (``SWEEP/trials/*/scores.json``), so anyone can recompute it:

1. cell (task, configuration) = the mean over seeds of the validation scores (the seeds that have one);
2. per task, configurations ranked by that mean (higher is better, means rounded to 4 decimals as the scorer
   does; ties share the average rank); a configuration with no score on the task ranks behind all that have one
   (methods present + 1); a task no configuration could score is dropped;
3. for task k, ``r_i^(k)`` = mean over the other tasks j ≠ k of ``r_ij``; the configuration with the smallest wins,
   ties (within 1e-9) going to the first in grid order. Every degenerate case is written in ``notes``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy.stats import rankdata

from dpbench.io import atomic_write_json
from dpbench.ranking.ranks import DECIMALS
from dpbench_baselines.sweep_spec import SweepSpec
from dpbench_baselines.trial import SCORES, stopped_trials, trial_folder

SELECTION = "selection.json"
_TIE = 1e-9
_STRICT = ConfigDict(extra="forbid", frozen=True)


class TaskChoice(BaseModel):
    """The configuration transferred to one left-out task."""

    model_config = _STRICT

    task: str
    config: str | None  # None: nothing to choose from
    loto_rank: float | None  # its average rank over the other tasks
    tied: list[str] = Field(default_factory=list)  # other configurations with the same average rank
    basis: list[str] = Field(default_factory=list)  # the tasks whose ranks decided


class SelectionRecord(BaseModel):
    """``SWEEP/selection.json``."""

    model_config = _STRICT

    spec_sha256: str
    protocol: str
    protocol_sha256: str
    scheduler: str
    configs: list[str]  # grid order
    tasks: list[str]  # the ranked (scorable) left-out tasks
    means: list[list[float | None]]  # tasks × configs, seed-averaged validation scores
    seeds: list[list[int]]  # tasks × configs, number of seeds averaged
    ranks: list[list[float]]  # tasks × configs (missing cells already at "present + 1")
    average_rank: list[float]  # Eq. 2 over every ranked task
    choices: list[TaskChoice]
    notes: list[str] = Field(default_factory=list)


def trial_scores(spec: SweepSpec, folder: Path) -> tuple[dict[tuple[str, str], list[float]], list[str], set[str]]:
    """(config key, task) → validation scores over seeds; the trial keys without a record; the left-out tasks."""
    cells: dict[tuple[str, str], list[float]] = {}
    missing: list[str] = []
    for trial in spec.trials():
        path = trial_folder(folder, trial) / SCORES
        if not path.is_file():
            missing.append(trial.key)
            continue
        record = json.loads(path.read_text())
        for task, value in record["scores"].items():
            cells.setdefault((trial.config.key, task), []).append(float(value))
    return cells, missing, set(spec.protocol.tasks())


def select(spec: SweepSpec, folder: Path) -> SelectionRecord:
    """The rank matrix and the per-task choices, from the stored trial records."""
    cells, missing, left_out = trial_scores(spec, folder)
    stopped = set(stopped_trials(folder))
    missing = [k for k in missing if k not in stopped]
    configs = [c.key for c in spec.grid.configs()]
    notes = [f"{len(missing)} trial(s) have no record (unfinished or failed): "
             f"{', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}"] if missing else []
    if stopped:
        notes.append(f"{len(stopped)} trial(s) were stopped early by ASHA (not the paper's protocol); their "
                     "configurations are averaged over the seeds that finished, or ranked last")
    tasks = [t for t in spec.protocol.tasks() if any((c, t) in cells for c in configs)]
    dropped = sorted(left_out - set(tasks))
    if dropped:
        notes.append(f"no configuration could score {', '.join(dropped)}: left out of the ranking")
    n_seeds = len(spec.seeds)
    means = np.full((len(tasks), len(configs)), np.nan)
    counts = np.zeros((len(tasks), len(configs)), dtype=int)
    for i, task in enumerate(tasks):
        for j, config in enumerate(configs):
            values = cells.get((config, task), [])
            counts[i, j] = len(values)
            if values:
                means[i, j] = float(np.mean(values))
            if len(values) < n_seeds:
                notes.append(f"{config} on {task}: {len(values)} of {n_seeds} seed(s) scored"
                             + ("; ranked last" if not values else "; mean of those"))
    ranks = np.zeros_like(means)
    for i in range(len(tasks)):
        row = means[i]
        present = ~np.isnan(row)
        filled = np.where(present, -np.round(row, DECIMALS), np.inf)
        ranks[i] = np.where(present, rankdata(filled, method="average"), present.sum() + 1.0)
    choices = [_choose(k, tasks, configs, ranks, notes) for k in range(len(tasks))]
    average = ranks.mean(axis=0) if len(tasks) else np.full(len(configs), np.nan)
    return SelectionRecord(
        spec_sha256=spec.sha256(), protocol=spec.protocol.name, protocol_sha256=spec.protocol_sha256,
        scheduler=spec.scheduler, configs=configs, tasks=tasks,
        means=[[None if np.isnan(v) else float(v) for v in row] for row in means], seeds=counts.tolist(),
        ranks=ranks.tolist(), average_rank=[float(v) for v in average], choices=choices, notes=notes)


def _choose(k: int, tasks: list[str], configs: list[str], ranks: np.ndarray, notes: list[str]) -> TaskChoice:
    others = [i for i in range(len(tasks)) if i != k]
    if not others:
        notes.append(f"{tasks[k]} is the only ranked task: no other column to select on; nothing chosen")
        return TaskChoice(task=tasks[k], config=None, loto_rank=None)
    loto = ranks[others].mean(axis=0)
    best = float(loto.min())
    tied = [configs[j] for j in range(len(configs)) if loto[j] <= best + _TIE]
    if len(tied) > 1:
        notes.append(f"{tasks[k]}: {len(tied)} configurations tie at average rank {best:.3f}; the first in grid "
                     f"order ({tied[0]}) was chosen")
    return TaskChoice(task=tasks[k], config=tied[0], loto_rank=best, tied=tied[1:],
                      basis=[tasks[i] for i in others])


def write_selection(spec: SweepSpec, folder: Path) -> SelectionRecord:
    """Compute the selection and store it as ``SWEEP/selection.json``."""
    record = select(spec, folder)
    atomic_write_json(folder / SELECTION, json.loads(record.model_dump_json()))
    return record
