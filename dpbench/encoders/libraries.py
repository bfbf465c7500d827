"""Encoders from model zoos: torchvision (always) and timm (when installed); cached weights only, never a download."""

from __future__ import annotations

import contextlib
import difflib
import importlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
from torch import nn

from dpbench.encoders.base import InputSpec, first_line
from dpbench.errors import DpbenchError

#: Model-name prefix → attribute holding the classifier head, replaced by Identity.
TORCHVISION_HEADS: dict[str, str] = {
    "resnet": "fc", "resnext": "fc", "wide_resnet": "fc", "regnet": "fc", "shufflenet": "fc", "googlenet": "fc",
    "inception": "fc", "densenet": "classifier", "vit_": "heads",
}


@contextlib.contextmanager
def no_download() -> Iterator[None]:
    """Make any torch.hub download attempt fail (and Hugging Face Hub run offline) inside the block."""
    def refuse(url: str, *args: Any, **kwargs: Any) -> None:
        raise DpbenchError(f"refusing to download {url}: dpbench never downloads weights; cache the file first")

    saved_download = torch.hub.download_url_to_file
    saved_env = os.environ.get("HF_HUB_OFFLINE")
    hf_constants: Any = None
    with contextlib.suppress(ImportError):
        hf_constants = importlib.import_module("huggingface_hub.constants")
    saved_hf = getattr(hf_constants, "HF_HUB_OFFLINE", None)
    torch.hub.download_url_to_file = refuse
    os.environ["HF_HUB_OFFLINE"] = "1"
    if hf_constants is not None:
        hf_constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        torch.hub.download_url_to_file = saved_download
        if saved_env is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = saved_env
        if hf_constants is not None:
            hf_constants.HF_HUB_OFFLINE = saved_hf


@contextlib.contextmanager
def seeded(seed: int = 0) -> Iterator[None]:
    """Seed the CPU RNG for a deterministic random init without disturbing the caller's RNG state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def _suggest(name: str, options: list[str]) -> str:
    close = difflib.get_close_matches(name, options, n=3)
    return f"did you mean {', '.join(close)}? " if close else ""


def strip_classifier(model: nn.Module, name: str) -> None:
    """Replace the classification head by Identity so the model outputs its pooled features."""
    for prefix, attr in TORCHVISION_HEADS.items():
        if name.startswith(prefix) and isinstance(getattr(model, attr, None), nn.Module):
            setattr(model, attr, nn.Identity())
            return
    linears = [path for path, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise DpbenchError(f"torchvision:{name} has no linear classifier head to remove; wrap it yourself and load it "
                           "with python:MODULE:ATTR")
    parent, _, child = linears[-1].rpartition(".")
    setattr(model.get_submodule(parent), child, nn.Identity())


def _weights_enum(name: str, weights: str) -> Any:
    from torchvision.models import get_model_weights

    enum = get_model_weights(name)
    key = weights.rpartition(".")[2]  # accept "ResNet50_Weights.IMAGENET1K_V1" too
    members = list(enum.__members__)
    for member in members:
        if member.lower() == key.lower():
            return enum[member]
    raise DpbenchError(f"torchvision:{name} has no weights {weights!r}; use one of: none, {', '.join(members)}")


def cached_weights_path(url: str) -> Path:
    """Where torch.hub keeps (and torchvision looks for) the file of ``url``: ``$TORCH_HOME/hub/checkpoints/NAME``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(url).path)


def build_torchvision(name: str, weights: str | None) -> tuple[nn.Module, InputSpec]:
    """A torchvision classifier without its head; ``weights`` None/'none' → seeded random init, else cached weights."""
    from torchvision import models

    names = models.list_models(module=models)
    if name not in names:
        raise DpbenchError(f"unknown torchvision model {name!r}; {_suggest(name, names)}"
                           "see torchvision.models.list_models() for the classification models")
    default = models.get_model_weights(name).DEFAULT
    if weights is None or weights.lower() == "none":
        with seeded(0):
            model = models.get_model(name, weights=None)
        enum = default
    else:
        enum = _weights_enum(name, weights)
        cached = cached_weights_path(enum.url)
        if not cached.is_file():
            raise DpbenchError(
                f"weights {enum} for torchvision:{name} are not cached and dpbench never downloads: put "
                f"{cached.name} in $TORCH_HOME/hub/checkpoints/ (looked in {cached.parent}; set TORCH_HOME to choose "
                f"the cache, or run torchvision.models.get_model({name!r}, weights={str(enum)!r}) once on a machine "
                "with internet), or pass a local file with torchscript:PATH or checkpoint:PATH")
        try:
            with no_download():
                model = models.get_model(name, weights=enum, progress=False)
        except DpbenchError:
            raise
        except Exception as exc:
            raise DpbenchError(f"cached weights {cached} for torchvision:{name} could not be loaded "
                               f"({first_line(exc)}); delete the file and "
                               "cache it again") from None
    strip_classifier(model, name)
    preset = enum.transforms()
    spec = InputSpec(size=int(preset.crop_size[0]), mean=tuple(preset.mean), std=tuple(preset.std))
    return model, spec


def build_timm(name: str, pretrained: bool) -> tuple[nn.Module, InputSpec]:
    """``timm.create_model(name, pretrained=..., num_classes=0)`` offline; input spec from timm's pretrained cfg."""
    try:
        timm: Any = importlib.import_module("timm")
    except ImportError:
        raise DpbenchError(f"timm:{name} needs timm: pip install timm") from None
    hub_name = name.startswith(("hf-hub:", "hf_hub:"))
    if not hub_name and not timm.is_model(name):
        raise DpbenchError(f"unknown timm model {name!r}; {_suggest(name, list(timm.list_models()))}"
                           "see timm.list_models() (or use hf-hub:ORG/NAME)")
    try:
        with no_download(), seeded(0):
            model = timm.create_model(name, pretrained=pretrained, num_classes=0)
    except DpbenchError:
        raise
    except Exception as exc:
        if not pretrained:
            raise DpbenchError(f"timm:{name}:random could not be built: {type(exc).__name__}: {exc}") from None
        raise DpbenchError(
            f"pretrained weights for timm:{name} are not cached and dpbench never downloads "
            f"({type(exc).__name__}); cache them once on a machine with internet: python -c \"import timm; "
            f"timm.create_model('{name}', pretrained=True)\" (Hugging Face cache: $HF_HOME, torch cache: $TORCH_HOME), "
            f"or use timm:{name}:random for a random init") from None
    config = timm.data.resolve_data_config({}, model=model)
    spec = InputSpec(size=int(config["input_size"][-1]), mean=tuple(config["mean"]), std=tuple(config["std"]))
    return model, spec
