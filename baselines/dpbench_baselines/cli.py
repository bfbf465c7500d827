"""``dpbench baselines ...``: commands that the baselines plug-in adds to the CLI."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from dpbench.cli.evaluate import PROBES, PROTOCOLS, Probe, Protocol, floats, print_results
from dpbench.cli.support import DEVICES, friendly
from dpbench.cli.support import device as device_parser
from dpbench.errors import DpbenchError
from dpbench.tasks.registry import get_pool
from dpbench_baselines.loto import left_out_sets
from dpbench_baselines.loto_cli import app as loto_app

if TYPE_CHECKING:
    from dpbench.evaluation.run import EvalConfig

app = typer.Typer(help="Baselines: multi-task pre-training and its leave-one-task-out protocol.",
                  no_args_is_help=True)


@app.command("loto", hidden=True)
@friendly
def loto(pool: str = typer.Option("mormont2020", help="Pool whose evaluation tasks are held out."),
         target: list[str] | None = typer.Option(None, help="Held-out task(s); default: evaluation tasks."),
         ) -> None:
    """Alias: the distinct left-out sets (one pre-training run each); see ``dpbench loto plan``."""
    table = Table(title=f"LOTO left-out sets of pool {pool} (dpbench loto plan shows the whole sweep)")
    table.add_column("left out together")
    table.add_column("evaluated tasks")
    table.add_column("training tasks", justify="right")
    for held, folds in left_out_sets(get_pool(pool), target).items():
        table.add_row(", ".join(held), ", ".join(f.target for f in folds), str(len(folds[0].train)))
    Console().print(table)


@friendly
def pretrain_command(
    data: Path = typer.Option(..., help="Built pool folder (holding manifest.json)."),
    pool: str | None = typer.Option(None, help="Train on this pool's built tasks; default: every built task."),
    tasks: list[str] | None = typer.Option(None, "--tasks", help="Train on these tasks only (repeatable)."),
    exclude: list[str] | None = typer.Option(None, help="Hold out this task and its linked tasks (repeatable)."),
    arch: str = typer.Option("resnet50", help="resnet50, densenet121, any torchvision model, or tiny (tests)."),
    weights: str = typer.Option("imagenet", help="Backbone start: imagenet (cached weights), none, or a "
                                "torchvision weights name."),
    size: int = typer.Option(224, help="Input side in pixels."),
    lr: float = typer.Option(1e-4, help="Learning rate γ of the backbone."),
    tau: float = typer.Option(5.0, help="Head learning-rate factor τγ (heads at γ·τγ)."),
    momentum: float = typer.Option(0.9, help="SGD momentum."),
    warmup: bool = typer.Option(False, help="Train the heads alone first (frozen backbone, batch norm included)."),
    warmup_iterations: int = typer.Option(5000, help="Warm-up iterations (part of --iterations)."),
    warmup_lr: float = typer.Option(1e-3, help="Warm-up learning rate γ_w of the heads."),
    iterations: int = typer.Option(50_000, help="Training iterations in total."),
    batch_size: int = typer.Option(64, help="Images per batch (tasks drawn uniformly, then images)."),
    bn_adapt_batches: int = typer.Option(20, help="Batches for batch-norm adaptation before training (0: off)."),
    seed: int = typer.Option(0, help="Seed of the heads, the data stream and the augmentation."),
    augmentation: str = typer.Option("paper", help="paper (§IV-F: flips; a random square crop only when the image is "
                                     "not square) or resized-crop (50-100 % area crops, zooms square tiles)."),
    checkpoint_every: int = typer.Option(1000, help="Iterations between checkpoints."),
    log_every: int = typer.Option(10, help="Iterations between metric lines (metrics.jsonl)."),
    resume: bool = typer.Option(False, help="Continue the run in --out from its last checkpoint."),
    out: Path = typer.Option(Path("pretrain"), help="Run folder: checkpoint.pt, metrics.jsonl, encoder.pt."),
    device: str = typer.Option("auto", help="auto, cpu or cuda[:N] (bf16 autocast and channels_last on CUDA).",
                               parser=device_parser, metavar=f"<{DEVICES}>"),
    workers: int = typer.Option(2, help="Loader processes decoding and augmenting images."),
) -> None:
    """Multi-task pre-training (Mormont et al. 2020, §IV-B); exports OUT/encoder.pt for dpbench eval."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from dpbench.cli.support import console
    from dpbench_baselines.train import PretrainConfig, pretrain, resolve_tasks

    config = PretrainConfig(
        tasks=tuple(tasks or ()), pool=pool, exclude=tuple(exclude or ()), arch=arch, weights=weights,
        input_size=size, lr=lr, tau=tau, momentum=momentum, warmup=warmup, warmup_iterations=warmup_iterations,
        warmup_lr=warmup_lr, iterations=iterations, batch_size=batch_size, bn_adapt_batches=bn_adapt_batches,
        seed=seed, checkpoint_every=checkpoint_every, log_every=log_every, device=device, workers=workers,
        augmentation=augmentation)
    config.check()
    chosen = resolve_tasks(config, data)
    console.print(f"pre-training {arch} on {len(chosen)} task(s): {', '.join(chosen)}")
    columns = (TextColumn("iterations"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[loss]}"),
               TimeRemainingColumn())
    with Progress(*columns, console=console) as bar:
        handle = bar.add_task("train", total=iterations, loss="")

        def on_iteration(done: int, total: int, record: dict[str, object]) -> None:
            if "loss" in record:
                bar.update(handle, completed=done, loss=f"loss {record['loss']:.4f}")
            else:
                bar.update(handle, completed=done)

        encoder = pretrain(config, data, out, resume=resume, progress=on_iteration)
    console.print(f"encoder: {encoder}; evaluate it with dpbench eval --encoder checkpoint:{encoder}")


baseline_app = typer.Typer(help="The paper's comparison baselines: ImageNet transfer, training from scratch, joint "
                                "training. Each writes OUT/results.json and OUT/report.html.", no_args_is_help=True)


def _eval_config(protocol: str, probe: str, seeds: int, device: str, batch_size: int, workers: int, epochs: int,
                 lrs: str, max_batches: int, augment: bool, amp: bool) -> EvalConfig:
    from dpbench.errors import DpbenchError
    from dpbench.evaluation.finetune import FinetuneConfig
    from dpbench.evaluation.run import EvalConfig

    if protocol not in ("linear", "finetune") or probe not in ("svm", "fast"):
        raise DpbenchError("use --protocol linear|finetune and --probe svm|fast")
    if seeds < 0 or epochs < 1 or max_batches < 0:
        raise DpbenchError("--seeds and --max-batches must be >= 0 and --epochs >= 1")
    n_seeds = seeds or (1 if protocol == "linear" else 5)
    return EvalConfig(protocol="linear" if protocol == "linear" else "finetune",
                      probe="fast" if probe == "fast" else "svm", seeds=tuple(range(n_seeds)), device=device,
                      batch_size=batch_size, workers=workers,
                      finetune=FinetuneConfig(lrs=floats(lrs), epochs=epochs, batch_size=batch_size,
                                              augment=augment, amp=amp, workers=workers,
                                              max_batches=max_batches or None))


_DATA = typer.Option(..., help="Built pool folder (holding manifest.json).")
_TASKS = typer.Option(None, "--tasks", help="Only these tasks (repeatable); default: every built task.")
_ARCH = typer.Option("resnet50", help="Torchvision model (resnet50, densenet121, resnet18...).")
_SIZE = typer.Option(0, help="Input side in px (0 = the model's own, 224).")
_SEEDS = typer.Option(0, help="Seeds per task; 0 = the protocol's default (linear 1, finetune 5).")
_DEVICE = typer.Option("auto", help="auto (cuda when available), cpu, cuda, cuda:N or mps.", parser=device_parser,
                       metavar=f"<{DEVICES}>")
_BATCH = typer.Option(64, help="Batch size for extraction and fine-tuning.")
_WORKERS = typer.Option(0, help="Data-loading worker processes.")
_EPOCHS = typer.Option(100, help="Fine-tuning epochs (paper: 100).")
_LRS = typer.Option("1e-3,1e-4,1e-5,1e-6", help="Fine-tuning learning rates (paper grid).")
_MAX_BATCHES = typer.Option(0, help="Fine-tuning batches per epoch (0 = all), a CPU budget.")
_AUGMENT = typer.Option(True, help="Fine-tuning flips and random square crops.")
_AMP = typer.Option(False, help="bf16 autocast while fine-tuning.")


@baseline_app.command("imagenet")
@friendly
def imagenet_command(
    data: Path = _DATA, tasks: list[str] | None = _TASKS, arch: str = _ARCH,
    protocol: Protocol = typer.Option("linear", help="linear (features + linear SVM) or finetune.",
                                      parser=PROTOCOLS),
    probe: Probe = typer.Option("svm", help="svm (scikit-learn LinearSVC grid) or fast (batched solver).",
                                parser=PROBES),
    size: int = _SIZE, seeds: int = _SEEDS, device: str = _DEVICE, batch_size: int = _BATCH, workers: int = _WORKERS,
    epochs: int = _EPOCHS, lrs: str = _LRS, max_batches: int = _MAX_BATCHES, augment: bool = _AUGMENT,
    amp: bool = _AMP, out: Path = typer.Option(Path("baseline-imagenet"), help="Folder for results and report."),
) -> None:
    """ImageNet transfer: torchvision:ARCH:IMAGENET1K_V1 (cached weights only) with the linear or fine-tuning
    protocol; method imagenet-ARCH-PROTOCOL."""
    from dpbench_baselines.others import imagenet_baseline

    config = _eval_config(protocol, probe, seeds, device, batch_size, workers, epochs, lrs, max_batches, augment, amp)
    results = imagenet_baseline(data, out, config, arch=arch, tasks=tasks, size=size)
    print_results(results, out)


@baseline_app.command("scratch")
@friendly
def scratch_command(
    data: Path = _DATA, tasks: list[str] | None = _TASKS, arch: str = _ARCH, size: int = _SIZE, seeds: int = _SEEDS,
    device: str = _DEVICE, batch_size: int = _BATCH, workers: int = _WORKERS, epochs: int = _EPOCHS,
    lrs: str = _LRS, max_batches: int = _MAX_BATCHES, augment: bool = _AUGMENT, amp: bool = _AMP,
    out: Path = typer.Option(Path("baseline-scratch"), help="Folder for results and report."),
) -> None:
    """Training from scratch: the fine-tuning protocol from torchvision:ARCH:none; method scratch-ARCH."""
    from dpbench_baselines.others import scratch_baseline

    config = _eval_config("finetune", "svm", seeds, device, batch_size, workers, epochs, lrs, max_batches, augment,
                          amp)
    results = scratch_baseline(data, out, config, arch=arch, tasks=tasks, size=size)
    print_results(results, out)


@baseline_app.command("joint")
@friendly
def joint_command(
    data: Path = _DATA,
    tasks: list[str] | None = typer.Option(None, "--tasks", help="Target task(s) (repeatable); default: the "
                                           "pool's evaluation tasks that are built."),
    archs: str = typer.Option("resnet50,densenet121", "--archs", "--arch", help="Backbones (Table II); tiny for "
                              "tests."),
    weights: str = typer.Option("imagenet", help="Backbone start: imagenet (cached weights), none, or a "
                                "torchvision weights name."),
    size: int = typer.Option(224, help="Input side in pixels."),
    iterations: int = typer.Option(50_000, help="Training iterations in total."),
    batch_size: int = typer.Option(64, help="Images per batch (tasks drawn uniformly, then images)."),
    lrs: str = typer.Option("1e-3,1e-4,1e-5,1e-6", "--lrs", "--lr", help="Learning rates γ (Table II)."),
    taus: str = typer.Option("1,5,10", "--taus", "--tau", help="Head learning-rate factors τγ (Table II)."),
    warmups: str = typer.Option("on,off", help="Warm-up choices: on, off or on,off (Table II)."),
    warmup_iterations: int = typer.Option(5000, help="Warm-up iterations (part of --iterations)."),
    seeds: int = typer.Option(5, help="Seeds per grid point (paper: 5)."),
    bn_adapt_batches: int = typer.Option(20, help="Batches for batch-norm adaptation before training (0: off)."),
    checkpoint_every: int = typer.Option(5000, help="Iterations between checkpoints: the candidates each target's "
                                         "validation split chooses from."),
    device: str = typer.Option("auto", help="auto, cpu or cuda[:N].", parser=device_parser,
                               metavar=f"<{DEVICES}>"),
    workers: int = typer.Option(2, help="Loader processes decoding and augmenting images."),
    out: Path = typer.Option(Path("baseline-joint"), help="Folder for results and report; the (resumable) "
                             "training runs go to OUT/runs."),
) -> None:
    """Joint training tuned like the multi-task models: every Table II grid point × seed trains on every built
    task, targets included; each target is scored on test with its own head (no transfer) at the grid point and
    checkpoint its validation split prefers; method joint-ARCHS."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from dpbench.cli.support import console
    from dpbench_baselines.joint_grid import joint_grid
    from dpbench_baselines.sweep_spec import Grid
    from dpbench_baselines.train import PretrainConfig

    words = [w.strip() for w in warmups.split(",") if w.strip()]
    if not words or any(w not in ("on", "off") for w in words) or seeds < 1:
        raise DpbenchError("--warmups takes on, off or on,off and --seeds must be >= 1")
    grid = Grid(lrs=floats(lrs), taus=floats(taus), archs=tuple(a.strip() for a in archs.split(",") if a.strip()),
                warmups=tuple(w == "on" for w in dict.fromkeys(words)))
    base = PretrainConfig(weights=weights, input_size=size, iterations=iterations, batch_size=batch_size,
                          warmup_iterations=warmup_iterations, bn_adapt_batches=bn_adapt_batches, device=device,
                          workers=workers, checkpoint_every=checkpoint_every)
    runs = len(grid.configs()) * seeds
    columns = (TextColumn("{task.fields[run]}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console) as bar:
        handle = bar.add_task("train", total=iterations * runs, run="")
        finished: dict[str, int] = {}

        def on_progress(key: str, done: int, total: int) -> None:
            finished[key] = done
            bar.update(handle, completed=sum(finished.values()), run=key)

        results = joint_grid(data, out, base, grid, tuple(range(seeds)), tasks, batch_size=batch_size,
                             progress=on_progress)
    print_results(results, out)


PANEL = "Pre-training and baselines (plug-in)"


def register(root: typer.Typer) -> None:
    """Entry point: attach this plug-in's commands to the ``dpbench`` CLI."""
    root.add_typer(app, name="baselines", hidden=True)  # old spelling of `dpbench baselines loto`, for one release
    root.command("pretrain", rich_help_panel=PANEL)(pretrain_command)
    root.add_typer(baseline_app, name="baseline", rich_help_panel=PANEL)
    root.add_typer(loto_app, name="loto", rich_help_panel=PANEL)
