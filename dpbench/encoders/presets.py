"""The encoder zoo as data: strict schemas of a preset, the built-in presets (``presets.json``) and plug-ins' presets.

A preset names one published encoder with the facts needed to use it as its authors do: where the weights live,
how the architecture is built, the input transform, the pooling, the licence. Every field has a closed vocabulary
or a validator and unknown fields are refused, so a typo fails when the registry loads. A package adds presets
through the ``dpbench.presets`` entry-point group; the entry point is a list of preset mappings (or a function
returning one)::

    [project.entry-points."dpbench.presets"]
    mylab = "mylab_encoders:PRESETS"
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from dpbench.errors import DpbenchError

PRESET_GROUP = "dpbench.presets"
DATA = Path(__file__).with_name("presets.json")
#: Spec schemes shipped by dpbench; a preset may not shadow one of them as a bare name.
RESERVED = frozenset({"random", "torchvision", "timm", "torchscript", "python", "checkpoint", "preset"})

Interpolation = Literal["bilinear", "bicubic", "none"]
Pooling = Literal["cls", "cls+mean", "mean", "pooler", "attention", "avgpool"]
ParamsSource = Literal["card", "paper", "computed"]
MlpLayer = Literal["Mlp", "SwiGLU", "SwiGLUPacked"]
ActLayer = Literal["GELU", "SiLU"]

_STRICT = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)
_NAME = r"^[a-z0-9][a-z0-9.\-]*[a-z0-9]$"
_URL = r"^https://\S+$"
Triple = tuple[float, float, float]


class Transform(BaseModel):
    """What the model sees: resize the tile's shorter side to ``resize``, centre-crop ``size``, normalise."""

    model_config = _STRICT

    size: int = Field(gt=0, description="side of the square the model sees, px")
    resize: int = Field(gt=0, description="side the tile is resized to before the centre crop (== size: no crop)")
    interpolation: Interpolation = Field(description="resampling of the resize; none: tiles are fed at `size` as is")
    mean: Triple
    std: Triple
    source: str = Field(min_length=1, description="where the authors specify this transform")

    @model_validator(mode="after")
    def _consistent(self) -> Transform:
        if self.resize < self.size:
            raise ValueError(f"resize {self.resize} is smaller than the crop {self.size}")
        if self.interpolation == "none" and self.resize != self.size:
            raise ValueError("interpolation none (no resize) needs resize == size")
        if any(s <= 0 for s in self.std):
            raise ValueError("std must be positive")
        return self


class TimmArgs(BaseModel):
    """Keyword arguments of ``timm.create_model``: a closed set; layer classes by name."""

    model_config = _STRICT

    img_size: int | None = None
    patch_size: int | None = None
    in_chans: int | None = None
    embed_dim: int | None = None
    depth: int | None = None
    num_heads: int | None = None
    mlp_ratio: float | None = None
    init_values: float | None = None
    num_classes: int | None = None
    global_pool: Literal["", "token", "avg"] | None = None
    class_token: bool | None = None
    no_embed_class: bool | None = None
    reg_tokens: int | None = None
    qkv_bias: bool | None = None
    dynamic_img_size: bool | None = None
    mlp_layer: MlpLayer | None = None
    act_layer: ActLayer | None = None

    def values(self) -> dict[str, Any]:
        """The arguments that are set (layer classes still by name)."""
        return self.model_dump(exclude_none=True)


class TimmLoader(BaseModel):
    """A timm model: ``hf-hub:HUB_ID`` (the hub's config.json names the architecture) or a weights ``url``."""

    model_config = _STRICT

    library: Literal["timm"]
    weights: Literal["hf-hub", "url"]
    url: str | None = Field(default=None, pattern=r"^https?://\S+$")
    args: TimmArgs = TimmArgs()
    arch: str = Field(min_length=1, description="timm architecture (the hub config's `architecture`)")
    arch_args: TimmArgs = Field(default=TimmArgs(), description="the hub config's model_args (random builds)")

    @model_validator(mode="after")
    def _url(self) -> TimmLoader:
        if (self.weights == "url") != (self.url is not None):
            raise ValueError("url is required for weights=url and only then")
        return self


class TransformersConfig(BaseModel):
    """The architecture as a Hugging Face config (random and meta builds; the hub's config.json wins on load)."""

    model_config = _STRICT

    model_type: Literal["vit", "dinov2", "dinov2_with_registers"]
    hidden_size: int = Field(gt=0)
    num_hidden_layers: int = Field(gt=0)
    num_attention_heads: int = Field(gt=0)
    patch_size: int = Field(gt=0)
    image_size: int = Field(gt=0)
    intermediate_size: int | None = None
    mlp_ratio: int | None = None
    layerscale_value: float | None = None
    use_swiglu_ffn: bool | None = None
    num_register_tokens: int | None = None
    qkv_bias: bool | None = None


class TransformersLoader(BaseModel):
    """A transformers model loaded with ``MODEL_CLASS.from_pretrained(HUB_ID, ...)`` as its card does."""

    model_config = _STRICT

    library: Literal["transformers"]
    model_class: Literal["AutoModel", "ViTModel"]
    add_pooling_layer: bool | None = None
    trust_remote_code: bool = False
    config: TransformersConfig


class TorchvisionLoader(BaseModel):
    """A torchvision classifier without its head, with the named weights."""

    model_config = _STRICT

    library: Literal["torchvision"]
    model: str = Field(min_length=1)
    weights: str = Field(min_length=1)


class ConchLoader(BaseModel):
    """CONCH's vision tower (ViT trunk + attentional pooler) from the CoCa checkpoint file on the hub."""

    model_config = _STRICT

    library: Literal["conch"]
    filename: str = "pytorch_model.bin"
    image_size: int = Field(gt=0)
    patch_size: int = Field(gt=0)
    width: int = Field(gt=0)
    depth: int = Field(gt=0)
    heads: int = Field(gt=0)
    mlp_ratio: float = Field(gt=0)
    embed_dim: int = Field(gt=0, description="attentional pooler width = feature dim")
    pool_heads: int = Field(gt=0)


class CheckpointLoader(BaseModel):
    """A documented form, not a download: the encoder is a dpbench checkpoint the user trains (``checkpoint:PATH``)."""

    model_config = _STRICT

    library: Literal["checkpoint"]
    howto: str = Field(min_length=1)


Loader = Annotated[TimmLoader | TransformersLoader | TorchvisionLoader | ConchLoader | CheckpointLoader,
                   Field(discriminator="library")]


class Preset(BaseModel):
    """One named encoder and the facts of its model card (each cited in ``card`` / ``sources``)."""

    model_config = _STRICT

    name: str = Field(pattern=_NAME)
    aliases: tuple[Annotated[str, Field(pattern=_NAME)], ...] = ()
    title: str = Field(min_length=1)
    hub_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")
    revision: str = Field(default="main", min_length=1)
    architecture: str = Field(min_length=1)
    params_m: float | None = Field(default=None, gt=0, description="parameters of the encoder, millions")
    params_source: ParamsSource | None = None
    dim: int | None = Field(default=None, gt=0, description="feature dimension after pooling")
    pooling: Pooling
    transform: Transform | None = None
    um_per_px: tuple[float, ...] = Field(default=(), description="resolution(s) trained at; empty: not stated")
    magnification: str = Field(min_length=1, description="the training resolution as the sources state it")
    licence: str = Field(min_length=1)
    gated: bool
    card: str = Field(pattern=_URL, description="the model card (or the authors' README)")
    sources: tuple[Annotated[str, Field(min_length=1)], ...] = ()
    notes: str = ""
    loader: Loader

    @model_validator(mode="after")
    def _consistent(self) -> Preset:
        library = self.loader.library
        if library == "checkpoint":
            return self
        if self.dim is None or self.transform is None or self.params_m is None or self.params_source is None:
            raise ValueError("dim, transform, params_m and params_source are required (only a checkpoint form may "
                             "leave them out)")
        loader = self.loader
        from_hub = isinstance(loader, TimmLoader) and loader.weights == "hf-hub"
        needs_hub = from_hub or library in ("transformers", "conch")
        if needs_hub and self.hub_id is None:
            raise ValueError(f"a {library} preset loading from the hub needs hub_id")
        allowed: dict[str, set[str]] = {"timm": {"cls", "cls+mean", "mean"},
                                        "transformers": {"cls", "cls+mean", "mean", "pooler"},
                                        "torchvision": {"avgpool"}, "conch": {"attention"}}
        if self.pooling not in allowed[library]:
            raise ValueError(f"pooling {self.pooling!r} does not apply to a {library} model; use one of "
                             f"{', '.join(sorted(allowed[library]))}")
        if any(v <= 0 for v in self.um_per_px):
            raise ValueError("um_per_px values must be positive")
        return self

    @property
    def names(self) -> tuple[str, ...]:
        """The name and its aliases."""
        return (self.name, *self.aliases)

    @property
    def trained_um_per_px(self) -> float | None:
        """The single resolution the model was trained at, or None (not stated, or several)."""
        return self.um_per_px[0] if len(self.um_per_px) == 1 else None


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"])
    return f"{where}: {error['msg']}" if where else str(error["msg"])


def parse_presets(items: Any, source: str) -> list[Preset]:
    """Validate a list of preset mappings (or Preset objects) from ``source``; the first problem → DpbenchError."""
    if isinstance(items, Mapping) or not isinstance(items, Iterable) or isinstance(items, str | bytes):
        raise DpbenchError(f"{source}: presets must be a list of preset objects, got {type(items).__name__}")
    found: list[Preset] = []
    for i, item in enumerate(items):
        if isinstance(item, Preset):
            found.append(item)
            continue
        label = item.get("name", f"#{i}") if isinstance(item, Mapping) else f"#{i}"
        try:
            found.append(Preset.model_validate(item))
        except ValidationError as exc:
            raise DpbenchError(f"{source}: preset {label!r} is invalid: {_first_error(exc)}") from None
    return found


def builtin_presets() -> list[Preset]:
    """dpbench's own presets, from ``presets.json`` beside this module."""
    try:
        data = json.loads(DATA.read_text())
    except (OSError, ValueError) as exc:
        raise DpbenchError(f"{DATA} cannot be read ({exc}); reinstall dpbench") from None
    return parse_presets(data, DATA.name)


def _plugin_presets() -> list[tuple[str, list[Preset]]]:
    found: list[tuple[str, list[Preset]]] = []
    for entry in entry_points(group=PRESET_GROUP):
        source = f"preset plug-in {entry.name!r} ({entry.value})"
        try:
            loaded = entry.load()
            items = loaded() if callable(loaded) else loaded
        except Exception as exc:
            raise DpbenchError(f"{source} failed to load: {type(exc).__name__}: {exc}; reinstall or remove the "
                               "package that provides it") from None
        found.append((source, parse_presets(items, source)))
    return found


@cache
def presets() -> dict[str, Preset]:
    """Every preset by name: dpbench's, then the plug-ins'; a name or alias defined twice is an error."""
    owner: dict[str, str] = {}
    table: dict[str, Preset] = {}
    for source, items in [(DATA.name, builtin_presets()), *_plugin_presets()]:
        for preset in items:
            for name in preset.names:
                if name in RESERVED:
                    raise DpbenchError(f"{source}: preset name {name!r} is an encoder spec scheme; rename it")
                if name in owner:
                    raise DpbenchError(f"{source}: preset name {name!r} is already defined by {owner[name]}; "
                                       "rename one of them")
                owner[name] = source
            table[preset.name] = preset
    return table


def find_preset(name: str) -> Preset | None:
    """The preset called ``name`` or one of its aliases (case-insensitive), or None."""
    key = name.strip().lower()
    for preset in presets().values():
        if key in preset.names:
            return preset
    return None


def close_presets(name: str) -> list[str]:
    """Preset names (and aliases) close to ``name``, for a "did you mean" hint."""
    every = [n for p in presets().values() for n in p.names]
    return difflib.get_close_matches(name.strip().lower(), every, n=3)


def get_preset(name: str) -> Preset:
    """The preset called ``name`` (or an alias); an unknown name → DpbenchError with the close matches."""
    preset = find_preset(name)
    if preset is None:
        close = close_presets(name)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise DpbenchError(f"unknown encoder preset {name!r}; {hint}see dpbench encoders list")
    return preset
