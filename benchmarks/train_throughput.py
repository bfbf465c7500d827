"""Multi-task pre-training throughput from shards against the same model on device tensors, same run.

Builds a realistic SYNTHETIC pool on the machine where it runs (the paper's 22 tasks at their patch sizes, ``--per-
task`` images each; crops whose size the paper leaves open are 224 px), then times ``dpbench_baselines.pretrain``
(the real loop: shard streaming, decoding, random square crops and flips to 224 px, bf16 + channels_last on CUDA)
against the ceiling: the same MultiTaskNet trained on random tensors already on the device (forward, Eq. 1,
backward, head rescaling, SGD step). Also reported: the input pipeline alone (``loader_img_s``: draws, decoding and
augmentation in the loader workers, no model) and the main process's CPU time per image in it
(``main_process_us_per_img``), which say whether the host or the device sets the pace. Goal on a GPU: shards ≥ 95 %
of the ceiling (ceilings measured once on an H100 at batch 64: ResNet50 3,342 img/s, DenseNet121 1,521 img/s).
Prints one JSON line per architecture.

    python benchmarks/train_throughput.py [--arch resnet50 densenet121] [--per-task 2000] [--workers 14]
        [--iterations 300] [--warmup 50] [--batch 64] [--device auto] [--data DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
from dpbench_baselines.loss import make_optimizer, task_counts
from dpbench_baselines.stream import ResumableStream, batch_loader
from dpbench_baselines.train import PretrainConfig, build_model, pretrain, resolve_tasks, train_step
from PIL import Image

from dpbench import __version__
from dpbench.convert.base import encode_png, seeded_rng
from dpbench.encoders import InputSpec
from dpbench.evaluation.features import resolve_device
from dpbench.io import atomic_write_json, sha256_file
from dpbench.pool.manifest import MANIFEST, Manifest, ShardEntry, SplitEntry, TaskEntry, shard_pattern
from dpbench.pool.write import encode_sample, write_shards
from dpbench.synthetic.pool import SyntheticSource
from dpbench.tasks.registry import get_pool, get_task

DEFAULT_PX = 224  # crops of annotated objects (private tasks): the paper gives no fixed size
SHARD = 500


def _write_task(root: Path, paper_name: str, per_task: int) -> tuple[TaskEntry, list[ShardEntry]]:
    """Shards of one benchmark task: synthetic tiles upscaled to the paper's patch size, with pixel noise."""
    task = get_task(f"synthetic-{paper_name}")
    source = SyntheticSource(task)
    px = get_task(paper_name).patch_px or DEFAULT_PX
    plan = source.plan
    keys = [f"b{i:06d}" for i in range(per_task)]

    def sample(key: str) -> dict[str, object]:
        i = int(key[1:])
        base = i % len(plan.keys)
        tile = Image.fromarray(source.render(base)).resize((px, px), Image.Resampling.BICUBIC)
        noise = seeded_rng("bench", task.name, key).integers(-5, 6, size=(px, px, 3))
        pixels = np.clip(np.asarray(tile, dtype=np.int16) + noise, 0, 255).astype(np.uint8)
        record = {"task": task.name, "key": key, "label": plan.labels[base], "synthetic": True}
        return encode_sample(key, encode_png(pixels), "png", plan.labels[base], record)

    chunks = [keys[i:i + SHARD] for i in range(0, len(keys), SHARD)]
    (root / task.name).mkdir(parents=True, exist_ok=True)
    write_shards(root, task.name, "train", chunks, list(range(len(chunks))), sample)
    pattern = shard_pattern(task.name, "train")
    entries = [ShardEntry(path=pattern % i, task=task.name, split="train", sha256=sha256_file(root / (pattern % i)),
                          count=len(c), bytes=(root / (pattern % i)).stat().st_size)
               for i, c in enumerate(chunks)]
    entry = TaskEntry(name=task.name, classes=list(task.class_names), metric=task.metric, split_unit="image",
                      split_sha256="0" * 64, splits={"train": SplitEntry(images=per_task, groups=per_task)},
                      missing_classes={}, licence=task.licence, redistributable=False, synthetic=True)
    return entry, entries


def make_pool(root: Path, per_task: int, workers: int) -> Path:
    """Write the benchmark pool (train split only) and its manifest under ``root``."""
    names = list(get_pool("mormont2020").tasks)
    with ProcessPoolExecutor(max(1, workers)) as pool:
        done = list(pool.map(_write_task, [root] * len(names), names, [per_task] * len(names)))
    manifest = Manifest(pool="synthetic-bench", pool_version="bench", synthetic=True, dpbench_version=__version__,
                        tasks=[e for e, _ in done], shards=[s for _, shards in done for s in shards])
    atomic_write_json(root / MANIFEST, manifest.model_dump(mode="json"))
    return root


def ceiling(arch: str, data: Path, batch: int, size: int, steps: int, device: torch.device) -> float:
    """Images/s of the training step alone on random tensors already on the device: the MultiTaskNet that
    ``pretrain`` builds on ``data`` (same backbone, same heads), without the data pipeline."""
    config = PretrainConfig(arch=arch, weights="none", input_size=size)
    model, _ = build_model(config, data, resolve_tasks(config, data))
    n_tasks = len(model.tasks)
    model.to(device).train()
    cuda = device.type == "cuda"
    if cuda:
        model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(model, 1e-4, 5.0)
    images = torch.randn(batch, 3, size, size, device=device)
    if cuda:
        images = images.contiguous(memory_format=torch.channels_last)
    generator = torch.Generator().manual_seed(0)

    def step() -> None:
        index = torch.randint(n_tasks, (batch,), generator=generator)
        labels = torch.zeros(batch, dtype=torch.long)
        counts = task_counts(index, n_tasks)
        train_step(model, model, optimizer, images, index.to(device, non_blocking=True),
                   labels.to(device, non_blocking=True), counts, device)

    for _ in range(5):
        step()
    if cuda:
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    if cuda:
        torch.cuda.synchronize()
    return steps * batch / (time.perf_counter() - started)


def from_shards(arch: str, data: Path, batch: int, size: int, iterations: int, warmup: int, workers: int,
                device: str, out: Path) -> float:
    """Images/s of ``dpbench_baselines.pretrain`` on the pool, timed after ``warmup`` iterations."""
    marks: dict[int, float] = {}

    def tick(done: int, _total: int, _record: dict[str, object]) -> None:
        if done in (warmup, iterations):
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            marks[done] = time.perf_counter()

    config = PretrainConfig(arch=arch, weights="none", input_size=size, batch_size=batch, iterations=iterations,
                            bn_adapt_batches=0,
                            checkpoint_every=iterations, log_every=iterations, device=device, workers=workers)
    pretrain(config, data, out, progress=tick)
    return (iterations - warmup) * batch / (marks[iterations] - marks[warmup])


def loader_rate(data: Path, batch: int, size: int, batches: int, workers: int, pin: bool) -> tuple[float, float]:
    """Images/s of the training input pipeline alone (stream draws, decoding, augmentation; no model), and the
    main process's CPU time per image in it (µs): the host work that a training step must also fit beside."""
    tasks = resolve_tasks(PretrainConfig(), data)  # every built task, as pretrain takes them
    transform = InputSpec(size=size).transform(train=True, as_uint8=True)
    loader = iter(batch_loader(ResumableStream(data, tasks), batch, transform, 0, workers, pin))
    for _ in range(max(1, batches // 10)):  # workers start and fill their queues
        next(loader)
    started, cpu = time.perf_counter(), time.process_time()
    for _ in range(batches):
        next(loader)
    images = batches * batch
    return images / (time.perf_counter() - started), (time.process_time() - cpu) / images * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", nargs="+", default=["resnet50", "densenet121"])
    parser.add_argument("--per-task", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=min(14, os.cpu_count() or 1))
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--data", type=Path, help="an existing benchmark pool (default: build one in a temp dir)")
    args = parser.parse_args()
    device = resolve_device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data
        if data is None or not (data / MANIFEST).is_file():
            data = data or Path(tmp) / "pool"
            started = time.perf_counter()
            make_pool(data, args.per_task, args.workers)
            print(f"built the SYNTHETIC benchmark pool ({len(get_pool('mormont2020').tasks) * args.per_task} "
                  "images) in "
                  f"{time.perf_counter() - started:.0f} s", file=sys.stderr)
        for arch in args.arch:
            top = ceiling(arch, data, args.batch, args.size, max(10, args.iterations // 3), device)
            shards = from_shards(arch, data, args.batch, args.size, args.iterations, args.warmup, args.workers,
                                 str(device), Path(tmp) / f"run-{arch}")
            feed, main_us = loader_rate(data, args.batch, args.size, args.iterations - args.warmup,
                                        args.workers, device.type == "cuda")
            print(json.dumps({
                "arch": arch, "batch": args.batch, "size": args.size, "device": str(device),
                "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.machine(),
                "workers": args.workers, "iterations": args.iterations, "ceiling_img_s": round(top, 1),
                "shards_img_s": round(shards, 1), "loader_img_s": round(feed, 1),
                "main_process_us_per_img": round(main_us, 1), "ratio": round(shards / top, 3),
                "goal": 0.95,
                "torch": torch.__version__, "synthetic_data": True}), flush=True)


if __name__ == "__main__":
    main()
