"""An example `python:` encoder for `dpbench eval` (see docs/evaluate.md).

    dpbench check-encoder python:docs/examples/my_encoder.py:build
    dpbench eval --encoder python:docs/examples/my_encoder.py:build --data dpbench-data --out results/mine
"""

from __future__ import annotations

import torch
from torch import nn

from dpbench.encoders import InputSpec


class TinyEncoder(nn.Module):
    """Three strided convolutions and global average pooling: (B, 3, 64, 64) → (B, 128)."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 32, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(64, 128, 3, stride=2, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.body(images)  # type: ignore[no-any-return]


def build() -> tuple[nn.Module, InputSpec]:
    """What dpbench calls: a module and the input it expects (here 64 px, ImageNet normalisation)."""
    torch.manual_seed(0)
    module = TinyEncoder()
    # To evaluate trained weights instead: module.load_state_dict(torch.load("my_weights.pt"))
    return module, InputSpec(size=64)
