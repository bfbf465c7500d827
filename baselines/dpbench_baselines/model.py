"""The multi-task network of §IV-A: a shared backbone θs and one linear head θi per task, samples routed by task."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from dpbench.encoders.libraries import build_torchvision, seeded, strip_classifier
from dpbench.errors import DpbenchError

#: Encoder spec of the tiny test backbone (weight-free, so the exported checkpoint can rebuild it).
TINY_SPEC = "python:dpbench_baselines.model:tiny_backbone"
#: ``--weights imagenet`` → the torchvision weights the paper started from (the original ImageNet ones).
IMAGENET_WEIGHTS = "IMAGENET1K_V1"
#: Architectures whose backbone is the authors' variant, not torchvision's classifier path, with its spec.
AUTHORS_SPECS = {"densenet121": "python:dpbench_baselines.model:densenet121_backbone"}


class PooledFeatures(nn.Module):
    """The authors' DenseNet backbone: global average pooling of ``features(x)`` (the norm5 output).

    torchvision's ``DenseNet.forward`` applies a ReLU after ``features`` before pooling; the paper's network
    (its ``densenet.py``) pools ``features(x)`` directly, so its features can be negative. The state dict keys
    (``features.*``) are torchvision's, so ImageNet weights load unchanged.
    """

    def __init__(self, features: nn.Module) -> None:
        super().__init__()
        self.features = features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(F.adaptive_avg_pool2d(self.features(x), 1), 1)


def densenet121_backbone() -> nn.Module:
    """``python:dpbench_baselines.model:densenet121_backbone``: the authors' DenseNet121 backbone, seed-0 init."""
    from torchvision import models

    with seeded(0):
        return PooledFeatures(models.densenet121(weights=None).features)


def authors_backbone(module: nn.Module, arch: str) -> nn.Module:
    """``module`` (a torchvision model of ``arch``) as the paper's backbone: DenseNet121 pools ``features(x)``
    without the final ReLU (:class:`PooledFeatures`); other architectures are returned as they are (ResNet50's
    torchvision path, average pooling of layer4 with the fc removed, is already the authors')."""
    if arch in AUTHORS_SPECS and not isinstance(module, PooledFeatures):
        return PooledFeatures(cast(nn.Module, module.features))
    return module


class TinyNet(nn.Module):
    """Three conv-BN-ReLU stages (stride 2) and global average pooling: (B, 3, S, S) → (B, 64). For tests."""

    def __init__(self, widths: tuple[int, ...] = (16, 32, 64)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        in_ch = 3
        for out_ch in widths:
            layers += [nn.Conv2d(in_ch, out_ch, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(out_ch),
                       nn.ReLU(inplace=True)]
            in_ch = out_ch
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.pool(self.features(x)), 1)


def tiny_backbone() -> nn.Module:
    """``python:dpbench_baselines.model:tiny_backbone``: a TinyNet with a fixed (seed 0) initialisation."""
    with seeded(0):
        return TinyNet()


def backbone_spec(arch: str) -> str:
    """The weight-free encoder spec of ``arch``'s backbone (what :func:`build_backbone` returns with it)."""
    return TINY_SPEC if arch == "tiny" else AUTHORS_SPECS.get(arch, f"torchvision:{arch}:none")


def build_backbone(arch: str, weights: str = "none", seed: int = 0) -> tuple[nn.Module, str]:
    """The shared network θs (classifier removed, global-average-pooled features) and its weight-free encoder spec.

    ``arch``: ``tiny`` or a torchvision classification model (``resnet50``, ``densenet121``, ``resnet18``...).
    ``weights``: ``imagenet`` (the paper's start; cached weights only), ``none`` (random init drawn from ``seed``)
    or a torchvision weights name.
    """
    if arch == "tiny":
        if weights.lower() != "none":
            raise DpbenchError("arch tiny has no pretrained weights; use --weights none")
        with seeded(seed):
            return TinyNet(), backbone_spec(arch)
    if weights.lower() == "none":
        from torchvision import models

        if arch not in models.list_models(module=models):
            build_torchvision(arch, None)  # raises the registry's "unknown model, did you mean" error
        with seeded(seed):
            module = models.get_model(arch, weights=None)
        strip_classifier(module, arch)
    else:
        module, _ = build_torchvision(arch, IMAGENET_WEIGHTS if weights.lower() == "imagenet" else weights)
    return authors_backbone(module, arch), backbone_spec(arch)


@torch.no_grad()
def feature_dim(backbone: nn.Module, size: int) -> int:
    """Features per image of ``backbone`` at ``size``×``size`` input (an eval-mode dummy forward)."""
    was_training = backbone.training
    backbone.eval()
    try:
        out = backbone(torch.zeros(2, 3, size, size, device=next(backbone.parameters()).device))
    finally:
        backbone.train(was_training)
    if not isinstance(out, torch.Tensor) or out.ndim != 2:
        raise DpbenchError(f"the backbone must return (B, D) pooled features, got {getattr(out, 'shape', out)}")
    return int(out.shape[1])


class MultiTaskNet(nn.Module):
    """Shared ``backbone`` and one ``nn.Linear(feature_dim, C_i)`` head per task (``heads[i]`` for ``tasks[i]``).

    :meth:`forward` routes without host synchronisation, so a GPU never waits for the host between batches: all
    heads run as one matrix product, and each sample keeps only its own task's logits (``-inf`` elsewhere), so its
    features reach its task's head only and the other heads get exactly zero gradient from it.

    With :meth:`freeze_backbone` (warm-up) the backbone has ``requires_grad=False`` and stays in eval mode even
    under ``train()``, so neither its weights nor its batch-norm statistics change.
    """

    column_task: torch.Tensor
    first_column: torch.Tensor

    def __init__(self, backbone: nn.Module, feature_dim: int, n_classes: Mapping[str, int]) -> None:
        super().__init__()
        if not n_classes:
            raise DpbenchError("a multi-task network needs at least one task")
        self.backbone = backbone
        self.tasks = list(n_classes)
        sizes = [int(n) for n in n_classes.values()]
        self.heads = nn.ModuleList(nn.Linear(feature_dim, n) for n in sizes)
        self.frozen = False
        # Not in the state dict: derived from the heads' sizes.
        self.register_buffer("column_task", torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes)),
                             persistent=False)
        self.register_buffer("first_column", torch.tensor([0, *itertools.accumulate(sizes)][:-1]), persistent=False)

    def freeze_backbone(self) -> None:
        """Warm-up: no backbone weight update (requires_grad False), no batch-norm update (eval mode)."""
        self.frozen = True
        self.backbone.requires_grad_(False)
        self.backbone.eval()

    def unfreeze_backbone(self) -> None:
        """Train the whole network again (backbone follows ``self.training``)."""
        self.frozen = False
        self.backbone.requires_grad_(True)
        self.backbone.train(self.training)

    def train(self, mode: bool = True) -> MultiTaskNet:
        super().train(mode)
        if self.frozen:
            self.backbone.eval()
        return self

    def forward(self, images: torch.Tensor, task_index: torch.Tensor) -> torch.Tensor:
        """Routed logits (B, ΣC_i): row j has head ``task_index[j]``'s logits in that task's columns, -inf elsewhere."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
            features = self.backbone(images)
        heads = self.linear_heads()
        weight = torch.cat([head.weight for head in heads])
        bias = torch.cat([head.bias for head in heads])
        own = self.column_task.unsqueeze(0) == task_index.unsqueeze(1)
        return F.linear(features, weight, bias).masked_fill(~own, float("-inf"))

    def targets(self, task_index: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The column of each sample's label in :meth:`forward`'s output."""
        return self.first_column[task_index] + labels

    def task_logits(self, images: torch.Tensor, task: str) -> torch.Tensor:
        """``task``'s head on the backbone's features: (B, C_task) logits of images of that task."""
        logits: torch.Tensor = self.linear_heads()[self.tasks.index(task)](self.backbone(images))
        return logits

    def linear_heads(self) -> list[nn.Linear]:
        """``heads`` with their type: one ``nn.Linear`` per task."""
        return [cast(nn.Linear, head) for head in self.heads]
