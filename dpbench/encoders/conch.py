"""CONCH's vision tower, built here so that it loads without the ``conch`` package (installable from git only).

The tower is the one the CONCH authors describe: a timm ``VisionTransformer`` trunk (its final-norm token sequence)
and an attentional pooler (learned queries attending over the tokens) with a LayerNorm; ``encode_image(x,
proj_contrast=False, normalize=False)``, the output the authors recommend for linear probes, is its first query.
Parameter names follow the CoCa checkpoint's ``visual.*`` entries, so its weights load with ``strict=True``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from dpbench.encoders.base import first_line
from dpbench.errors import DpbenchError

#: Parts of the checkpoint's ``visual`` tower the image embedding does not use (captioning and contrastive heads).
UNUSED = ("attn_pool_caption.", "ln_caption.", "proj_contrast", "head.")


class AttentionalPool(nn.Module):
    """``queries`` learned vectors of width ``dim`` attending over (B, N, context_dim) tokens → (B, queries, dim)."""

    def __init__(self, dim: int, context_dim: int, heads: int, queries: int = 1) -> None:
        super().__init__()
        self.query = nn.Parameter(torch.randn(queries, dim))
        self.attn = nn.MultiheadAttention(dim, heads, kdim=context_dim, vdim=context_dim)
        self.ln_q = nn.LayerNorm(dim)
        self.ln_k = nn.LayerNorm(context_dim)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        keys = self.ln_k(tokens).transpose(0, 1)  # (N, B, C): the attention is sequence-first
        queries = self.ln_q(self.query).unsqueeze(1).expand(-1, tokens.shape[0], -1)
        pooled: torch.Tensor = self.attn(queries, keys, keys, need_weights=False)[0]
        return pooled.transpose(0, 1)


class ConchVision(nn.Module):
    """Trunk tokens → attentional pooling (first query) → LayerNorm: the (B, embed_dim) image embedding."""

    def __init__(self, trunk: nn.Module, embed_dim: int, pool_heads: int) -> None:
        super().__init__()
        self.trunk = trunk
        width = int(getattr(trunk, "num_features", getattr(trunk, "embed_dim", 0)))
        self.attn_pool_contrast = AttentionalPool(embed_dim, width, pool_heads)
        self.ln_contrast = nn.LayerNorm(embed_dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        tokens = self.trunk.forward_features(images)  # type: ignore[operator]
        pooled: torch.Tensor = self.ln_contrast(self.attn_pool_contrast(tokens)[:, 0])
        return pooled


def build_conch(image_size: int, patch_size: int, width: int, depth: int, heads: int, mlp_ratio: float,
                embed_dim: int, pool_heads: int) -> ConchVision:
    """The tower with random weights (timm's ``VisionTransformer`` with the CONCH trunk's arguments)."""
    from timm.models.vision_transformer import VisionTransformer

    trunk = VisionTransformer(img_size=image_size, patch_size=patch_size, embed_dim=width, depth=depth,
                              num_heads=heads, mlp_ratio=mlp_ratio, num_classes=0, dynamic_img_size=True)
    return ConchVision(trunk, embed_dim, pool_heads)


def vision_state(checkpoint: Mapping[str, Any], source: str) -> dict[str, torch.Tensor]:
    """The ``visual.*`` weights of a CoCa checkpoint that the image embedding uses, without the prefix."""
    state = checkpoint.get("state_dict", checkpoint)
    if not isinstance(state, Mapping):
        raise DpbenchError(f"{source} is not a CONCH checkpoint (no state dict); delete it and fetch it again")
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        name = str(key).removeprefix("module.")
        if not name.startswith("visual."):
            continue
        name = name.removeprefix("visual.")
        if not name.startswith(UNUSED) and isinstance(value, torch.Tensor):
            out[name] = value
    if not out:
        raise DpbenchError(f"{source} holds no visual.* weights: not a CONCH checkpoint")
    return out


def load_conch_weights(module: ConchVision, path: str, source: str) -> None:
    """Load the tower's weights from the CoCa checkpoint file at ``path`` (strict; one error line on a mismatch)."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise DpbenchError(f"{source}: {path} is not a readable checkpoint ({first_line(exc)[:200]}); delete it and "
                           "fetch it again") from None
    if not isinstance(checkpoint, Mapping):
        raise DpbenchError(f"{source}: {path} is not a CONCH checkpoint (no state dict)")
    try:
        module.load_state_dict(vision_state(checkpoint, source), strict=True)
    except RuntimeError as exc:
        lines = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
        raise DpbenchError(f"{source}: the checkpoint does not fit the CONCH vision tower: {lines[:300]}") from None
