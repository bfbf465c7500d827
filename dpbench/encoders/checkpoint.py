"""dpbench's own encoder checkpoint: an architecture spec, its weights and its input spec in one ``torch.save`` file.

Format (a dict, loadable with ``torch.load(path, weights_only=True)``)::

    {"format": "dpbench-encoder", "version": 1,
     "arch": "torchvision:resnet50",   # any weight-free spec load_encoder can build (random[:SEED],
                                       # torchvision:NAME[:none], timm:NAME:random, python:MODULE:ATTR)
     "state_dict": {...},              # loaded with load_state_dict(strict=True) into the built arch
     "input": {"size": 224, "mean": [...], "std": [...], "um_per_px": 0.5 or None},
     "extra": {...}}                   # free metadata: str/int/float/bool/None, lists, dicts, tensors
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dpbench.encoders.base import Encoder, InputSpec, first_line
from dpbench.encoders.specs import build_module, finish_encoder, schemes
from dpbench.errors import DpbenchError
from dpbench.io import atomic_open

FORMAT = "dpbench-encoder"
VERSION = 1
_PLAIN = (str, int, float, bool, type(None), torch.Tensor)


def _check_arch(arch: str) -> None:
    scheme, _, rest = arch.strip().partition(":")
    bad = {
        "checkpoint": "a checkpoint cannot name another checkpoint",
        "torchscript": "a TorchScript file carries its own weights",
    }.get(scheme)
    if scheme == "torchvision" and rest.partition(":")[2].lower() not in ("", "none"):
        bad = f"weights come from the state_dict: use torchvision:{rest.partition(':')[0]}"
    if scheme == "timm" and not rest.endswith(":random"):
        bad = f"weights come from the state_dict: use timm:{rest}:random"
    if scheme not in schemes():
        bad = "use random[:SEED], torchvision:NAME, timm:NAME:random, python:MODULE:ATTR or a registered scheme"
    if bad:
        raise DpbenchError(f"checkpoint arch {arch!r} is not a weight-free encoder spec; {bad}")


def _check_plain(value: Any, where: str) -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str | int):
                raise DpbenchError(f"checkpoint {where} has a non-str key {key!r}; use plain str keys")
            _check_plain(item, f"{where}.{key}")
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _check_plain(item, f"{where}[{i}]")
    elif not isinstance(value, _PLAIN):
        raise DpbenchError(f"checkpoint {where} is a {type(value).__name__}; extra metadata must be plain "
                           "str/int/float/bool/None, lists, dicts or tensors")


def _build(arch: str, state_dict: Mapping[str, Any], source: str) -> nn.Module:
    module, _ = build_module(arch)
    try:
        module.load_state_dict(state_dict, strict=True)
    except RuntimeError as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()][:3]
        raise DpbenchError(f"{source}: weights do not fit arch {arch!r}: {' '.join(lines)[:400]}") from None
    return module


def save_encoder_checkpoint(encoder_module_state: Mapping[str, torch.Tensor] | nn.Module, arch: str,
                            input: InputSpec, path: Path, extra: dict[str, Any] | None = None, *,
                            verify: bool = True) -> Path:
    """Write a dpbench encoder checkpoint atomically (:func:`dpbench.io.atomic_open`); returns ``path``.

    ``encoder_module_state`` is the encoder's ``state_dict()`` (or the module itself). With ``verify`` the arch is
    built and the weights are loaded into it first, so a checkpoint that would not load is never written.
    """
    _check_arch(arch)
    state = encoder_module_state.state_dict() if isinstance(encoder_module_state, nn.Module) else encoder_module_state
    state = {str(k): v.detach().to("cpu") if isinstance(v, torch.Tensor) else v for k, v in state.items()}
    _check_plain(state, "state_dict")
    extra = dict(extra or {})
    _check_plain(extra, "extra")
    if verify:
        _build(arch, state, "save_encoder_checkpoint")
    payload = {"format": FORMAT, "version": VERSION, "arch": arch.strip(), "state_dict": state,
               "input": input.to_dict(), "extra": extra}
    path = Path(path)
    with atomic_open(path) as handle:
        torch.save(payload, handle)
    return path


def read_encoder_checkpoint(path: Path) -> dict[str, Any]:
    """The validated checkpoint dict (format, version, arch, state_dict, input, extra); bad file → DpbenchError."""
    path = Path(path)
    if not path.is_file():
        raise DpbenchError(f"encoder checkpoint not found: {path}")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise DpbenchError(f"{path} is not a readable dpbench encoder checkpoint ({first_line(exc)[:200]}); "
                           "write one with dpbench.encoders.save_encoder_checkpoint") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise DpbenchError(f"{path} is not a dpbench encoder checkpoint (no format={FORMAT!r}); write one with "
                           "dpbench.encoders.save_encoder_checkpoint, or load a TorchScript file with torchscript:PATH")
    if data.get("version") != VERSION:
        raise DpbenchError(f"{path} is a version {data.get('version')!r} encoder checkpoint; this dpbench reads "
                           f"version {VERSION}: upgrade dpbench")
    missing = [k for k in ("arch", "state_dict", "input", "extra") if k not in data]
    if missing or not isinstance(data["arch"], str) or not isinstance(data["state_dict"], Mapping):
        raise DpbenchError(f"{path} is a damaged dpbench encoder checkpoint (missing or bad: "
                           f"{', '.join(missing) or 'arch/state_dict'}); re-export it")
    return data


def load_encoder_checkpoint(path: Path, spec: str | None = None) -> Encoder:
    """Build the checkpoint's arch (random init), load its weights (strict) and its input spec."""
    data = read_encoder_checkpoint(path)
    source = str(path)
    try:
        _check_arch(data["arch"])
    except DpbenchError as exc:
        raise DpbenchError(f"{source}: {exc}") from None
    input = InputSpec.from_dict(data["input"], source=f"{source} input")
    module = _build(data["arch"], data["state_dict"], source)
    return finish_encoder(spec or f"checkpoint:{path}", module, input)


def checkpoint_scheme(spec: str, rest: str | None) -> Encoder:
    """The ``checkpoint:PATH`` encoder spec (registered in the ``dpbench.encoders`` entry-point group)."""
    if not rest:
        raise DpbenchError(f"bad spec {spec!r}: expected checkpoint:PATH")
    return load_encoder_checkpoint(Path(rest).expanduser(), spec=spec)
