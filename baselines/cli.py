"""``dpbench baselines ...``: commands that the baselines plug-in adds to the CLI."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from dpbench.cli_support import friendly
from dpbench.protocols import loto_folds
from dpbench.tasks.registry import get_pool

app = typer.Typer(help="Baselines: multi-task pre-training and its leave-one-task-out protocol.",
                  no_args_is_help=True)


@app.command("loto")
@friendly
def loto(pool: str = typer.Option("mormont2020", help="Pool whose evaluation tasks are held out."),
         target: list[str] | None = typer.Option(None, help="Held-out task(s); default: evaluation tasks."),
         ) -> None:
    """Show the leave-one-task-out folds: what each pre-training run trains on."""
    table = Table(title=f"LOTO folds of pool {pool}")
    table.add_column("target")
    table.add_column("held out together")
    table.add_column("training tasks", justify="right")
    for fold in loto_folds(get_pool(pool), target):
        table.add_row(fold.target, ", ".join(fold.held_out), str(len(fold.train)))
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
    checkpoint_every: int = typer.Option(1000, help="Iterations between checkpoints."),
    log_every: int = typer.Option(10, help="Iterations between metric lines (metrics.jsonl)."),
    resume: bool = typer.Option(False, help="Continue the run in --out from its last checkpoint."),
    out: Path = typer.Option(Path("pretrain"), help="Run folder: checkpoint.pt, metrics.jsonl, encoder.pt."),
    device: str = typer.Option("auto", help="auto, cpu or cuda[:N] (bf16 autocast and channels_last on CUDA)."),
    workers: int = typer.Option(2, help="Loader processes decoding and augmenting images."),
) -> None:
    """Multi-task pre-training (Mormont et al. 2020, §IV-B); exports OUT/encoder.pt for dpbench eval."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from baselines.train import PretrainConfig, pretrain, resolve_tasks
    from dpbench.cli_support import console

    config = PretrainConfig(
        tasks=tuple(tasks or ()), pool=pool, exclude=tuple(exclude or ()), arch=arch, weights=weights,
        input_size=size, lr=lr, tau=tau, momentum=momentum, warmup=warmup, warmup_iterations=warmup_iterations,
        warmup_lr=warmup_lr, iterations=iterations, batch_size=batch_size, bn_adapt_batches=bn_adapt_batches,
        seed=seed, checkpoint_every=checkpoint_every, log_every=log_every, device=device, workers=workers)
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


def register(root: typer.Typer) -> None:
    """Entry point: attach this plug-in's commands to the ``dpbench`` CLI."""
    root.add_typer(app, name="baselines")
    root.command("pretrain")(pretrain_command)
