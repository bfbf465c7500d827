"""Joint training (§IV-F): multi-task training on the pool *including* the target tasks' train splits.

Each target is scored on its test split with its own trained head (no transfer). The training iteration is a
hyper-parameter chosen per target on its validation split: at every checkpoint the run scores each target's
val and test splits and stores the predictions in ``OUT/train/evals/iter-NNNNNNN.json``; each target then reports
the test predictions of the checkpoint with the best validation score (ties: the earlier one). A target without
a validation split is scored at the final iteration. Writes ``OUT/results.json`` and ``OUT/report.html``.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.special import softmax
from torch.utils.data import DataLoader

from dpbench import __version__
from dpbench.encoders import InputSpec
from dpbench.errors import DpbenchError, RegistryError
from dpbench.evaluation.features import resolve_device
from dpbench.evaluation.finetune import _collate
from dpbench.evaluation.metrics import score
from dpbench.evaluation.run import hardware, task_score
from dpbench.io import atomic_write_json, sha256_file
from dpbench.pool.built import BuiltPool, as_pool
from dpbench.pool.manifest import MANIFEST, Manifest
from dpbench.pool.read import shard_dataset, shard_urls
from dpbench.results import Provenance, Results, TaskScore
from dpbench.tasks.registry import get_pool, get_task
from dpbench_baselines.model import MultiTaskNet, backbone_spec
from dpbench_baselines.others import _finish
from dpbench_baselines.train import CHECKPOINT, PretrainConfig, build_model, pretrain, resolve_tasks

#: Training runs of ``joint`` go here, under OUT; checkpoint scores under OUT/train/evals.
JOINT_RUN, EVALS = "train", "evals"


def joint_targets(pool: BuiltPool | Path, targets: list[str] | None) -> list[str]:
    """The target tasks: ``targets`` (which must be built) or the built evaluation-role tasks of the pool."""
    pool = as_pool(pool)
    root, manifest = pool.root, pool.manifest
    built = [t.name for t in manifest.tasks]
    try:
        if targets:
            chosen = [get_task(t).name for t in targets]
            missing = [t for t in chosen if t not in built]
            if missing:
                raise DpbenchError(f"target task(s) {', '.join(missing)} are not built in {root}")
            return chosen
        chosen = [t for t in get_pool(manifest.pool).tasks if t in built and get_task(t).role == "evaluate"]
    except RegistryError as exc:
        raise DpbenchError(str(exc).strip("'\"")) from None
    if not chosen:
        raise DpbenchError(f"no evaluation task of pool {manifest.pool} is built in {root}; pass --tasks NAME")
    return chosen


@torch.no_grad()
def _predict_head(model: MultiTaskNet, task: str, loader: DataLoader[Any],
                  device: torch.device) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Keys, labels and class probabilities (softmax of the task head's logits) of a split."""
    keys: list[str] = []
    ys, logits = [], []
    for images, y, k in loader:
        logits.append(model.task_logits(images.to(device), task).float().cpu().numpy())
        ys.append(y.numpy())
        keys += k
    return keys, np.concatenate(ys), softmax(np.concatenate(logits), axis=1)


def checkpoint_scorer(pool: BuiltPool | Path, targets: list[str], folder: Path, config: PretrainConfig,
                      batch_size: int) -> Callable[[int, MultiTaskNet], None]:
    """A ``pretrain`` checkpoint hook storing each target's val and test predictions at that iteration."""
    pool = as_pool(pool)
    root, manifest = pool.root, pool.manifest
    transform = InputSpec(size=config.input_size).transform(train=False)
    urls: dict[str, dict[str, list[str]]] = {}  # target → its non-empty scored splits → shard paths
    for name in targets:
        urls[name] = {}
        for split in ("val", "test"):
            if manifest.task(name).splits[split].images == 0:
                continue
            urls[name][split] = shard_urls(pool, name, split)
            if not urls[name][split]:
                raise DpbenchError(f"task {name} has no {split} samples in {root}")

    def score_checkpoint(iteration: int, model: MultiTaskNet) -> None:
        path = folder / f"iter-{iteration:07d}.json"
        if path.is_file():
            return
        device = next(model.parameters()).device
        model.eval()
        record: dict[str, Any] = {"iteration": iteration, "tasks": {}}
        for name in targets:
            splits: dict[str, Any] = {}
            for split, paths in urls[name].items():
                loader: DataLoader[Any] = DataLoader(shard_dataset(paths, transform=transform),
                                                     batch_size=batch_size, collate_fn=_collate)
                keys, y, probs = _predict_head(model, name, loader, device)
                splits[split] = {"keys": keys, "labels": y.tolist(), "probs": np.round(probs, 6).tolist()}
            record["tasks"][name] = splits
        atomic_write_json(path, record)

    return score_checkpoint


def _select(task: str, evals: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, float]]:
    """The checkpoint record whose validation score of ``task`` is best, and what was selected."""
    metric = get_task(task).metric
    final = evals[-1]
    if "val" not in final["tasks"][task]:
        return final, {"iteration": float(final["iteration"])}
    best, best_value = final, -np.inf
    for record in evals:  # ascending iterations: a tie keeps the earlier checkpoint
        val = record["tasks"][task]["val"]
        try:
            value = score(metric, np.asarray(val["labels"]), np.asarray(val["probs"]))
        except DpbenchError:
            continue  # e.g. a validation split with a single class cannot rank checkpoints
        if value > best_value:
            best, best_value = record, value
    selected = {"iteration": float(best["iteration"])}
    if np.isfinite(best_value):
        selected["val_score"] = round(float(best_value), 6)
    return best, selected


def _results(config: PretrainConfig, manifest: Manifest, root: Path, chosen: list[str], train_tasks: list[str],
             scores: list[TaskScore], skipped: dict[str, str], encoder: str, weights: Path,
             started: float) -> Results:
    settings: dict[str, str | int | float | bool | None] = {}
    for key, value in dataclasses.asdict(config).items():
        if key not in ("device", "workers", "checkpoint_every", "log_every"):
            settings[key] = ",".join(map(str, value)) if isinstance(value, tuple) else value
    settings.update(targets=",".join(chosen), train_tasks=",".join(train_tasks), selection="val per target",
                    checkpoint_every=config.checkpoint_every)
    return Results(method=f"joint-{config.arch}", skipped=skipped, scores=scores, provenance=Provenance(
        dpbench_version=__version__, pool=manifest.pool, pool_version=manifest.pool_version,
        manifest_sha256=sha256_file(root / MANIFEST),
        split_sha256={t.name: t.split_sha256 for t in manifest.tasks if t.name in chosen},
        encoder=encoder, weights_sha256=sha256_file(weights), protocol="joint", settings=settings,
        hardware=hardware(config.device), wall_seconds=round(time.perf_counter() - started, 2),
        synthetic=manifest.synthetic))


def joint_baseline(data: Path, out: Path, config: PretrainConfig, targets: list[str] | None = None, *,
                   batch_size: int = 64,
                   progress: Callable[[int, int, dict[str, Any]], None] = lambda it, total, record: None) -> Results:
    """Joint training on every built task (targets included; ``config.tasks`` may narrow it but must keep the
    targets); each target scored on test at the checkpoint its validation split prefers. The training run
    (resumable, ``config.checkpoint_every`` sets the candidate iterations) lives in ``OUT/train``."""
    root, out = Path(data), Path(out)
    started = time.perf_counter()
    config.check()
    if config.exclude:
        raise DpbenchError("joint training trains on the target tasks too; it takes no excluded tasks")
    pool = BuiltPool(root)
    manifest = pool.manifest
    chosen = joint_targets(pool, targets)
    train_tasks = resolve_tasks(config, pool)
    missing = [t for t in chosen if t not in train_tasks]
    if missing:
        raise DpbenchError(f"target task(s) {', '.join(missing)} are not among the training tasks; joint training "
                           "trains on its targets too")
    run = out / JOINT_RUN
    folder = run / EVALS
    folder.mkdir(parents=True, exist_ok=True)
    scorer = checkpoint_scorer(pool, chosen, folder, config, batch_size)
    encoder_path = pretrain(config, root, run, resume=(run / CHECKPOINT).is_file(), progress=progress,
                            on_checkpoint=scorer)
    # pretrain returned: its checkpoint is at config.iterations, trained on train_tasks (checked when resuming)
    if not (folder / f"iter-{config.iterations:07d}.json").is_file():  # a run killed before its last hook
        saved = torch.load(run / CHECKPOINT, map_location="cpu", weights_only=True)
        model, _ = build_model(dataclasses.replace(config, weights="none"), pool, list(saved["tasks"]))
        model.load_state_dict(saved["model"])
        scorer(int(saved["iteration"]), model.to(resolve_device(config.device)))
    evals = [json.loads(p.read_text()) for p in sorted(folder.glob("iter-*.json"))]
    evals = [e for e in evals if e["iteration"] <= config.iterations and set(chosen) <= set(e["tasks"])]
    scores: list[TaskScore] = []
    skipped: dict[str, str] = {}
    for name in chosen:
        task = get_task(name)
        record, selected = _select(name, evals)
        if "test" not in record["tasks"][name]:
            skipped[name] = f"task {name} has no test split"
            continue
        test = record["tasks"][name]["test"]
        y, probs = np.asarray(test["labels"]), np.asarray(test["probs"])
        try:
            scores.append(task_score(name, config.seed, task.metric, test["keys"], probs, y, task.n_classes, selected))
        except DpbenchError as exc:
            skipped[name] = str(exc)
    if not scores:
        raise DpbenchError(f"no task could be scored: {'; '.join(f'{k}: {v}' for k, v in skipped.items())}")
    results = _results(config, manifest, root, chosen, train_tasks, scores, skipped, backbone_spec(config.arch),
                       encoder_path, started)
    atomic_write_json(out / "results.json", results.model_dump(mode="json"))
    return _finish(results, out)
