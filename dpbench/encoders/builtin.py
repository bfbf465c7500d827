"""The encoder spec schemes dpbench ships: ``random``, ``torchvision``, ``timm``, ``torchscript`` and ``python``.

Each is registered in the ``dpbench.encoders`` entry-point group (see :mod:`dpbench.encoders.specs`) exactly as a
third-party scheme would be: a function ``(spec, rest) -> (module, InputSpec)`` or ``-> Encoder``.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import sys
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dpbench.encoders.base import Encoder, InputSpec, one_line
from dpbench.encoders.libraries import build_timm, build_torchvision
from dpbench.encoders.random_net import RandomConvNet
from dpbench.errors import DpbenchError


def random_scheme(spec: str, rest: str | None) -> tuple[nn.Module, InputSpec]:
    try:
        seed = int(rest) if rest else 0
    except ValueError:
        raise DpbenchError(f"bad seed in {spec!r}: expected random or random:SEED with an integer SEED") from None
    if seed < 0:
        raise DpbenchError(f"bad seed in {spec!r}: SEED must be >= 0")
    return RandomConvNet(seed), InputSpec()


def _torchscript_file(path_text: str) -> tuple[nn.Module, InputSpec]:
    path = Path(path_text).expanduser()
    if not path.is_file():
        raise DpbenchError(f"torchscript file not found: {path}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # "torch.jit.load is deprecated"
            module: nn.Module = torch.jit.load(str(path), map_location="cpu")  # type: ignore[no-untyped-call]
    except Exception as exc:
        raise DpbenchError(f"{path} is not a loadable TorchScript file ({one_line(exc)}); save it with "
                           "torch.jit.save(torch.jit.script(model), path)") from None
    sidecar = path.with_name(path.name + ".json")
    if not sidecar.is_file():
        return module, InputSpec()
    try:
        data = json.loads(sidecar.read_text())
    except (OSError, ValueError) as exc:
        raise DpbenchError(f"input spec {sidecar} is not valid JSON ({one_line(exc)})") from None
    return module, InputSpec.from_dict(data, source=str(sidecar))


def _import(module_ref: str) -> Any:
    if module_ref.endswith(".py") or "/" in module_ref or "\\" in module_ref:
        path = Path(module_ref).expanduser().resolve()
        if not path.is_file():
            raise DpbenchError(f"python file not found: {path}")
        name = f"dpbench_user_{path.stem}_{hashlib.sha256(str(path).encode()).hexdigest()[:12]}"
        if name in sys.modules:
            return sys.modules[name]
        loader_spec = importlib.util.spec_from_file_location(name, path)
        if loader_spec is None or loader_spec.loader is None:
            raise DpbenchError(f"cannot import {path}: not a Python source file")
        module = importlib.util.module_from_spec(loader_spec)
        sys.modules[name] = module
        try:
            loader_spec.loader.exec_module(module)
        except Exception as exc:
            del sys.modules[name]
            raise DpbenchError(f"importing {path} failed: {one_line(exc)}") from None
        return module
    try:
        return importlib.import_module(module_ref)
    except ModuleNotFoundError as exc:
        if exc.name and (module_ref == exc.name or module_ref.startswith(exc.name + ".")):
            raise DpbenchError(f"python module {module_ref!r} not found; install it, add its folder to PYTHONPATH, or "
                               "give a file path (python:path/to/file.py:ATTR)") from None
        raise DpbenchError(f"importing {module_ref} failed: {one_line(exc)}") from None
    except Exception as exc:
        raise DpbenchError(f"importing {module_ref} failed: {one_line(exc)}") from None


def python_scheme(spec: str, rest: str | None) -> tuple[nn.Module, InputSpec]:
    module_ref, _, attr = (rest or "").rpartition(":")
    if not module_ref or not attr:
        raise DpbenchError(f"bad spec {spec!r}: expected python:MODULE:ATTR, e.g. python:mypkg.encoders:build or "
                           "python:path/to/file.py:build")
    target: Any = _import(module_ref)
    for part in attr.split("."):
        if not hasattr(target, part):
            public = sorted(n for n in dir(target) if not n.startswith("_"))[:20]
            raise DpbenchError(f"{module_ref} has no attribute {attr!r}; it defines: {', '.join(public) or 'nothing'}")
        target = getattr(target, part)
    if not isinstance(target, nn.Module | Encoder):
        if not callable(target):
            raise DpbenchError(f"{module_ref}:{attr} is a {type(target).__name__}, not callable; it must be a "
                               "function returning an Encoder, an nn.Module or a (module, InputSpec) tuple")
        try:
            target = target()
        except Exception as exc:
            raise DpbenchError(f"{module_ref}:{attr}() raised {one_line(exc)}") from None
    if isinstance(target, Encoder):
        return target.module, target.input
    if isinstance(target, nn.Module):
        return target, InputSpec()
    if (isinstance(target, tuple) and len(target) == 2 and isinstance(target[0], nn.Module)
            and isinstance(target[1], InputSpec)):
        return target[0], target[1]
    raise DpbenchError(f"{module_ref}:{attr}() returned {type(target).__name__}; it must return an Encoder, an "
                       "nn.Module or a (module, InputSpec) tuple")


def torchvision_scheme(spec: str, rest: str | None) -> tuple[nn.Module, InputSpec]:
    name, _, weights = (rest or "").partition(":")
    if not name:
        raise DpbenchError(f"bad spec {spec!r}: expected torchvision:NAME[:WEIGHTS], e.g. torchvision:resnet50")
    return build_torchvision(name, weights or None)


def timm_scheme(spec: str, rest: str | None) -> tuple[nn.Module, InputSpec]:
    name = rest or ""
    pretrained = not name.endswith(":random")
    name = name.removesuffix(":random")
    if not name:
        raise DpbenchError(f"bad spec {spec!r}: expected timm:NAME or timm:NAME:random")
    return build_timm(name, pretrained)


def torchscript_scheme(spec: str, rest: str | None) -> tuple[nn.Module, InputSpec]:
    if not rest:
        raise DpbenchError(f"bad spec {spec!r}: expected torchscript:PATH")
    return _torchscript_file(rest)
