"""Contract checks for an encoder: shape, dtype, finiteness, determinism, batch independence, throughput."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from dpbench.encoders.base import Encoder, InputSpec, module_device, one_line, resolve_device
from dpbench.errors import DpbenchError, EncoderCheckFailed, out_of_memory

#: Features may differ by at most TOLERANCE × max(1, max |feature|) between runs / batch compositions.
TOLERANCE = {"cpu": 1e-4, "cuda": 1e-3}  # cuda: TF32 and per-batch-size kernel choices
THROUGHPUT_BATCHES = 3


@dataclass
class Check:
    """One contract check: its name, whether it passed and a one-line detail."""

    name: str
    passed: bool
    detail: str


class _Failed(EncoderCheckFailed):
    """A check that failed for a reason other than an exception from the encoder."""


def synthetic_batch(input: InputSpec, batch: int, seed: int = 0) -> torch.Tensor:
    """``batch`` seeded uniform-noise RGB images, normalised with the encoder's mean/std: (batch, 3, size, size)."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(batch, 3, input.size, input.size, generator=generator)
    mean = torch.tensor(input.mean).view(1, 3, 1, 1)
    std = torch.tensor(input.std).view(1, 3, 1, 1)
    return (images - mean) / std


def _compare(a: torch.Tensor, b: torch.Tensor, tol: float) -> tuple[bool, float, str]:
    """(agree, max |a - b|, detail) with the tolerance scaled by max(1, max |a|)."""
    if a.shape != b.shape:
        return False, float("inf"), f"shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}"
    a64, b64 = a.detach().double().cpu(), b.detach().double().cpu()
    if not a64.numel():
        return True, 0.0, "no values"
    same = (a64 == b64) | (a64.isnan() & b64.isnan())  # equal infinities and NaNs in the same places agree
    if (~same & ~(a64.isfinite() & b64.isfinite())).any():
        return False, float("inf"), "NaN/Inf in different places"
    finite = a64[a64.isfinite()]
    scale = max(1.0, float(finite.abs().max())) if finite.numel() else 1.0
    diff = float(torch.where(same, 0.0, (a64 - b64).abs()).max())
    return diff <= tol * scale, diff, f"max |diff| {diff:.2e} (allowed {tol * scale:.1e})"


def _run(name: str, body: Callable[[], str]) -> Check:
    try:
        return Check(name, True, body())
    except _Failed as exc:
        return Check(name, False, str(exc))
    except Exception as exc:  # the encoder raised: report it, never a traceback
        return Check(name, False, one_line(exc) + ("; lower the batch size" if out_of_memory(exc) else ""))


def check_encoder(encoder: Encoder, device: str = "cpu", batch: int = 8, eval_batch: int | None = None) -> list[Check]:
    """Run the contract checks on ``device`` with ``batch`` synthetic images; the module is moved back afterwards.

    With ``eval_batch``, a last check ("eval batch size") encodes one batch of that many images, the batch size
    ``dpbench eval`` will use, so that running out of memory shows up here rather than mid-evaluation.
    """
    if batch < 1 or (eval_batch is not None and eval_batch < 1):
        raise DpbenchError(f"batch and eval_batch must be >= 1, got {batch} and {eval_batch}")
    target = resolve_device(device)
    module = encoder.module
    original = module_device(module)  # CPU for a module without tensors, where moving back changes nothing
    try:
        module.to(target)
    except Exception as exc:
        raise DpbenchError(f"cannot move encoder {encoder.spec} to {device}: {one_line(exc)}") from None
    try:
        return _checks(encoder, target, batch, eval_batch)
    finally:
        module.to(original)


def _checks(encoder: Encoder, device: torch.device, batch: int, eval_batch: int | None) -> list[Check]:
    tol = TOLERANCE.get(device.type, TOLERANCE["cuda"])
    images = synthetic_batch(encoder.input, batch).to(device)
    training = any(m.training for m in encoder.module.modules())
    hint = "; the module is in training mode: call .eval()" if training else ""
    memo: dict[str, torch.Tensor] = {}

    def forward(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            out = encoder.module(x)
        if not isinstance(out, torch.Tensor):
            raise _Failed(f"returned {type(out).__name__}, expected a (B, D) tensor")
        return out

    def first() -> torch.Tensor:
        if "first" not in memo:
            memo["first"] = forward(images)
        return memo["first"]

    def good_shape() -> torch.Tensor:
        out = first()
        if out.ndim != 2 or out.shape[0] != batch:
            raise _Failed(f"output shape {tuple(out.shape)} for a batch of {batch}; expected ({batch}, D)")
        return out

    def shape() -> str:
        out = good_shape()
        if out.shape[1] != encoder.dim:
            raise _Failed(f"output shape {tuple(out.shape)}, but encoder.dim is {encoder.dim}")
        return f"({batch}, {encoder.dim}) for a batch of {batch}"

    def dtype() -> str:
        out = first()
        if not out.dtype.is_floating_point:
            raise _Failed(f"dtype {out.dtype} is not floating point")
        return str(out.dtype).removeprefix("torch.")

    def finite() -> str:
        out = first()
        if not out.dtype.is_floating_point:
            return "integer output (always finite)"
        nan, inf = int(torch.isnan(out).sum()), int(torch.isinf(out).sum())
        if nan or inf:
            raise _Failed(f"{nan} NaN and {inf} Inf of {out.numel()} values")
        return f"all {out.numel()} values finite"

    def deterministic() -> str:
        ok, _, detail = _compare(first(), forward(images), tol)
        if not ok:
            raise _Failed(f"two forwards of the same batch differ: {detail}{hint}")
        return f"two forwards agree: {detail}"

    def independent() -> str:
        full = good_shape()
        k = min(4, batch)
        if not all(c.passed for c in checks if c.name == "deterministic"):
            raise _Failed("not testable: the outputs are not deterministic")
        parts = {f"batch of {k}": forward(images[:k])} if k < batch else {}
        parts["one at a time"] = torch.cat([forward(images[i:i + 1]) for i in range(k)])
        worst = (-1.0, "")
        for label, out in parts.items():
            ok, diff, detail = _compare(full[:k], out, tol)
            if not ok:
                raise _Failed(f"images 0..{k - 1} in a batch of {batch} vs {label}: {detail}{hint}")
            worst = max(worst, (diff, detail))
        return f"images 0..{k - 1} in a batch of {batch} vs {' vs '.join(parts)}: {worst[1]}"

    def throughput() -> str:
        forward(images)  # warm-up
        cuda = device.type == "cuda"
        if cuda:
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        for _ in range(THROUGHPUT_BATCHES):
            forward(images)
        if cuda:
            torch.cuda.synchronize(device)
        rate = THROUGHPUT_BATCHES * batch / max(time.perf_counter() - start, 1e-9)
        return f"{rate:,.1f} images/s (batch {batch}, {encoder.input.size} px, {device})"

    def fits(size: int) -> str:
        try:
            out = forward(synthetic_batch(encoder.input, size, seed=1).to(device))
        except Exception as exc:
            if not out_of_memory(exc):
                raise
            raise _Failed(f"out of memory on a batch of {size} ({device}): lower --batch-size for dpbench eval "
                          f"(e.g. --batch-size {max(1, size // 2)}) and rerun this check with it") from None
        finally:
            if device.type == "cuda":
                torch.cuda.empty_cache()
        if out.ndim != 2 or out.shape[0] != size:
            raise _Failed(f"output shape {tuple(out.shape)} for a batch of {size}; expected ({size}, D)")
        return f"({size}, {out.shape[1]}) for a batch of {size}, dpbench eval's --batch-size {size}"

    steps: list[tuple[str, Callable[[], str]]] = [
        ("shape", shape), ("dtype", dtype), ("finite", finite), ("deterministic", deterministic),
        ("batch independence", independent), ("throughput", throughput)]
    if eval_batch is not None:
        steps.append(("eval batch size", lambda: fits(eval_batch)))
    checks: list[Check] = []
    for name, body in steps:
        checks.append(_run(name, body))
    return checks
