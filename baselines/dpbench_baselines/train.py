"""Multi-task pre-training (§IV-B): a resumable, deterministic training loop that exports the backbone as an encoder.

Files in ``out``: ``checkpoint.pt`` (every ``checkpoint_every`` iterations and at the end, written atomically:
model, optimiser, data-stream position, RNG state, iteration), ``metrics.jsonl`` (one line every ``log_every``
iterations and at the last one), ``encoder.pt`` (the backbone, for ``dpbench eval --encoder checkpoint:...``).
A run killed and resumed (``resume=True``) ends bit-identical on CPU to an uninterrupted run with the same seed:
the model, optimiser and stream position come back from the checkpoint, the augmentation of each draw is seeded
by its draw number (see :mod:`dpbench_baselines.stream`), and the metric lines written after the checkpoint are dropped.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from dpbench.encoders import InputSpec, save_encoder_checkpoint
from dpbench.encoders.base import check_augmentation
from dpbench.errors import DpbenchError, RegistryError
from dpbench.evaluation.features import resolve_device
from dpbench.io import atomic_open, atomic_write_bytes
from dpbench.pool.built import BuiltPool, as_pool
from dpbench.tasks.registry import get_pool, get_task
from dpbench_baselines import distributed
from dpbench_baselines.bn_adapt import adapt_batch_norm, adaptable_layers
from dpbench_baselines.loss import make_optimizer, multitask_loss, rescale_head_grads, task_counts, warmup_optimizer
from dpbench_baselines.loto import linked_closure
from dpbench_baselines.model import MultiTaskNet, build_backbone, feature_dim
from dpbench_baselines.stream import ResumableStream, batch_loader

Phase = Literal["warmup", "full"]
Progress = Callable[[int, int, dict[str, Any]], None]  # (iteration done, total, metrics record or {})
OnCheckpoint = Callable[[int, MultiTaskNet], None]  # (iteration, model) after each checkpoint, main process only

CHECKPOINT, METRICS, ENCODER = "checkpoint.pt", "metrics.jsonl", "encoder.pt"
FORMAT, VERSION = "dpbench-pretrain", 2  # 2: per-process stream states (torchrun)
#: Settings that may change when resuming (they do not change what is computed, or only extend it).
RESUMABLE_CHANGES = frozenset({"iterations", "checkpoint_every", "log_every", "device", "workers"})
#: Settings added after runs were made, with the value those older checkpoints were trained with.
LEGACY_DEFAULTS: dict[str, Any] = {"augmentation": "resized-crop"}
#: Added to the seed for the batch-norm adaptation stream, so it does not replay the training draws.
BN_ADAPT_SALT = 1 << 20


class Diverged(DpbenchError):
    """The training loss became NaN or infinite (a LOTO sweep records such a run as a result, not a crash)."""


@dataclass(frozen=True)
class PretrainConfig:
    """Pre-training settings; defaults are the paper's (ResNet50 from ImageNet, γ 1e-4, τγ 5, batch 64, 50k it.)."""

    tasks: tuple[str, ...] = ()  # empty: the pool's tasks built in root (or every built task when pool is None)
    pool: str | None = None
    exclude: tuple[str, ...] = ()  # held out, with their linked tasks
    arch: str = "resnet50"  # tiny or a torchvision model
    weights: str = "imagenet"  # imagenet, none or a torchvision weights name
    input_size: int = 224
    lr: float = 1e-4  # γ
    tau: float = 5.0  # heads at γ·τγ
    momentum: float = 0.9
    weight_decay: float = 0.0
    batch_size: int = 64
    iterations: int = 50_000  # total, warm-up included
    warmup: bool = False
    warmup_iterations: int = 5_000
    warmup_lr: float = 1e-3  # γ_w
    augmentation: str = "paper"  # dpbench.encoders.base.AUGMENTATIONS: paper (§IV-F) or resized-crop
    bn_adapt_batches: int = 20  # 0: no batch-norm adaptation
    seed: int = 0
    buffer: int = 1000  # per-task shuffle buffer of the stream
    checkpoint_every: int = 1_000
    log_every: int = 10
    device: str = "auto"
    workers: int = 0  # loader processes decoding and augmenting

    def check(self) -> None:
        """Raise a DpbenchError naming the first bad setting."""
        positive = ("input_size", "batch_size", "iterations", "checkpoint_every", "log_every")
        for name in positive:
            if getattr(self, name) < 1:
                raise DpbenchError(f"{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        for name in ("lr", "tau", "momentum", "weight_decay", "warmup_lr", "bn_adapt_batches", "workers", "buffer"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise DpbenchError(f"{name.replace('_', '-')} must be a finite number >= 0, got {value}")
        check_augmentation(self.augmentation)
        if self.warmup and not 0 < self.warmup_iterations < self.iterations:
            raise DpbenchError(f"warm-up iterations ({self.warmup_iterations}) must be between 1 and the total "
                               f"iterations ({self.iterations}) minus one; lower --warmup-iterations")

    def record(self) -> dict[str, Any]:
        """Plain-data form, stored in checkpoints."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def resolve_tasks(config: PretrainConfig, pool: BuiltPool | Path) -> list[str]:
    """The training tasks: the chosen (or pool's, or built) tasks minus the excluded ones and their linked tasks."""
    pool = as_pool(pool)
    root = pool.root
    built = pool.task_names
    try:
        if config.tasks:
            chosen = [get_task(t).name for t in config.tasks]
            missing = [t for t in chosen if t not in built]
            if missing:
                raise DpbenchError(f"task(s) {', '.join(missing)} are not built in {root}; build them with "
                                   f"dpbench build --out {root} --tasks NAME")
        elif config.pool:
            chosen = [t for t in get_pool(config.pool).tasks if t in built]
            if not chosen:
                raise DpbenchError(f"no task of pool {config.pool} is built in {root}; build it with "
                                   f"dpbench build --pool {config.pool} --out {root}")
        else:
            chosen = built
        held = {name for t in config.exclude for name in linked_closure(get_task(t))}
    except RegistryError as exc:
        raise DpbenchError(str(exc).strip("'\"")) from None
    train = [t for t in chosen if t not in held]
    if not train:
        raise DpbenchError("no training task is left once the excluded (and linked) tasks are removed")
    return train


def _phase(config: PretrainConfig, iteration: int) -> Phase:
    return "warmup" if config.warmup and iteration < config.warmup_iterations else "full"


def _optimizer(model: MultiTaskNet, config: PretrainConfig, phase: Phase) -> torch.optim.SGD:
    """Enter ``phase``: freeze or unfreeze the backbone and build that phase's (fresh) optimiser."""
    if phase == "warmup":
        model.freeze_backbone()
        return warmup_optimizer(model, config.warmup_lr, config.momentum, config.weight_decay)
    model.unfreeze_backbone()
    return make_optimizer(model, config.lr, config.tau, config.momentum, config.weight_decay)


def _autocast(device: torch.device) -> contextlib.AbstractContextManager[Any]:
    return torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()


def _inputs(normalise: Callable[[torch.Tensor], torch.Tensor],
            device: torch.device) -> Callable[[torch.Tensor], torch.Tensor]:
    """Loader uint8 batch → normalised float batch on ``device`` (channels_last on CUDA), without a host sync."""
    def to_device(images: torch.Tensor) -> torch.Tensor:
        batch = normalise(images.to(device, non_blocking=True))
        return batch.contiguous(memory_format=torch.channels_last) if device.type == "cuda" else batch
    return to_device


def _load_checkpoint(path: Path, config: PretrainConfig, tasks: list[str], processes: int) -> dict[str, Any]:
    try:
        data: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise DpbenchError(f"{path} cannot be read ({type(exc).__name__}); delete it to restart the run") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("version") != VERSION:
        raise DpbenchError(f"{path} is not a dpbench pre-training checkpoint; choose another --out")
    saved, now = data["config"], config.record()
    changed = [f"{k}: {saved.get(k, LEGACY_DEFAULTS.get(k))!r} → {now[k]!r}" for k in now
               if k not in RESUMABLE_CHANGES and saved.get(k, LEGACY_DEFAULTS.get(k)) != now[k]]
    if changed:
        raise DpbenchError(f"{path.parent} holds a run with other settings ({'; '.join(changed)}); resume with the "
                           "original settings or choose another --out")
    if data["tasks"] != tasks:
        raise DpbenchError(f"{path.parent} was trained on other tasks ({', '.join(data['tasks'])}); resume with the "
                           "same data and settings or choose another --out")
    if data.get("world", 1) != processes:
        raise DpbenchError(f"{path.parent} was trained by {data.get('world', 1)} process(es); resume it with the same "
                           "number (torchrun --nproc_per_node)")
    if data["iteration"] > config.iterations:
        raise DpbenchError(f"{path.parent} is already at iteration {data['iteration']} > --iterations "
                           f"{config.iterations}; raise --iterations")
    return data


def _truncate_metrics(path: Path, iteration: int) -> None:
    """Drop metric lines written after the checkpoint being resumed."""
    if path.is_file():
        kept = []
        for line in path.read_text().splitlines():
            with contextlib.suppress(ValueError, KeyError, TypeError):  # a line cut by the kill is dropped too
                if json.loads(line)["iteration"] <= iteration:
                    kept.append(line)
        atomic_write_bytes(path, "".join(f"{line}\n" for line in kept).encode())


def build_model(config: PretrainConfig, pool: BuiltPool | Path, tasks: list[str]) -> tuple[MultiTaskNet, str]:
    """The multi-task network (backbone and heads drawn from ``config.seed``) and the backbone's encoder spec."""
    manifest = as_pool(pool).manifest
    backbone, arch_spec = build_backbone(config.arch, config.weights, config.seed)
    dim = feature_dim(backbone, config.input_size)
    n_classes = {t: len(manifest.task(t).classes) for t in tasks}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = MultiTaskNet(backbone, dim, n_classes)
    return model, arch_spec


def check_labels(task_index: torch.Tensor, labels: torch.Tensor, classes: torch.Tensor, tasks: Sequence[str],
                 root: Path) -> None:
    """Raise a DpbenchError when a label is outside its task's ``classes[task]`` classes (host tensors: no sync).

    Routing would otherwise send such a label to another task's column, and the loss would turn silently infinite.
    """
    bad = ((labels < 0) | (labels >= classes[task_index])).nonzero()
    if len(bad):
        j = int(bad[0, 0])
        task = tasks[int(task_index[j])]
        raise DpbenchError(f"a {task} sample has label {int(labels[j])}, outside its {int(classes[task_index[j]])} "
                           f"classes; run dpbench verify {root}")


def train_step(net: nn.Module, model: MultiTaskNet, optimizer: torch.optim.Optimizer, images: torch.Tensor,
               task_index: torch.Tensor, labels: torch.Tensor, counts: Sequence[int],
               device: torch.device) -> torch.Tensor:
    """One training step; returns the (local) loss, still on the device (reading it waits for the step).

    Forward through ``net`` (``model`` itself, or ``model`` wrapped by DDP) under bf16 autocast on CUDA, Eq. 1,
    backward, head gradients rescaled on ``model`` by ``counts`` (the global batch's |B_i|, host integers), SGD
    step. Inputs must already be on ``device``. Nothing here waits for the device.
    """
    optimizer.zero_grad(set_to_none=True)
    with _autocast(device):
        logits = net(images, task_index)
        loss = multitask_loss(logits, model.targets(task_index, labels))
    torch.autograd.backward(loss)
    rescale_head_grads(model, counts)
    optimizer.step()
    return loss


def pretrain(config: PretrainConfig, root: Path, out: Path, *, resume: bool = False,
             progress: Progress = lambda it, total, record: None, on_checkpoint: OnCheckpoint | None = None) -> Path:
    """Pre-train on the pool built in ``root``; returns ``out/encoder.pt``. ``resume`` continues ``out``'s run.

    ``on_checkpoint(iteration, model)`` runs after each checkpoint is written (e.g. to score validation sets);
    it must leave the model's weights alone.
    """
    config.check()
    root, out = Path(root), Path(out)
    pool = BuiltPool(root)
    tasks = resolve_tasks(config, pool)
    world, device = distributed.setup(resolve_device(config.device))
    per_rank = distributed.local_batch(config.batch_size, world)
    seed = config.seed + world.rank * distributed.RANK_SALT  # each process draws its own images
    ckpt_path, metrics_path = out / CHECKPOINT, out / METRICS
    if not resume and (ckpt_path.exists() or (out / ENCODER).exists()):
        raise DpbenchError(f"{out} already holds a pre-training run; pass --resume to continue it or choose "
                           "another --out")
    saved = _load_checkpoint(ckpt_path, config, tasks, world.size) if resume and ckpt_path.exists() else None
    model, arch_spec = build_model(config, pool, tasks)
    model.to(device)
    if device.type == "cuda":
        model.to(memory_format=torch.channels_last)
    spec = InputSpec(size=config.input_size)
    # workers ship uint8: 4x less to copy than float
    transform = spec.transform(train=True, as_uint8=True, augment=config.augmentation)
    inputs = _inputs(spec.normaliser(device), device)
    pin = device.type == "cuda"
    if saved is None:
        iteration, seconds, last_loss, stream_state = 0, 0.0, float("nan"), None
        if world.main:
            metrics_path.unlink(missing_ok=True)
        if config.bn_adapt_batches and adaptable_layers(model.backbone)[0]:
            bn_stream = ResumableStream(pool, tasks, seed=seed + BN_ADAPT_SALT, buffer=config.buffer)
            loader = batch_loader(bn_stream, per_rank, transform, seed + BN_ADAPT_SALT, config.workers, pin)
            adapt_batch_norm(model.backbone, (inputs(b["images"])
                                              for b in itertools.islice(loader, config.bn_adapt_batches)))
        phase = _phase(config, 0)
        optimizer = _optimizer(model, config, phase)
    else:
        model.load_state_dict(saved["model"])
        iteration, seconds, last_loss = int(saved["iteration"]), float(saved["seconds"]), float(saved["loss"])
        stream_state = json.loads(saved["stream"])[world.rank]
        phase = saved["phase"]
        optimizer = _optimizer(model, config, phase)
        optimizer.load_state_dict(saved["optimizer"])
        torch.set_rng_state(saved["rng"])
        if world.main:
            _truncate_metrics(metrics_path, iteration)
    out.mkdir(parents=True, exist_ok=True)
    stream = ResumableStream(pool, tasks, seed=seed, buffer=config.buffer, state=stream_state)
    # A finished run (resumed to export or re-score, as joint training does) starts no loader workers.
    batches: Iterator[dict[str, Any]] = (iter(batch_loader(stream, per_rank, transform, seed, config.workers, pin))
                                         if iteration < config.iterations else iter(()))
    started = time.perf_counter() - seconds

    def save(state: dict[str, Any]) -> None:
        states = distributed.gather(state, world)  # collective: every process calls save
        if not world.main:
            return
        payload = {"format": FORMAT, "version": VERSION, "config": config.record(), "tasks": tasks,
                   "iteration": iteration, "phase": phase, "model": model.state_dict(), "world": world.size,
                   "optimizer": optimizer.state_dict(), "stream": json.dumps(states), "rng": torch.get_rng_state(),
                   "seconds": time.perf_counter() - started, "loss": last_loss}
        with atomic_open(ckpt_path) as handle:
            torch.save(payload, handle)

    model.train()
    net = distributed.wrap(model, world, device)
    classes = torch.tensor([head.out_features for head in model.linear_heads()])
    with metrics_path.open("a") if world.main else contextlib.nullcontext() as log:
        while iteration < config.iterations:
            if _phase(config, iteration) != phase:
                phase = _phase(config, iteration)
                optimizer = _optimizer(model, config, phase)
                model.train()
                net = distributed.wrap(model, world, device)  # DDP tracks the parameters that now train
            batch = next(batches)
            check_labels(batch["tasks"], batch["labels"], classes, tasks, root)
            counts = distributed.global_counts(task_counts(batch["tasks"], len(tasks)), world)
            task_index = batch["tasks"].to(device, non_blocking=True)
            labels = batch["labels"].to(device, non_blocking=True)
            loss = train_step(net, model, optimizer, inputs(batch["images"]), task_index, labels, counts, device)
            iteration += 1
            record: dict[str, Any] = {}
            logged = iteration % config.log_every == 0 or iteration == config.iterations
            if logged:
                last_loss = distributed.mean_loss(loss, world)
                if not math.isfinite(last_loss):
                    raise Diverged(f"the loss became {last_loss} at iteration {iteration}; lower --lr "
                                       "(the paper found 1e-3 unstable) and start again in a new --out")
                record = {"iteration": iteration, "phase": phase, "loss": last_loss,
                          "lr": {g["name"]: g["lr"] for g in optimizer.param_groups},
                          "counts": dict(zip(tasks, counts, strict=True)),
                          "seconds": round(time.perf_counter() - started, 3), "processes": world.size}
                if log is not None:
                    log.write(json.dumps(record) + "\n")
                    log.flush()
            if iteration % config.checkpoint_every == 0 or iteration == config.iterations:
                if not logged:
                    last_loss = distributed.mean_loss(loss, world)
                save(batch["state"])
                if on_checkpoint is not None and world.main:
                    on_checkpoint(iteration, model)
                    model.train()
            if world.main:
                progress(iteration, config.iterations, record)
    del batches
    extra = {"method": "multitask-pretraining", "tasks": tasks, "iterations": iteration, "final_loss": last_loss,
             "config": config.record(), "processes": world.size}
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.backbone.state_dict().items()}
    path = out / ENCODER
    if world.main:
        path = save_encoder_checkpoint(state, arch_spec, spec, path, extra)
    distributed.teardown(world)
    return path

