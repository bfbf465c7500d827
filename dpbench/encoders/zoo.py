"""Presets become encoders: the architecture built by the library its authors use, their weights, transform, pooling.

``preset:NAME`` (or the bare ``NAME``) loads a preset (:mod:`dpbench.encoders.presets`) the way its model card does:
timm ``hf-hub:`` names with the card's extra ``create_model`` arguments, timm architectures with a weights URL,
transformers ``from_pretrained``, torchvision weights, or CONCH's vision tower. Weights are fetched into the
libraries' usual caches unless offline (:mod:`dpbench.encoders.hub`). ``preset:NAME:random`` builds the same
architecture with seeded random weights and never touches the network.
"""

from __future__ import annotations

import importlib
from typing import Any, Literal

import torch
from torch import nn

from dpbench.encoders.base import InputSpec
from dpbench.encoders.conch import build_conch, load_conch_weights
from dpbench.encoders.hub import fetch_url, hub_errors, hub_file, network
from dpbench.encoders.libraries import build_torchvision, cached_weights_path, seeded
from dpbench.encoders.presets import (
    ConchLoader,
    Preset,
    TimmArgs,
    TimmLoader,
    TorchvisionLoader,
    TransformersLoader,
    get_preset,
)
from dpbench.errors import DpbenchError

Kind = Literal["timm", "transformers", "plain"]


def _library(name: str, what: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError:
        raise DpbenchError(f"{what} needs {name}: pip install {name}") from None


class ZooEncoder(nn.Module):
    """A preset's backbone with its pooling (and the centre crop of its transform): images → (B, D) features.

    ``kind`` says what the backbone returns: ``timm`` (``forward_features``: normed tokens), ``transformers``
    (``last_hidden_state`` / ``pooler_output``) or ``plain`` (the pooled features themselves). ``prefix`` is the
    number of class + register tokens in front of the patch tokens.
    """

    def __init__(self, backbone: nn.Module, kind: Kind, pooling: str, prefix: int, crop: int | None) -> None:
        super().__init__()
        self.backbone = backbone
        self.kind = kind
        self.pooling = pooling
        self.prefix = prefix
        self.crop = crop

    def extra_repr(self) -> str:
        return f"kind={self.kind}, pooling={self.pooling}, prefix_tokens={self.prefix}, crop={self.crop}"

    def _cropped(self, images: torch.Tensor) -> torch.Tensor:
        if self.crop is None:
            return images
        height, width = images.shape[-2:]
        top, left = round((height - self.crop) / 2), round((width - self.crop) / 2)
        return images[..., top:top + self.crop, left:left + self.crop]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        images = self._cropped(images)
        if self.kind == "plain":
            out: torch.Tensor = self.backbone(images)
            return out
        if self.kind == "timm":
            tokens: torch.Tensor = self.backbone.forward_features(images)  # type: ignore[operator]
        else:
            result = self.backbone(pixel_values=images)
            if self.pooling == "pooler":
                pooled: torch.Tensor = result.pooler_output
                return pooled
            tokens = result.last_hidden_state
        return pool_tokens(tokens, self.pooling, self.prefix)


def pool_tokens(tokens: torch.Tensor, pooling: str, prefix: int) -> torch.Tensor:
    """(B, N, C) tokens → (B, C) ``cls`` / ``mean`` of the patch tokens, or (B, 2C) ``cls+mean`` (their concat)."""
    if pooling == "cls":
        return tokens[:, 0]
    patches = tokens[:, prefix:].mean(dim=1)
    if pooling == "mean":
        return patches
    if pooling == "cls+mean":
        return torch.cat([tokens[:, 0], patches], dim=-1)
    raise DpbenchError(f"pooling {pooling!r} does not apply to token outputs")


def input_spec(preset: Preset) -> InputSpec:
    """The dpbench input spec: the tile resized to the transform's ``resize`` side, the preset's mean/std."""
    if preset.transform is None:
        raise DpbenchError(f"preset {preset.name} has no transform")
    t = preset.transform
    return InputSpec(size=t.resize, mean=t.mean, std=t.std, um_per_px=preset.trained_um_per_px,
                     interpolation="bicubic" if t.interpolation == "bicubic" else "bilinear")


def _crop(preset: Preset) -> int | None:
    t = preset.transform
    return t.size if t is not None and t.resize > t.size else None


def timm_kwargs(args: TimmArgs) -> dict[str, Any]:
    """``create_model`` keyword arguments with the layer classes resolved from their names."""
    timm = _library("timm", "this preset")
    values = args.values()
    if "mlp_layer" in values:
        values["mlp_layer"] = getattr(timm.layers, values["mlp_layer"])
    if "act_layer" in values:
        values["act_layer"] = getattr(nn, values["act_layer"])
    return values


def _timm(preset: Preset, loader: TimmLoader, weights: bool, offline: bool) -> nn.Module:
    timm = _library("timm", f"preset {preset.name}")
    kwargs = timm_kwargs(loader.args)
    full = {**timm_kwargs(loader.arch_args), **kwargs}  # as timm merges a hub config's model_args
    if not weights:
        with seeded(0):
            model: nn.Module = timm.create_model(loader.arch, pretrained=False, **full)
        return model
    if loader.weights == "url":
        assert loader.url is not None
        fetch_url(loader.url, preset.name, offline=offline)  # timm then finds it in the torch.hub cache
        with seeded(0):
            model = timm.create_model(loader.arch, pretrained=True,
                                      pretrained_cfg={"url": loader.url, "num_classes": 0}, **full)
        return model
    assert preset.hub_id is not None
    name = f"hf-hub:{preset.hub_id}" + ("" if preset.revision == "main" else f"@{preset.revision}")
    with hub_errors(preset.name, preset.hub_id, gated=preset.gated, offline=offline), seeded(0):
        model = timm.create_model(name, pretrained=True, **kwargs)
    return model


def _transformers(preset: Preset, loader: TransformersLoader, weights: bool, offline: bool) -> nn.Module:
    transformers = _library("transformers", f"preset {preset.name}")
    extra: dict[str, Any] = {}
    if loader.add_pooling_layer is not None:
        extra["add_pooling_layer"] = loader.add_pooling_layer
    if not weights:
        fields = loader.config.model_dump(exclude_none=True)
        config = transformers.AutoConfig.for_model(fields.pop("model_type"), **fields)
        with seeded(0):
            if loader.model_class == "AutoModel":
                return transformers.AutoModel.from_config(config, **extra)  # type: ignore[no-any-return]
            return getattr(transformers, loader.model_class)(config, **extra)  # type: ignore[no-any-return]
    assert preset.hub_id is not None
    cls = getattr(transformers, loader.model_class)
    with hub_errors(preset.name, preset.hub_id, gated=preset.gated, offline=offline), seeded(0):
        model: nn.Module = cls.from_pretrained(preset.hub_id, revision=preset.revision,
                                               trust_remote_code=loader.trust_remote_code, **extra)
    return model.float()  # transformers 5 keeps the checkpoint's dtype; dpbench encoders run in float32


def _conch(preset: Preset, loader: ConchLoader, weights: bool, offline: bool) -> nn.Module:
    _library("timm", f"preset {preset.name}")
    with seeded(0):
        module = build_conch(loader.image_size, loader.patch_size, loader.width, loader.depth, loader.heads,
                             loader.mlp_ratio, loader.embed_dim, loader.pool_heads)
    if weights:
        assert preset.hub_id is not None
        path = hub_file(preset.hub_id, loader.filename, preset.revision, preset.name, gated=preset.gated,
                        offline=offline)
        load_conch_weights(module, str(path), preset.name)
    return module


def _torchvision(preset: Preset, loader: TorchvisionLoader, weights: bool, offline: bool) -> nn.Module:
    if not weights:
        module, _ = build_torchvision(loader.model, None)
        return module
    from torchvision.models import get_model_weights

    enum = getattr(get_model_weights(loader.model), loader.weights)
    if not cached_weights_path(enum.url).is_file():
        fetch_url(enum.url, preset.name, offline=offline)
    module, _ = build_torchvision(loader.model, loader.weights)
    return module


def prefix_tokens(preset: Preset, backbone: nn.Module) -> int:
    """Class + register tokens in front of the patch tokens, as the built backbone reports them."""
    if preset.loader.library == "timm":
        return int(getattr(backbone, "num_prefix_tokens", 1))
    config = getattr(backbone, "config", None)
    return 1 + int(getattr(config, "num_register_tokens", 0) or 0)


def build_preset(preset: Preset, *, weights: bool = True, offline: bool | None = None) -> tuple[nn.Module, InputSpec]:
    """The preset's encoder module and input spec; ``weights=False``: seeded random weights, no network at all.

    ``offline`` None follows the environment (``HF_HUB_OFFLINE``). Built under ``torch.device("meta")`` with
    ``weights=False``, the module has the real shapes and no memory (tests count parameters that way).
    """
    loader = preset.loader
    if loader.library == "checkpoint":
        raise DpbenchError(f"{preset.name} is not downloadable: {loader.howto}")
    try:
        with network(offline) as off:
            if loader.library == "timm":
                backbone = _timm(preset, loader, weights, off)
            elif loader.library == "transformers":
                backbone = _transformers(preset, loader, weights, off)
            elif loader.library == "conch":
                backbone = _conch(preset, loader, weights, off)
            else:
                backbone = _torchvision(preset, loader, weights, off)
    except DpbenchError:
        raise
    except Exception as exc:
        detail = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())[:300]
        raise DpbenchError(f"preset {preset.name} could not be built: {type(exc).__name__}: {detail}") from None
    spec = input_spec(preset)
    if loader.library == "torchvision" and _crop(preset) is None:
        return backbone, spec  # the bare torchvision model: same fingerprint as torchvision:NAME:WEIGHTS
    kind: Kind = {"timm": "timm", "transformers": "transformers"}.get(loader.library, "plain")  # type: ignore[assignment]
    module = ZooEncoder(backbone, kind, preset.pooling, prefix_tokens(preset, backbone), _crop(preset))
    return module, spec


def preset_scheme(spec: str, rest: str | None) -> tuple[nn.Module, InputSpec]:
    """The ``preset:NAME[:random]`` encoder spec (registered in the ``dpbench.encoders`` entry-point group)."""
    name = (rest or "").strip()
    random = name.endswith(":random")
    name = name.removesuffix(":random")
    if not name or ":" in name:
        raise DpbenchError(f"bad spec {spec!r}: expected preset:NAME or preset:NAME:random (see dpbench encoders list)")
    return build_preset(get_preset(name), weights=not random)
