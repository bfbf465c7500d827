"""Encoders: load any image encoder from a spec string, fingerprint it, check its contract, save checkpoints.

Names are resolved lazily (PEP 562) so that the preset registry and the CLI can be imported without torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # `X as X`: re-exported names, for mypy and ruff
    from dpbench.encoders.base import IMAGENET_MEAN as IMAGENET_MEAN
    from dpbench.encoders.base import IMAGENET_STD as IMAGENET_STD
    from dpbench.encoders.base import Encoder as Encoder
    from dpbench.encoders.base import InputSpec as InputSpec
    from dpbench.encoders.check import Check as Check
    from dpbench.encoders.check import check_encoder as check_encoder
    from dpbench.encoders.check import synthetic_batch as synthetic_batch
    from dpbench.encoders.checkpoint import load_encoder_checkpoint as load_encoder_checkpoint
    from dpbench.encoders.checkpoint import read_encoder_checkpoint as read_encoder_checkpoint
    from dpbench.encoders.checkpoint import save_encoder_checkpoint as save_encoder_checkpoint
    from dpbench.encoders.presets import Preset as Preset
    from dpbench.encoders.presets import get_preset as get_preset
    from dpbench.encoders.specs import SPEC_FORMS as SPEC_FORMS
    from dpbench.encoders.specs import load_encoder as load_encoder

_HOME = {
    "IMAGENET_MEAN": "base", "IMAGENET_STD": "base", "Encoder": "base", "InputSpec": "base",
    "Check": "check", "check_encoder": "check", "synthetic_batch": "check",
    "load_encoder_checkpoint": "checkpoint", "read_encoder_checkpoint": "checkpoint",
    "save_encoder_checkpoint": "checkpoint",
    "Preset": "presets", "get_preset": "presets",
    "SPEC_FORMS": "specs", "load_encoder": "specs",
}

__all__ = sorted(_HOME)


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'dpbench.encoders' has no attribute {name!r}")
    return getattr(import_module(f"dpbench.encoders.{home}"), name)
