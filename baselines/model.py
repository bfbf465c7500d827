"""The multi-task network of §IV-A: a shared backbone θs and one linear head θi per task, samples routed by task."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from dpbench.encoders.hub import build_torchvision, seeded, strip_classifier
from dpbench.errors import DpbenchError

#: Encoder spec of the tiny test backbone (weight-free, so the exported checkpoint can rebuild it).
TINY_SPEC = "python:baselines.model:tiny_backbone"
#: ``--weights imagenet`` → the torchvision weights the paper started from (the original ImageNet ones).
IMAGENET_WEIGHTS = "IMAGENET1K_V1"


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
    """``python:baselines.model:tiny_backbone``: a TinyNet with a fixed (seed 0) initialisation."""
    with seeded(0):
        return TinyNet()


def backbone_spec(arch: str) -> str:
    """The weight-free encoder spec of ``arch``'s backbone (what :func:`build_backbone` returns with it)."""
    return TINY_SPEC if arch == "tiny" else f"torchvision:{arch}:none"


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
    return module, backbone_spec(arch)


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

    With :meth:`freeze_backbone` (warm-up) the backbone has ``requires_grad=False`` and stays in eval mode even
    under ``train()``, so neither its weights nor its batch-norm statistics change.
    """

    def __init__(self, backbone: nn.Module, feature_dim: int, n_classes: Mapping[str, int]) -> None:
        super().__init__()
        if not n_classes:
            raise DpbenchError("a multi-task network needs at least one task")
        self.backbone = backbone
        self.tasks = list(n_classes)
        self.heads = nn.ModuleList(nn.Linear(feature_dim, int(n)) for n in n_classes.values())
        self.frozen = False

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

    def forward(self, images: torch.Tensor, task_index: torch.Tensor) -> dict[str, torch.Tensor]:
        """Logits of each task present in the batch, from the features of its own samples only (batch order)."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
            features = self.backbone(images)
        present = torch.unique(task_index).tolist()
        return {self.tasks[i]: self.heads[i](features[task_index == i]) for i in present}
