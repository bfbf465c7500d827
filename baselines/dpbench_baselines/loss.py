"""Eq. 1's multi-task loss, supplementary C's head-gradient rescaling and the two-group SGD optimiser (§IV-B)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from dpbench_baselines.model import MultiTaskNet


def task_counts(task_index: torch.Tensor, n_tasks: int) -> list[int]:
    """|B_i|: samples of each task in the batch."""
    return [int(c) for c in torch.bincount(task_index.detach().cpu(), minlength=n_tasks).tolist()]


def multitask_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Eq. 1: L = (1/B) Σ_i ℓ(i), ℓ(i) the summed cross-entropy of the batch's task-i samples; B the whole batch.

    ``logits``: :meth:`MultiTaskNet.forward`'s routed logits (-inf outside each sample's task, so the softmax runs
    over that task's classes only); ``targets``: :meth:`MultiTaskNet.targets`.
    """
    return F.cross_entropy(logits.float(), targets, reduction="sum") / targets.shape[0]


@torch.no_grad()
def rescale_head_grads(model: MultiTaskNet, counts: Sequence[int]) -> None:
    """Supplementary C, after ``backward()`` and before ``step()``: head i's parameter grads ×= B/|B_i|.

    Routing makes ∂L/∂θi = (1/B) Σ_{j∈B_i} ∂ℓ_j/∂θi, i.e. each head learns |B_i|/B (≈1/T) as fast as a single-task
    head; the factor restores the per-task mean. Only the heads' ``.grad`` change: the backbone keeps Eq. 1's
    gradient. Heads without a sample get ``grad = None``, so SGD skips them (no momentum or weight-decay drift).
    """
    batch = sum(counts)
    for head, count in zip(model.heads, counts, strict=True):
        for param in head.parameters():
            if count == 0:
                param.grad = None
            elif param.grad is not None:
                param.grad.mul_(batch / count)


def make_optimizer(model: MultiTaskNet, lr: float, tau: float, momentum: float = 0.9,
                   weight_decay: float = 0.0) -> torch.optim.SGD:
    """SGD with two groups: ``backbone`` at γ = ``lr`` and ``heads`` at γ·τγ = ``lr * tau``."""
    return torch.optim.SGD(
        [{"params": list(model.backbone.parameters()), "lr": lr, "name": "backbone"},
         {"params": list(model.heads.parameters()), "lr": lr * tau, "name": "heads"}],
        lr=lr, momentum=momentum, weight_decay=weight_decay)


def warmup_optimizer(model: MultiTaskNet, lr: float, momentum: float = 0.9,
                     weight_decay: float = 0.0) -> torch.optim.SGD:
    """Warm-up SGD: the heads only, at γ_w = ``lr`` (the backbone is frozen)."""
    return torch.optim.SGD([{"params": list(model.heads.parameters()), "lr": lr, "name": "heads"}],
                           lr=lr, momentum=momentum, weight_decay=weight_decay)
