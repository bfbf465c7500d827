"""Fine-tuning, the paper's protocol (§IV-F): a new linear layer on the encoder, trained on the train split;
the learning rate is chosen from a grid and the epoch on the validation split; the test split scores it.

Selection rule: the (learning rate, epoch) with the best validation score; validation scores within 1e-12 are a
tie, resolved by the lower validation cross-entropy (a tie at ROC AUC 1.0 then prefers the more confident model,
not merely the first one seen), then by grid order and the earlier epoch.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.special import softmax
from torch import nn
from torch.utils.data import DataLoader

from dpbench.encoders import Encoder
from dpbench.errors import DpbenchError, Unscorable
from dpbench.evaluation.features import resolve_device
from dpbench.evaluation.metrics import score
from dpbench.pool.built import BuiltPool, as_pool
from dpbench.pool.manifest import TaskEntry
from dpbench.pool.read import shard_dataset
from dpbench.tasks.models import Task


@dataclass(frozen=True)
class FinetuneConfig:
    """Paper defaults: 100 epochs, learning rates 1e-3..1e-6, SGD with momentum 0.9, batch 64, flips + crops."""

    lrs: tuple[float, ...] = (1e-3, 1e-4, 1e-5, 1e-6)
    epochs: int = 100
    batch_size: int = 64
    momentum: float = 0.9
    augment: bool = True
    augmentation: str = "paper"  # dpbench.encoders.base.AUGMENTATIONS: paper (§IV-F) or resized-crop
    amp: bool = False
    workers: int = 0
    shuffle_buffer: int = 1000
    max_batches: int | None = None  # per epoch; a CPU budget, None = the whole split


@dataclass
class FinetuneResult:
    """Selected learning rate and epoch, and the test outputs of that model."""

    lr: float
    epoch: int
    val_score: float
    val_loss: float
    test_score: float
    test_keys: list[str]
    test_y: np.ndarray
    test_scores: np.ndarray
    history: list[dict[str, float]] = field(default_factory=list)


_TIE = 1e-12  # validation scores this close are a tie, resolved by the validation loss


def cross_entropy(y: np.ndarray, probabilities: np.ndarray) -> float:
    """Mean negative log-likelihood of the true classes (probabilities clipped at 1e-300)."""
    picked = probabilities[np.arange(len(y)), y].astype(np.float64)
    return float(-np.mean(np.log(np.clip(picked, 1e-300, None))))


def _collate(batch: list[tuple[torch.Tensor, int, dict[str, Any]]]) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    return torch.stack([x[0] for x in batch]), torch.tensor([x[1] for x in batch]), [x[2]["key"] for x in batch]


def _batches(encoder: Encoder, root: Path, urls: dict[str, list[str]], task: str, split: str, config: FinetuneConfig,
             seed: int, device: torch.device, train: bool = False) -> DataLoader[Any]:
    """uint8 batches (normalised on the device); training ones shuffled (and augmented when ``config.augment``).

    ``urls`` maps each split to its shard paths, read from the manifest once per :func:`finetune` call.
    """
    if not urls[split]:
        raise DpbenchError(f"task {task} has no {split} samples in {root}")
    transform = encoder.input.transform(train=train and config.augment, as_uint8=True, augment=config.augmentation)
    data = shard_dataset(urls[split], transform=transform, shuffle=config.shuffle_buffer if train else 0, seed=seed)
    return DataLoader(data, batch_size=config.batch_size, num_workers=config.workers, collate_fn=_collate,
                      pin_memory=device.type == "cuda")


def _predict(model: nn.Module, loader: DataLoader[Any], device: torch.device, amp: bool,
             normalise: Callable[[torch.Tensor], torch.Tensor]) -> tuple[list[str], np.ndarray, np.ndarray]:
    model.eval()
    keys, ys, logits = [], [], []
    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
        for images, y, k in loader:
            logits.append(model(normalise(images.to(device, non_blocking=True))).float().cpu().numpy())
            ys.append(y.numpy())
            keys += k
    return keys, np.concatenate(ys), softmax(np.concatenate(logits), axis=1)


def finetune(encoder: Encoder, pool: BuiltPool | Path, task: str | Task | TaskEntry, seed: int,
             config: FinetuneConfig | None = None, device: str = "auto") -> FinetuneResult:
    """Fine-tune a copy of ``encoder`` on ``task`` (a built task of ``pool``: its classes and metric are the
    manifest's, so a task card's task needs no registry entry) for every learning rate; return the best on
    validation.
    """
    config = config or FinetuneConfig()
    pool = as_pool(pool)
    root, manifest = pool.root, pool.manifest
    task = manifest.task(task if isinstance(task, str) else task.name)
    if task.splits["val"].images == 0:
        raise Unscorable(f"task {task.name} has no validation split, which fine-tuning needs to pick an epoch")
    urls = {split: [str(root / s.path) for s in manifest.shards_of(task.name, split)]
            for split in ("train", "val", "test")}
    dev = resolve_device(device)
    normalise = encoder.input.normaliser(dev)
    best: tuple[float, float, float, int, dict[str, torch.Tensor]] | None = None  # (val, loss, lr, epoch, state)
    history: list[dict[str, float]] = []
    val_loader = _batches(encoder, root, urls, task.name, "val", config, seed, dev)
    for lr in config.lrs:
        torch.manual_seed(seed)
        model = nn.Sequential(copy.deepcopy(encoder.module), nn.Linear(encoder.dim, task.n_classes)).to(dev)
        optimiser = torch.optim.SGD(model.parameters(), lr=lr, momentum=config.momentum)
        loss_fn = nn.CrossEntropyLoss()
        for epoch in range(1, config.epochs + 1):
            model.train()
            loader = _batches(encoder, root, urls, task.name, "train", config, seed * 1000 + epoch, dev, train=True)
            finite = torch.ones((), dtype=torch.bool, device=dev)  # read once per epoch: no per-step host sync
            for step, (images, y, _keys) in enumerate(loader):
                if config.max_batches is not None and step >= config.max_batches:
                    break
                with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=config.amp):
                    loss = loss_fn(model(normalise(images.to(dev, non_blocking=True))), y.to(dev, non_blocking=True))
                finite &= torch.isfinite(loss.detach())
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
            if not bool(finite):
                raise DpbenchError(f"fine-tuning {task.name} diverged at lr={lr} (the loss became NaN or infinite "
                                   f"in epoch {epoch}); try smaller learning rates (--lrs)")
            _, y_val, s_val = _predict(model, val_loader, dev, config.amp, normalise)
            value, loss = score(task.metric, y_val, s_val), cross_entropy(y_val, s_val)
            history.append({"lr": lr, "epoch": epoch, "val": value, "val_loss": loss})
            if best is None or value > best[0] + _TIE or (value >= best[0] - _TIE and loss < best[1]):
                state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
                best = (value, loss, lr, epoch, state)
    assert best is not None
    value, val_loss, lr, epoch, state = best
    model = nn.Sequential(copy.deepcopy(encoder.module), nn.Linear(encoder.dim, task.n_classes))
    model.load_state_dict(state)
    model.to(dev)
    test_loader = _batches(encoder, root, urls, task.name, "test", config, seed, dev)
    keys, y_test, s_test = _predict(model, test_loader, dev, config.amp, normalise)
    return FinetuneResult(lr, epoch, value, val_loss, score(task.metric, y_test, s_test), keys, y_test, s_test,
                          history)
