"""Tiny encoders for the encoder tests: good ones for each ``python:`` return type, and deliberately broken ones."""

from __future__ import annotations

import torch
from torch import nn

from dpbench.encoders import Encoder, InputSpec

TINY_INPUT = InputSpec(size=32, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), um_per_px=1.0)
TINY_DIM = 8


class Tiny(nn.Module):
    """Conv + ReLU + global average pooling: (B, 3, H, W) → (B, 8); seeded weights."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.conv = nn.Conv2d(3, TINY_DIM, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.pool(torch.relu(self.conv(x))), 1)


class NaNOutput(Tiny):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = super().forward(x).clone()
        out[:, 0] = float("nan")
        return out


class ExtraAxis(Tiny):
    """Returns (B, D, 1)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x).unsqueeze(-1)


class DropsOne(Tiny):
    """Returns (B - 1, D)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x)[1:]


class Noisy(Tiny):
    """Adds fresh random noise on every call."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = super().forward(x)
        return out + torch.randn_like(out)


class WithDropout(Tiny):
    """Dropout that is only off in eval mode."""

    def __init__(self) -> None:
        super().__init__()
        self.drop = nn.Dropout(0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.drop(super().forward(x))
        return out


class BatchCentred(Tiny):
    """Subtracts the batch mean: each image's features depend on the rest of the batch."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = super().forward(x)
        return out - out.mean(dim=0, keepdim=True)


class IntOutput(Tiny):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (super().forward(x) * 100).long()


def tiny_encoder(module: nn.Module | None = None) -> Encoder:
    """An Encoder built directly (no load-time validation, ``module`` left in its mode), for the contract checks."""
    return Encoder(spec="test:tiny", module=module or Tiny().eval(), input=TINY_INPUT, dim=TINY_DIM)


# ---- python:MODULE:ATTR targets ----

def build_tiny() -> nn.Module:
    return Tiny()


def build_tiny_with_spec() -> tuple[nn.Module, InputSpec]:
    return Tiny(), TINY_INPUT


def build_tiny_encoder() -> Encoder:
    return Encoder(spec="whatever", module=Tiny().train(), input=TINY_INPUT, dim=TINY_DIM)


def build_nan() -> nn.Module:
    return NaNOutput()


def build_extra_axis() -> nn.Module:
    return ExtraAxis()


def returns_int() -> int:
    return 3


def raises() -> nn.Module:
    raise ValueError("no weights for you")


TINY_INSTANCE = Tiny()
NOT_CALLABLE = 42
