"""Batch-norm adaptation to the target data before training (supplementary B), leaving eval outputs unchanged.

For every affine batch-norm layer with running statistics, with source statistics (μs, σs²), affine (γs, βs) and
σ^(ε) = sqrt(σ² + ε), the target input statistics (μt, σt²) are measured and the layer is rewritten in place:

    γt = γs·σt^(ε)/σs^(ε),   βt = βs + γs·(μt − μs)/σs^(ε),   running_mean = μt,   running_var = σt²

so γt(x − μt)/σt^(ε) + βt = γs(x − μs)/σs^(ε) + βs: the eval-mode network computes the same function, while in
train mode (batch statistics ≈ target statistics) it now starts from that same function.

Differences from the paper's code: the statistics are pooled exactly over all adaptation batches (float64 sums;
mean and population variance over every N·H·W value, the variance train-mode BN normalises with) instead of
averaging per-batch means and unbiased variances; parameters are updated in place (the parameter objects stay,
so an optimiser built before still points at them; build it after anyway); ``num_batches_tracked`` is left alone.
Non-affine layers or layers without running statistics cannot be adapted this way and are skipped (counted).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from dpbench.errors import DpbenchError


@dataclass(frozen=True)
class BnAdaptReport:
    """What :func:`adapt_batch_norm` did."""

    adapted: int  # layers rewritten
    skipped: int  # non-affine or untracked layers left as they were
    batches: int  # adaptation batches forwarded
    samples: int  # images in them


class _Moments:
    """Per-channel float64 running sums of one layer's input."""

    def __init__(self) -> None:
        self.count = 0
        self.total: torch.Tensor | None = None
        self.squares: torch.Tensor | None = None

    def __call__(self, module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        x = inputs[0].detach().double()
        dims = [d for d in range(x.ndim) if d != 1]
        total, squares = x.sum(dim=dims), (x * x).sum(dim=dims)
        self.total = total if self.total is None else self.total + total
        self.squares = squares if self.squares is None else self.squares + squares
        self.count += x.numel() // x.shape[1]

    def stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.total is None or self.squares is None or not self.count:
            raise DpbenchError("a batch-norm layer saw no input during adaptation; check the backbone's forward")
        mean = self.total / self.count
        return mean, (self.squares / self.count - mean * mean).clamp_min(0.0)


def adaptable_layers(model: nn.Module) -> tuple[list[_BatchNorm], int]:
    """The affine batch-norm layers with running statistics, and how many other batch-norm layers there are."""
    layers = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    good = [m for m in layers if m.affine and m.running_mean is not None and m.running_var is not None]
    return good, len(layers) - len(good)


@torch.no_grad()
def adapt_batch_norm(model: nn.Module, batches: Iterable[Any]) -> BnAdaptReport:
    """Measure each batch-norm layer's input statistics on ``batches`` (eval mode, no grad) and adapt it in place.

    Each batch is run as ``model(batch)`` and must already be on the model's device. The eval-mode output is
    unchanged (up to float rounding); the training mode is restored afterwards.
    """
    layers, skipped = adaptable_layers(model)
    moments = {layer: _Moments() for layer in layers}
    handles = [layer.register_forward_pre_hook(moments[layer]) for layer in layers]
    was_training = model.training
    model.eval()
    n_batches = n_samples = 0
    try:
        for batch in batches:
            model(batch)
            n_batches += 1
            n_samples += len(batch) if isinstance(batch, torch.Tensor) else 0
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    if not n_batches:
        raise DpbenchError("batch-norm adaptation got no batch; give it at least one (or disable it)")
    for layer in layers:
        assert layer.weight is not None and layer.bias is not None
        assert layer.running_mean is not None and layer.running_var is not None
        mu_t, var_t = moments[layer].stats()
        mu_s, var_s = layer.running_mean.double(), layer.running_var.double()
        gamma, beta = layer.weight.double(), layer.bias.double()
        sigma_s, sigma_t = torch.sqrt(var_s + layer.eps), torch.sqrt(var_t + layer.eps)
        layer.weight.copy_(gamma * sigma_t / sigma_s)
        layer.bias.copy_(beta + gamma * (mu_t - mu_s) / sigma_s)
        layer.running_mean.copy_(mu_t)
        layer.running_var.copy_(var_t)
    return BnAdaptReport(adapted=len(layers), skipped=skipped, batches=n_batches, samples=n_samples)
