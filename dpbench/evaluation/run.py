"""``dpbench eval``: evaluate one encoder on a built pool with the linear-probe or fine-tuning protocol.

Every (task, seed) result is saved as it completes under ``OUT/partial/``; a rerun with the same encoder,
data and settings reuses them, so a long evaluation resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import math
import platform
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from dpbench import __version__
from dpbench.encoders import Encoder
from dpbench.errors import DpbenchError, Unscorable
from dpbench.evaluation.features import Features, Precision, extract_splits, resolve_device
from dpbench.evaluation.finetune import FinetuneConfig, finetune
from dpbench.evaluation.metrics import confusion, score
from dpbench.evaluation.probe import C_GRID, linear_probe
from dpbench.io import atomic_write_json, sha256_file
from dpbench.pool.built import BuiltPool, as_pool
from dpbench.pool.manifest import MANIFEST, TaskEntry
from dpbench.pool.verify import require_verified
from dpbench.results import Provenance, Results, Selection, SplitSize, TaskInfo, TaskScore
from dpbench.tasks.cards import card_json, card_sha256, stored_card
from dpbench.tasks.registry import all_tasks

Protocol = Literal["linear", "finetune"]
ScoredSplit = Literal["test", "val"]
Split = Literal["train", "val", "test"]
Progress = Callable[[str, str], None]  # (task, event)


@dataclass(frozen=True)
class EvalConfig:
    """Settings of one evaluation; their hash keys the resumable partial results."""

    protocol: Protocol = "linear"
    probe: Literal["svm", "fast"] = "svm"
    seeds: tuple[int, ...] = (0,)
    device: str = "auto"
    batch_size: int = 64
    workers: int = 0
    precision: Precision = "fp32"
    channels_last: bool = False
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    #: ``val``: model selection (§IV-D): the probe trains on train only and is scored on val; no test shard is read.
    score_on: ScoredSplit = "test"

    def splits(self) -> tuple[Split, ...]:
        """The splits this evaluation reads."""
        return ("train", "val") if self.score_on == "val" else ("train", "val", "test")

    def settings(self) -> dict[str, str | int | float | bool | None]:
        flat: dict[str, str | int | float | bool | None] = {
            "protocol": self.protocol, "probe": self.probe, "seeds": ",".join(map(str, self.seeds)),
            "batch_size": self.batch_size, "precision": self.precision, "channels_last": self.channels_last,
        }
        if self.score_on != "test":
            flat["score_on"] = self.score_on
        if self.protocol == "linear":
            flat["C_grid"] = ",".join(f"{c:g}" for c in C_GRID)
        else:
            for key, value in asdict(self.finetune).items():
                if key not in ("workers", "shuffle_buffer"):
                    flat[f"finetune_{key}"] = ",".join(f"{v:g}" for v in value) if isinstance(value, tuple) else value
        return flat


def hardware(device: str) -> str:
    """A short description of where the evaluation ran."""
    dev = resolve_device(device)
    if dev.type == "cuda":
        return f"{torch.cuda.get_device_name(dev)} (CUDA {torch.version.cuda})"
    return f"CPU {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


def task_score(task_name: str, seed: int, metric: str, keys: Iterable[Any], class_scores: np.ndarray,
               y_true: np.ndarray, n_classes: int, selected: dict[str, float], *,
               kind: Literal["probability", "decision_value"] = "probability", selection: Selection | None = None,
               warnings: Iterable[str] = ()) -> TaskScore:
    """One (task, seed) result. The stored predictions are the class scores at full precision, and the reported
    score is the task's metric of exactly those stored numbers, so re-scoring them reproduces it."""
    stored = np.array([[float(v) for v in row] for row in class_scores], dtype=np.float64).reshape(-1, n_classes)
    notes = list(warnings) + (selection_warnings(selection) if selection else [])
    if len(stored) > 1 and np.ptp(stored[:, -1]) == 0:
        notes.append("the test predictions are all equal: the model does not rank the test samples")
    return TaskScore(
        task=task_name, seed=seed, metric=metric, score=score(metric, y_true, stored),
        predictions={str(k): row.tolist() for k, row in zip(keys, stored, strict=True)}, prediction_kind=kind,
        confusion=confusion(y_true, stored.argmax(axis=1), n_classes), selected=selected, selection=selection,
        warnings=notes)


def selection_warnings(selection: Selection) -> list[str]:
    """What a reader must know about a hyper-parameter choice: a fallback, unscorable folds, a grid edge."""
    notes = [selection.fallback] if selection.fallback else []
    if selection.unscorable_folds:
        notes.append(f"{selection.unscorable_folds} of {selection.folds} CV folds could not be scored (a single "
                     "class) and were left out of the selection")
    low, high = min(selection.grid), max(selection.grid)
    if selection.fallback is None and low < high and selection.value in (low, high):
        notes.append(f"selected {selection.parameter} = {selection.value:g} is at the edge of the grid "
                     f"[{low:g}, {high:g}]; the best value may lie outside it")
    return notes


def _curve(values: dict[float, float], grid: list[float]) -> list[float | None]:
    return [None if math.isnan(values.get(g, math.nan)) else values[g] for g in grid]


def _linear(task: TaskEntry, feats: dict[tuple[str, str], Features], config: EvalConfig,
            progress: Progress) -> list[TaskScore]:
    task_name = task.name
    # Final evaluation (§IV-E): the probe may use train and val, C chosen by grouped 5-fold CV on them, test scores.
    # Selection (§IV-D, score_on="val"): the probe trains on train (C by grouped CV on train), val scores.
    fit_splits = ("train",) if config.score_on == "val" else ("train", "val")
    parts = [feats[(task_name, split)] for split in fit_splits if (task_name, split) in feats]
    if not parts or (task_name, config.score_on) not in feats:
        raise Unscorable(f"task {task_name} has no {config.score_on if parts else 'training'} samples in this "
                         "build; rebuild it with a dpbench that refuses such splits, or give it more groups")
    x = np.concatenate([p.x for p in parts])
    y = np.concatenate([p.y for p in parts])
    groups = np.concatenate([p.groups for p in parts])
    test = feats[(task_name, config.score_on)]
    device = str(resolve_device(config.device))
    scores = []
    for seed in config.seeds:
        progress(task_name, f"probe seed {seed}")
        result = linear_probe(x, y, groups, test.x, test.y, task.n_classes, task.metric, method=config.probe,
                              device=device, seed=seed)
        grid = sorted(result.cv_scores)
        selection = Selection(
            parameter="C", value=result.best_c,
            criterion=f"grouped {result.folds}-fold CV {task.metric} on {'+'.join(fit_splits)}", grid=grid,
            curve=_curve(result.cv_scores, grid), folds=result.folds,
            unscorable_folds=result.unscorable_folds, tie_rule="largest C among CV scores within 1e-12 of the best",
            fallback=result.fallback)
        notes = [f"{result.not_converged} SVM fit(s) did not converge"] if result.not_converged else []
        scores.append(task_score(task_name, seed, task.metric, test.keys, result.test_decision, test.y,
                                 task.n_classes, {"C": result.best_c}, kind="decision_value", selection=selection,
                                 warnings=notes))
    return scores


def _finetune(encoder: Encoder, pool: BuiltPool, task: TaskEntry, config: EvalConfig,
              progress: Progress) -> list[TaskScore]:
    task_name = task.name
    scores = []
    for seed in config.seeds:
        progress(task_name, f"fine-tune seed {seed}")
        out = finetune(encoder, pool, task, seed, config.finetune, config.device)
        best: dict[float, float] = {}
        for row in out.history:
            best[row["lr"]] = max(best.get(row["lr"], -math.inf), row["val"])
        grid = sorted(config.finetune.lrs)
        selection = Selection(parameter="lr", value=out.lr, criterion=f"validation {task.metric} (best epoch per lr)",
                              grid=grid, curve=_curve(best, grid),
                              tie_rule="lower validation cross-entropy, then grid order and the earlier epoch")
        notes = ([f"selected epoch {out.epoch} is the last one; more epochs may score higher"]
                 if out.epoch == config.finetune.epochs and config.finetune.epochs > 1 else [])
        scores.append(task_score(task_name, seed, task.metric, out.test_keys, out.test_scores, out.test_y,
                                 task.n_classes, {"lr": out.lr, "epoch": out.epoch, "val_score": out.val_score},
                                 selection=selection, warnings=notes))
    return scores


def task_info(pool: BuiltPool, entry: TaskEntry) -> TaskInfo:
    """What the results file records of a task: from the manifest, and from its card when the pool keeps one."""
    card = stored_card(pool.root / entry.name)
    shown = {k: v for k, v in card_json(card).items() if k != "data"} if card else None
    source = "card" if card else "registry" if entry.name in all_tasks() else "manifest"
    return TaskInfo(defined_by=source, classes=entry.classes, metric=entry.metric, split_unit=entry.split_unit,
                    licence=entry.licence, redistributable=entry.redistributable, synthetic=entry.synthetic,
                    card_sha256=card_sha256(card) if card else None, card=shown,
                    splits={str(k): SplitSize(images=v.images, groups=v.groups) for k, v in entry.splits.items()})


def evaluate(encoder: Encoder, pool: BuiltPool | Path, tasks: list[str] | None, config: EvalConfig, out: Path,
             name: str | None = None, cache: Path | None = None,
             progress: Progress = lambda task, event: None,
             on_images: Callable[[int, int], None] | None = None) -> Results:
    """Evaluate ``encoder`` on the built pool in ``root``; write ``out/results.json`` and return it.
    """
    pool = as_pool(pool)
    root, manifest = pool.root, pool.manifest
    chosen = tasks or [t.name for t in manifest.tasks]
    for task in chosen:
        manifest.task(task)
    if config.score_on == "val" and config.protocol != "linear":
        raise DpbenchError("--score-on val is the selection protocol of §IV-D (feature extraction); use "
                           "--protocol linear with it")
    # every shard read is the file the manifest vouches for, before any use or reuse
    require_verified(pool, chosen, config.splits())
    started = time.perf_counter()
    manifest_sha = sha256_file(root / MANIFEST)
    key = hashlib.sha256(json.dumps({"encoder": encoder.fingerprint(), "manifest": manifest_sha, "dpbench": __version__,
                                     "settings": config.settings()}, sort_keys=True).encode()).hexdigest()[:16]
    partial = out / "partial" / key
    scores: list[TaskScore] = []
    skipped: dict[str, str] = {}
    remaining = [t for t in chosen if not (partial / f"{t}.json").is_file()]
    feats: dict[tuple[str, str], Features] = {}
    if config.protocol == "linear" and remaining:
        progress(remaining[0], "extracting features")
        pairs: list[tuple[str, str]] = [(t, s) for t in remaining for s in config.splits()
                                        if manifest.task(t).splits[s].images]
        wanted = set(pairs)
        total = sum(shard.count for shard in manifest.shards if (shard.task, shard.split) in wanted)
        extracted = [0]

        def counted(n: int) -> None:
            extracted[0] += n
            if on_images:
                on_images(extracted[0], total)

        feats = extract_splits(encoder, pool, pairs, device=config.device, batch_size=config.batch_size,
                               workers=config.workers, precision=config.precision,
                               channels_last=config.channels_last, cache_dir=cache, on_batch=counted,
                               )
    for task in chosen:
        done = partial / f"{task}.json"
        if done.is_file():
            scores += [TaskScore.model_validate(s) for s in json.loads(done.read_text())]
            progress(task, "reused")
            continue
        try:
            if config.protocol == "linear":
                result = _linear(manifest.task(task), feats, config, progress)
            else:
                result = _finetune(encoder, pool, manifest.task(task), config, progress)
        except Unscorable as exc:
            skipped[task] = str(exc)
            progress(task, "skipped")
            continue
        atomic_write_json(done, [s.model_dump(mode="json") for s in result])
        scores += result
        progress(task, "done")
    if not scores:
        raise DpbenchError(f"no task could be scored: {'; '.join(f'{k}: {v}' for k, v in skipped.items())}")
    results = Results(method=name or encoder.spec, skipped=skipped, scores=scores, provenance=Provenance(
        dpbench_version=__version__, pool=manifest.pool, pool_version=manifest.pool_version,
        manifest_sha256=manifest_sha,
        split_sha256={t.name: t.split_sha256 for t in manifest.tasks if t.name in chosen},
        encoder=encoder.spec, weights_sha256=encoder.fingerprint(), protocol=config.protocol,
        settings=config.settings(), hardware=hardware(config.device), scored_split=config.score_on,
        wall_seconds=round(time.perf_counter() - started, 2), synthetic=manifest.synthetic,
        tasks={t: task_info(pool, manifest.task(t)) for t in chosen}))
    atomic_write_json(out / "results.json", results.model_dump(mode="json"))
    return results
