"""``dpbench eval``: evaluate one encoder on a built pool with the linear-probe or fine-tuning protocol.

Every (task, seed) result is saved as it completes under ``OUT/partial/``; a rerun with the same encoder,
data and settings reuses them, so a long evaluation resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
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
from dpbench.evaluation.metrics import confusion
from dpbench.evaluation.probe import C_GRID, linear_probe
from dpbench.io import atomic_write_json, sha256_file
from dpbench.pool.built import BuiltPool, as_pool
from dpbench.pool.manifest import MANIFEST
from dpbench.results import Provenance, Results, TaskScore
from dpbench.tasks.registry import get_task

Protocol = Literal["linear", "finetune"]
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

    def settings(self) -> dict[str, str | int | float | bool | None]:
        flat: dict[str, str | int | float | bool | None] = {
            "protocol": self.protocol, "probe": self.probe, "seeds": ",".join(map(str, self.seeds)),
            "batch_size": self.batch_size, "precision": self.precision, "channels_last": self.channels_last,
        }
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


def task_score(task_name: str, seed: int, metric: str, score: float, keys: Iterable[Any], class_scores: np.ndarray,
                y_true: np.ndarray, y_pred: np.ndarray, n_classes: int, selected: dict[str, float]) -> TaskScore:
    """One (task, seed) result: test score, rounded test predictions per sample key, confusion matrix, choices."""
    return TaskScore(
        task=task_name, seed=seed, metric=metric, score=score,
        predictions={str(k): [round(float(v), 6) for v in row] for k, row in zip(keys, class_scores, strict=True)},
        confusion=confusion(y_true, y_pred, n_classes), selected=selected)


def _linear(task_name: str, feats: dict[tuple[str, str], Features], config: EvalConfig,
            progress: Progress) -> list[TaskScore]:
    task = get_task(task_name)
    # The probe may use train and val (paper §IV-E); C is chosen by grouped 5-fold CV on them.
    parts = [feats[(task_name, split)] for split in ("train", "val") if (task_name, split) in feats]
    x = np.concatenate([p.x for p in parts])
    y = np.concatenate([p.y for p in parts])
    groups = np.concatenate([p.groups for p in parts])
    test = feats[(task_name, "test")]
    device = str(resolve_device(config.device))
    scores = []
    for seed in config.seeds:
        progress(task_name, f"probe seed {seed}")
        result = linear_probe(x, y, groups, test.x, test.y, task.n_classes, task.metric, method=config.probe,
                              device=device, seed=seed)
        scores.append(task_score(task_name, seed, task.metric, result.test_score, test.keys, result.test_scores,
                                  test.y, result.test_pred, task.n_classes, {"C": result.best_c}))
    return scores


def _finetune(encoder: Encoder, pool: BuiltPool, task_name: str, config: EvalConfig,
              progress: Progress) -> list[TaskScore]:
    task = get_task(task_name)
    scores = []
    for seed in config.seeds:
        progress(task_name, f"fine-tune seed {seed}")
        out = finetune(encoder, pool, task, seed, config.finetune, config.device)
        scores.append(task_score(task_name, seed, task.metric, out.test_score, out.test_keys, out.test_scores,
                                  out.test_y, out.test_scores.argmax(axis=1), task.n_classes,
                                  {"lr": out.lr, "epoch": out.epoch, "val_score": out.val_score}))
    return scores


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
        pairs = [(t, s) for t in remaining for s in ("train", "val", "test") if manifest.task(t).splits[s].images]
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
                result = _linear(task, feats, config, progress)
            else:
                result = _finetune(encoder, pool, task, config, progress)
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
        settings=config.settings(), hardware=hardware(config.device),
        wall_seconds=round(time.perf_counter() - started, 2), synthetic=manifest.synthetic))
    atomic_write_json(out / "results.json", results.model_dump(mode="json"))
    return results
