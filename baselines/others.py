"""The paper's comparison baselines (§IV-F): ImageNet transfer, training from scratch and joint training.

* ``imagenet``: the ImageNet-pre-trained torchvision backbone (``torchvision:ARCH:IMAGENET1K_V1``, cached weights
  only) evaluated with the linear-probe or fine-tuning protocol; a thin layer over :func:`evaluate`.
* ``scratch``: the fine-tuning protocol from a random initialisation (``torchvision:ARCH:none``).
* ``joint``: multi-task training on the pool *including* the target tasks' train splits, then each target is
  scored on its test split with its own trained head (no transfer). The final model is scored (no selection on the
  validation split).

Each writes ``OUT/results.json`` (:class:`dpbench.results.Results`) and ``OUT/report.html``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from baselines.train import CHECKPOINT, PretrainConfig, build_model, pretrain, resolve_tasks
from dpbench import __version__
from dpbench.data import task_dataset
from dpbench.encoders import Encoder, InputSpec, load_encoder
from dpbench.errors import DpbenchError
from dpbench.evaluation.features import resolve_device
from dpbench.evaluation.metrics import confusion, score, softmax
from dpbench.evaluation.report import write_report
from dpbench.evaluation.run import EvalConfig, evaluate, hardware
from dpbench.io import atomic_write_json, sha256_file
from dpbench.results import Provenance, Results, TaskScore
from dpbench.shards import MANIFEST, load_manifest
from dpbench.tasks.registry import RegistryError, get_pool, get_task

#: Training runs of ``joint`` go here, under OUT.
JOINT_RUN = "train"
Progress = Callable[[str, str], None]


def _resized(encoder: Encoder, size: int) -> Encoder:
    if size < 0:
        raise DpbenchError(f"size must be >= 0 (0: the encoder's own), got {size}")
    if not size:
        return encoder
    return dataclasses.replace(encoder, input=dataclasses.replace(encoder.input, size=size))


def _finish(results: Results, out: Path) -> Results:
    write_report(results, out / "report.html")
    return results


def imagenet_baseline(data: Path, out: Path, config: EvalConfig, *, arch: str = "resnet50",
                      tasks: list[str] | None = None, size: int = 0, cache: Path | None = None,
                      progress: Progress = lambda task, event: None) -> Results:
    """ImageNet transfer: ``torchvision:ARCH:IMAGENET1K_V1`` under ``config.protocol``; method
    ``imagenet-ARCH-PROTOCOL``. Uncached weights raise the loader's error (dpbench never downloads)."""
    encoder = _resized(load_encoder(f"torchvision:{arch}:IMAGENET1K_V1"), size)
    results = evaluate(encoder, Path(data), tasks, config, Path(out), name=f"imagenet-{arch}-{config.protocol}",
                       cache=cache, progress=progress)
    return _finish(results, Path(out))


def scratch_baseline(data: Path, out: Path, config: EvalConfig, *, arch: str = "resnet50",
                     tasks: list[str] | None = None, size: int = 0,
                     progress: Progress = lambda task, event: None) -> Results:
    """Training from scratch: the fine-tuning protocol from ``torchvision:ARCH:none``; method ``scratch-ARCH``."""
    if config.protocol != "finetune":
        config = dataclasses.replace(config, protocol="finetune")
    encoder = _resized(load_encoder(f"torchvision:{arch}:none"), size)
    results = evaluate(encoder, Path(data), tasks, config, Path(out), name=f"scratch-{arch}", progress=progress)
    return _finish(results, Path(out))


def joint_targets(root: Path, targets: list[str] | None) -> list[str]:
    """The target tasks: ``targets`` (which must be built) or the built evaluation-role tasks of the pool."""
    manifest = load_manifest(root)
    built = [t.name for t in manifest.tasks]
    try:
        if targets:
            chosen = list(dict.fromkeys(get_task(t).name for t in targets))
            missing = [t for t in chosen if t not in built]
            if missing:
                raise DpbenchError(f"target task(s) {', '.join(missing)} are not built in {root}; build them with "
                                   f"dpbench build --out {root} --tasks NAME")
            return chosen
        chosen = [t for t in get_pool(manifest.pool).tasks if t in built and get_task(t).role == "evaluate"]
    except RegistryError as exc:
        raise DpbenchError(str(exc).strip("'\"")) from None
    if not chosen:
        raise DpbenchError(f"no evaluation task of pool {manifest.pool} is built in {root}; pass --tasks NAME")
    return chosen


def _collate(batch: list[tuple[torch.Tensor, int, dict[str, Any]]]) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    return torch.stack([x[0] for x in batch]), torch.tensor([x[1] for x in batch]), [x[2]["key"] for x in batch]


@torch.no_grad()
def _predict_head(model: torch.nn.Module, task_index: int, task: str, loader: DataLoader[Any],
                  device: torch.device) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Test keys, labels and class probabilities (softmax of the task head's logits)."""
    keys: list[str] = []
    ys, logits = [], []
    for images, y, k in loader:
        index = torch.full((len(k),), task_index, dtype=torch.long, device=device)
        out = model(images.to(device), index)[task]
        logits.append(out.float().cpu().numpy())
        ys.append(y.numpy())
        keys += k
    return keys, np.concatenate(ys), softmax(np.concatenate(logits))


def _settings(config: PretrainConfig) -> dict[str, str | int | float | bool | None]:
    flat: dict[str, str | int | float | bool | None] = {}
    for key, value in dataclasses.asdict(config).items():
        if key in ("device", "workers", "checkpoint_every", "log_every"):
            continue
        flat[key] = ",".join(map(str, value)) if isinstance(value, tuple) else value
    return flat


def joint_baseline(data: Path, out: Path, config: PretrainConfig, targets: list[str] | None = None, *,
                   batch_size: int = 64,
                   progress: Callable[[int, int, dict[str, Any]], None] = lambda it, total, record: None) -> Results:
    """Joint training: multi-task training on every built task (targets included; ``config.tasks`` may narrow
    it but must keep the targets), then the final model's head of each target scores that target's test split.
    The training run (resumable) lives in ``OUT/train``; method ``joint-ARCH``, provenance protocol ``joint``."""
    root, out = Path(data), Path(out)
    started = time.perf_counter()
    config.check()
    if config.exclude:
        raise DpbenchError("joint training trains on the target tasks too; it takes no excluded tasks")
    chosen = joint_targets(root, targets)
    train_tasks = resolve_tasks(config, root)
    missing = [t for t in chosen if t not in train_tasks]
    if missing:
        raise DpbenchError(f"target task(s) {', '.join(missing)} are not among the training tasks; joint training "
                           "trains on its targets too")
    run = out / JOINT_RUN
    encoder_path = pretrain(config, root, run, resume=(run / CHECKPOINT).is_file(), progress=progress)
    saved = torch.load(run / CHECKPOINT, map_location="cpu", weights_only=True)
    # Rebuild the network without weights (they come from the checkpoint, no cache needed) and load the run.
    model, arch_spec = build_model(dataclasses.replace(config, weights="none"), root, list(saved["tasks"]))
    model.load_state_dict(saved["model"])
    device = resolve_device(config.device)
    model.to(device).eval()
    manifest = load_manifest(root)
    transform = InputSpec(size=config.input_size).transform(train=False)
    scores: list[TaskScore] = []
    skipped: dict[str, str] = {}
    for name in chosen:
        task = get_task(name)
        if manifest.task(name).splits["test"].images == 0:
            skipped[name] = f"task {name} has no test split"
            continue
        loader: DataLoader[Any] = DataLoader(task_dataset(root, name, "test", transform=transform),
                                             batch_size=batch_size, collate_fn=_collate)
        keys, y, probs = _predict_head(model, model.tasks.index(name), name, loader, device)
        try:
            value = score(task.metric, y, probs)
        except DpbenchError as exc:
            skipped[name] = str(exc)
            continue
        scores.append(TaskScore(
            task=name, seed=config.seed, metric=task.metric, score=value,
            predictions={k: [round(float(v), 6) for v in row] for k, row in zip(keys, probs, strict=True)},
            confusion=confusion(y, probs.argmax(axis=1), task.n_classes),
            selected={"iteration": float(saved["iteration"])}))
    if not scores:
        raise DpbenchError(f"no task could be scored: {'; '.join(f'{k}: {v}' for k, v in skipped.items())}")
    settings = _settings(config)
    settings["targets"] = ",".join(chosen)
    settings["train_tasks"] = ",".join(saved["tasks"])
    results = Results(method=f"joint-{config.arch}", skipped=skipped, scores=scores, provenance=Provenance(
        dpbench_version=__version__, pool=manifest.pool, pool_version=manifest.pool_version,
        manifest_sha256=sha256_file(root / MANIFEST),
        split_sha256={t.name: t.split_sha256 for t in manifest.tasks if t.name in chosen},
        encoder=arch_spec, weights_sha256=sha256_file(encoder_path), protocol="joint", settings=settings,
        hardware=hardware(config.device), wall_seconds=round(time.perf_counter() - started, 2),
        synthetic=manifest.synthetic))
    atomic_write_json(out / "results.json", results.model_dump(mode="json"))
    return _finish(results, out)
