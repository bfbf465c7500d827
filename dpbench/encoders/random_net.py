"""The ``random[:SEED]`` baseline: a small conv net whose weights depend only on the seed."""

from __future__ import annotations

import math

import torch
from torch import nn

#: Output channels of the conv stages; the last one is the feature dimension.
RANDOM_CHANNELS: tuple[int, ...] = (32, 64, 128, 256, 512)


class RandomConvNet(nn.Module):
    """Conv3×3(stride 2)+ReLU+MaxPool stages, then global average pooling: (B, 3, H, W) → (B, 512)."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        in_ch = 3
        with torch.random.fork_rng(devices=[]):  # the default init (overwritten below) must not consume global RNG
            for i, out_ch in enumerate(RANDOM_CHANNELS):
                layers += [nn.Conv2d(in_ch, out_ch, 3, stride=2 if i == 0 else 1, padding=1), nn.ReLU(inplace=True)]
                if i < len(RANDOM_CHANNELS) - 1:
                    layers.append(nn.MaxPool2d(2))
                in_ch = out_ch
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.seed = seed
        self.reset(seed)

    @torch.no_grad()
    def reset(self, seed: int) -> None:
        """He-uniform weights, zero biases, drawn in float64 from a CPU generator (bit-identical on every machine)."""
        generator = torch.Generator(device="cpu").manual_seed(seed)
        for layer in self.features:
            if isinstance(layer, nn.Conv2d):
                bound = math.sqrt(6.0 / (layer.in_channels * layer.kernel_size[0] * layer.kernel_size[1]))
                draw = torch.rand(layer.weight.shape, generator=generator, dtype=torch.float64)
                layer.weight.copy_((draw * 2.0 - 1.0) * bound)
                assert layer.bias is not None
                layer.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.pool(self.features(x)), 1)
