"""The paper's comparison baselines (§IV-F): ImageNet transfer, training from scratch and joint training.

* ``imagenet``: the ImageNet-pre-trained torchvision backbone (``torchvision:ARCH:IMAGENET1K_V1``, cached weights
  only) evaluated with the linear-probe or fine-tuning protocol; a thin layer over :func:`evaluate`.
* ``scratch``: the fine-tuning protocol from a random initialisation (``torchvision:ARCH:none``).
* ``joint`` (:mod:`dpbench_baselines.joint`): multi-task training on the pool *including* the target tasks.

Each writes ``OUT/results.json`` (:class:`dpbench.results.Results`) and ``OUT/report.html``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from dpbench.encoders import Encoder, load_encoder
from dpbench.errors import DpbenchError
from dpbench.evaluation.report import write_report
from dpbench.evaluation.run import EvalConfig, evaluate
from dpbench.results import Results

Progress = Callable[[str, str], None]


def _resized(encoder: Encoder, size: int) -> Encoder:
    if size < 0:
        raise DpbenchError(f"size must be >= 0 (0: the encoder's own), got {size}")
    if not size:
        return encoder
    return dataclasses.replace(encoder, input=dataclasses.replace(encoder.input, size=size))


def _finish(results: Results, out: Path) -> Results:
    write_report(results, out / "report.html")
    return results


def imagenet_baseline(data: Path, out: Path, config: EvalConfig, *, arch: str = "resnet50",
                      tasks: list[str] | None = None, size: int = 0, cache: Path | None = None,
                      progress: Progress = lambda task, event: None) -> Results:
    """ImageNet transfer: ``torchvision:ARCH:IMAGENET1K_V1`` under ``config.protocol``; method
    ``imagenet-ARCH-PROTOCOL``. Uncached weights raise the loader's error (dpbench never downloads)."""
    encoder = _resized(load_encoder(f"torchvision:{arch}:IMAGENET1K_V1"), size)
    results = evaluate(encoder, Path(data), tasks, config, Path(out), name=f"imagenet-{arch}-{config.protocol}",
                       cache=cache, progress=progress)
    return _finish(results, Path(out))


def scratch_baseline(data: Path, out: Path, config: EvalConfig, *, arch: str = "resnet50",
                     tasks: list[str] | None = None, size: int = 0,
                     progress: Progress = lambda task, event: None) -> Results:
    """Training from scratch: the fine-tuning protocol from ``torchvision:ARCH:none``; method ``scratch-ARCH``."""
    if config.protocol != "finetune":
        config = dataclasses.replace(config, protocol="finetune")
    encoder = _resized(load_encoder(f"torchvision:{arch}:none"), size)
    results = evaluate(encoder, Path(data), tasks, config, Path(out), name=f"scratch-{arch}", progress=progress)
    return _finish(results, Path(out))
