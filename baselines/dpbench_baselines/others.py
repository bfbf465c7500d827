"""The paper's comparison baselines (§IV-F): ImageNet transfer, training from scratch and joint training.

* ``imagenet``: the ImageNet-pre-trained torchvision backbone (``torchvision:ARCH:IMAGENET1K_V1``, cached weights
  only) evaluated with the linear-probe or fine-tuning protocol; a thin layer over :func:`evaluate`.
* ``scratch``: the fine-tuning protocol from a random initialisation drawn per seed.
* ``joint`` (:mod:`dpbench_baselines.joint`): multi-task training on the pool *including* the target tasks.

Each writes ``OUT/results.json`` (:class:`dpbench.results.Results`) and ``OUT/report.html``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from dpbench.encoders import Encoder, InputSpec, load_encoder
from dpbench.encoders.specs import finish_encoder
from dpbench.errors import DpbenchError
from dpbench.evaluation.report import write_report
from dpbench.evaluation.run import EvalConfig, evaluate
from dpbench.io import atomic_write_json
from dpbench.results import Results
from dpbench_baselines.model import authors_backbone, backbone_spec, build_backbone

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
    encoder = dataclasses.replace(encoder, module=authors_backbone(encoder.module, arch))
    results = evaluate(encoder, Path(data), tasks, config, Path(out), name=f"imagenet-{arch}-{config.protocol}",
                       cache=cache, progress=progress)
    return _finish(results, Path(out))


def scratch_baseline(data: Path, out: Path, config: EvalConfig, *, arch: str = "resnet50",
                     tasks: list[str] | None = None, size: int = 0,
                     progress: Progress = lambda task, event: None) -> Results:
    """Training from scratch: the fine-tuning protocol from a random initialisation; method ``scratch-ARCH``.

    Each seed draws its own initialisation (torchvision's init strategy under ``torch.manual_seed(seed)``, the
    authors' backbone for DenseNet121): seed s is fine-tuned from ``build_backbone(arch, "none", s)``, so the seeds'
    spread includes the initialisation's, as in the paper. Per-seed runs go to ``OUT/seed-S``.
    """
    if config.protocol != "finetune":
        config = dataclasses.replace(config, protocol="finetune")
    if size < 0:
        raise DpbenchError(f"size must be >= 0 (0: the encoder's own), got {size}")
    spec = InputSpec(size=size or 224)
    merged: Results | None = None
    scores = []
    for seed in config.seeds:
        module, arch_spec = build_backbone(arch, "none", seed)
        encoder = finish_encoder(f"{arch_spec} (init seed {seed})", module, spec)
        part = evaluate(encoder, Path(data), tasks, dataclasses.replace(config, seeds=(seed,)),
                        Path(out) / f"seed-{seed}", name=f"scratch-{arch}", progress=progress)
        scores += part.scores
        merged = merged or part
    assert merged is not None
    provenance = merged.provenance.model_copy(update={
        "encoder": f"{backbone_spec(arch)} with a random initialisation drawn per seed", "weights_sha256": None,
        "settings": {**merged.provenance.settings, "seeds": ",".join(map(str, config.seeds)), "init": "per seed"}})
    results = Results(method=f"scratch-{arch}", provenance=provenance, scores=scores, skipped=merged.skipped)
    atomic_write_json(Path(out) / "results.json", results.model_dump(mode="json"))
    return _finish(results, Path(out))
