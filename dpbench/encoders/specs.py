"""``load_encoder(spec)``: one string names any encoder dpbench can evaluate.

A spec is ``SCHEME:REST``, or the bare name of a zoo preset (``uni2``, the same as ``preset:uni2``; see
:mod:`dpbench.encoders.zoo`). Schemes are registered in the ``dpbench.encoders`` entry-point group, dpbench's own
(``random``, ``torchvision``, ``timm``, ``torchscript``, ``python``, ``checkpoint``) as much as any third-party
package's, e.g. in its ``pyproject.toml``::

    [project.entry-points."dpbench.encoders"]
    mylab = "mylab_encoders:scheme"     # def scheme(spec: str, rest: str | None) -> Encoder | (nn.Module, InputSpec)

A scheme returning ``(module, InputSpec)`` gets dpbench's eval-mode and output-shape check (:func:`finish_encoder`).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from importlib.metadata import entry_points
from typing import Any

import torch
from torch import nn

from dpbench.encoders.base import Encoder, InputSpec, module_device, one_line
from dpbench.errors import DpbenchError

GROUP = "dpbench.encoders"
SPEC_FORMS = (
    "random[:SEED]",
    "torchvision:NAME[:WEIGHTS]  (WEIGHTS: none, DEFAULT, IMAGENET1K_V1, ...; cached weights only)",
    "timm:NAME[:random]  (needs timm; cached weights only)",
    "torchscript:PATH  (optional sidecar PATH.json with size/mean/std/um_per_px)",
    "python:MODULE:ATTR  (MODULE dotted or path/to/file.py; ATTR() returns an Encoder, an nn.Module or "
    "(module, InputSpec))",
    "checkpoint:PATH  (a dpbench encoder checkpoint)",
    "NAME[:random] or preset:NAME[:random]  (a zoo preset, see dpbench encoders list; weights fetched into the "
    "Hugging Face or torch cache unless offline; :random = the architecture only)",
)
Scheme = Callable[[str, "str | None"], "Encoder | tuple[nn.Module, InputSpec]"]


@cache
def schemes() -> dict[str, Any]:
    """Scheme name → its (not yet loaded) entry point, from every installed distribution."""
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def scheme(name: str, spec: str) -> Scheme:
    """The loaded scheme function called ``name`` (one clear error for an unknown or broken one)."""
    found = schemes().get(name)
    if found is None:
        raise _unknown(spec)
    try:
        loaded: Scheme = found.load()
    except Exception as exc:
        raise DpbenchError(f"encoder scheme {name!r} ({found.value}) failed to load: {one_line(exc)}; "
                           "reinstall the package that provides it") from None
    return loaded


def finish_encoder(spec: str, module: nn.Module, input: InputSpec) -> Encoder:
    """Put ``module`` in eval mode and measure D with a dummy (2, 3, size, size) forward; bad output → DpbenchError."""
    module.eval()
    generator = torch.Generator().manual_seed(0)
    dummy = torch.rand(2, 3, input.size, input.size, generator=generator).to(module_device(module))
    try:
        with torch.no_grad():
            out = module(dummy)
    except Exception as exc:
        raise DpbenchError(f"encoder {spec} failed on a dummy (2, 3, {input.size}, {input.size}) batch: "
                           f"{one_line(exc)}") from None
    if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != 2 or out.shape[1] < 1:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise DpbenchError(f"encoder {spec} returned {got} for a batch of 2 images; an encoder must return a (B, D) "
                           "feature tensor (flatten or pool its output)")
    return Encoder(spec=spec, module=module, input=input, dim=int(out.shape[1]))


def _unknown(spec: str) -> DpbenchError:
    from dpbench.encoders.presets import close_presets

    extra = sorted(set(schemes()) - {f.split(":")[0].split("[")[0] for f in SPEC_FORMS} - {"preset"})
    plugins = f"; plug-in schemes: {', '.join(extra)}" if extra else ""
    close = close_presets(spec) if ":" not in spec else []
    hint = f"did you mean {', '.join(close)}? " if close else ""
    return DpbenchError(f"unknown encoder spec {spec!r}; {hint}accepted forms: " + "; ".join(SPEC_FORMS) + plugins)


def _split(spec: str) -> tuple[str, str | None]:
    name, colon, rest = spec.strip().partition(":")
    return name, (rest if colon else None)


def resolve(spec: str) -> tuple[Scheme, str | None]:
    """The scheme function for ``spec`` and the REST it gets; a bare preset name goes to the preset scheme."""
    name, rest = _split(spec)
    if name in schemes():
        return scheme(name, spec), rest
    from dpbench.encoders.presets import find_preset
    from dpbench.encoders.zoo import preset_scheme

    if name == "preset" and rest is not None:  # dpbench's entry points not (re)installed yet
        return preset_scheme, rest
    if rest in (None, "random") and find_preset(name) is not None:
        return preset_scheme, name if rest is None else f"{name}:random"
    raise _unknown(spec)


def build_module(spec: str) -> tuple[nn.Module, InputSpec]:
    """The (module, input spec) that ``spec`` names, before the eval/dummy-forward step (a scheme that returns a
    finished :class:`Encoder`, such as ``checkpoint:``, is refused: it carries its own weights)."""
    run, rest = resolve(spec)
    built = run(spec.strip(), rest)
    if isinstance(built, Encoder):
        raise DpbenchError(f"{spec!r} names a finished encoder, not an architecture; use a weight-free spec")
    return built


def load_encoder(spec: str, *, offline: bool | None = None) -> Encoder:
    """Load the encoder ``spec`` names (see :data:`SPEC_FORMS`), on CPU, in eval mode, with ``dim`` measured.

    ``offline``: True forbids any network access while loading (presets then need their weights cached); otherwise
    ``HF_HUB_OFFLINE`` decides.
    """
    from dpbench.encoders.hub import network

    if not isinstance(spec, str) or not spec.strip():
        raise _unknown(str(spec))
    spec = spec.strip()
    run, rest = resolve(spec)
    with network(offline):
        built = run(spec, rest)
    if isinstance(built, Encoder):
        return built
    module, input = built
    return finish_encoder(spec, module, input)
