"""Encoders: load any image encoder from a spec string, fingerprint it, check its contract, save checkpoints."""

from dpbench.encoders.base import IMAGENET_MEAN, IMAGENET_STD, Encoder, InputSpec
from dpbench.encoders.check import Check, check_encoder, synthetic_batch
from dpbench.encoders.checkpoint import load_encoder_checkpoint, read_encoder_checkpoint, save_encoder_checkpoint
from dpbench.encoders.presets import Preset, get_preset
from dpbench.encoders.specs import SPEC_FORMS, load_encoder

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "SPEC_FORMS",
    "Check",
    "Encoder",
    "InputSpec",
    "Preset",
    "check_encoder",
    "get_preset",
    "load_encoder",
    "load_encoder_checkpoint",
    "read_encoder_checkpoint",
    "save_encoder_checkpoint",
    "synthetic_batch",
]
