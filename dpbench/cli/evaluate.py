"""``dpbench eval``: how good is my encoder on the pathology pool?"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from dpbench.cli.output import table_console
from dpbench.cli.support import DEVICES, SPECS, choice, console, device, friendly, integer, writable
from dpbench.errors import DpbenchError

if TYPE_CHECKING:
    from dpbench.results import Results

#: The values of EvalConfig's protocol, probe and precision (mypy checks they agree; that module is heavy).
Protocol = Literal["linear", "finetune"]
Probe = Literal["svm", "fast"]
Precision = Literal["fp32", "bf16"]
ScoreOn = Literal["test", "val"]
PROTOCOLS, PROBES = choice("--protocol", Protocol), choice("--probe", Probe)  # their typer parsers
PRECISIONS = choice("--precision", Precision)
SCORE_ON = choice("--score-on", ScoreOn)
#: ``dpbench eval``'s batch size, which ``dpbench check-encoder`` tries too.
BATCH_SIZE = 64


def floats(text: str) -> tuple[float, ...]:
    """``--lrs``: comma-separated numbers."""
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if not values or not all(0 < v < float("inf") for v in values):
        raise DpbenchError(f"--lrs takes comma-separated positive numbers, got {text!r}")
    return values


@friendly
def eval_command(
    encoder: str = typer.Option(..., help=f"Encoder spec: {SPECS}."),
    pool: str | None = typer.Option(None, help="Only check that --data holds this pool (its manifest.json names "
                                    "the pool; no need to pass it)."),
    data: Path = typer.Option(Path("dpbench-data"), help="Built pool (dpbench build --out)."),
    tasks: list[str] | None = typer.Option(None, "--tasks", help="Only these tasks (repeatable)."),
    licence_allow: list[str] | None = typer.Option(
        None, "--licence-allow", help="Only tasks under these licences, e.g. CC0-1.0,CC-BY-4.0 (repeatable)."),
    protocol: Protocol = typer.Option("linear", help="linear (features + linear SVM) or finetune.", parser=PROTOCOLS),
    probe: Probe = typer.Option("svm", help="svm (scikit-learn LinearSVC grid) or fast (batched solver).",
                                parser=PROBES),
    seeds: int = typer.Option(0, help="Seeds per task; 0 = the protocol's default (linear 1, finetune 5).",
                              parser=integer("--seeds", 0)),
    device_name: str = typer.Option("auto", "--device", help="auto (cuda when available), cpu, cuda, cuda:N or mps.",
                                    parser=device, metavar=f"<{DEVICES}>"),
    batch_size: int = typer.Option(BATCH_SIZE, help="Batch size for extraction and fine-tuning.",
                                   parser=integer("--batch-size", 1)),
    workers: int = typer.Option(0, help="Data-loading worker processes.", parser=integer("--workers", 0)),
    precision: Precision = typer.Option("fp32", help="fp32 or bf16 (autocast) for feature extraction.",
                                        parser=PRECISIONS),
    channels_last: bool = typer.Option(False, help="Use channels_last memory format."),
    epochs: int = typer.Option(100, help="Fine-tuning epochs (paper: 100).", parser=integer("--epochs", 1)),
    lrs: str = typer.Option("1e-3,1e-4,1e-5,1e-6", help="Fine-tuning learning rates (paper grid)."),
    max_batches: int = typer.Option(0, help="Fine-tuning batches per epoch (0 = all), a CPU budget.",
                                    parser=integer("--max-batches", 0)),
    augment: bool = typer.Option(True, help="Fine-tuning flips and random square crops."),
    amp: bool = typer.Option(False, help="bf16 autocast while fine-tuning."),
    score_on: ScoreOn = typer.Option("test", help="test (final evaluation) or val (model selection, §IV-D: the "
                                     "probe trains on train, val scores it, no test shard is read).",
                                     parser=SCORE_ON),
    input_size: int = typer.Option(0, help="Override the encoder's input side in px (0 = its own).",
                                   parser=integer("--input-size", 0)),
    name: str | None = typer.Option(None, help="Method name in the results (default: the encoder spec)."),
    cache: bool = typer.Option(True, help="Cache features under DATA/.cache/features."),
    out: Path = typer.Option(Path("dpbench-results"), help="Folder for results.json and report.html."),
    offline: bool = typer.Option(False, "--offline", help="No network while loading the encoder: presets need "
                                 "their weights cached (dpbench encoders fetch NAME)."),
) -> None:
    """Evaluate an encoder: features + linear SVM, or fine-tuning; write results.json and report.html."""
    from dpbench.encoders import load_encoder
    from dpbench.encoders.base import resolve_device
    from dpbench.evaluation.finetune import FinetuneConfig
    from dpbench.evaluation.report import write_report
    from dpbench.evaluation.run import EvalConfig, evaluate
    from dpbench.pool.built import BuiltPool

    learning_rates = floats(lrs)
    built = BuiltPool(data)
    manifest = built.manifest
    if pool is not None and manifest.pool != pool:
        raise DpbenchError(f"{data} holds pool {manifest.pool!r}, not {pool!r}: drop --pool to evaluate "
                           f"{manifest.pool!r}, or pass --data a folder built from {pool!r}")
    if licence_allow:
        from dpbench.tasks.registry import licence_filter, parse_licences

        tasks = [t.name for t in licence_filter(manifest.tasks, licence_allow) if not tasks or t.name in tasks]
        if not tasks:
            raise DpbenchError(f"no task in {data} is under {', '.join(sorted(parse_licences(licence_allow)))}")
    resolve_device(device_name)  # CUDA asked for but absent: say so before any work
    writable(out, "--out folder")
    features = data / ".cache" / "features" if cache and protocol == "linear" else None
    if features:
        writable(features, "--data folder, or pass --no-cache")
    n_seeds = seeds or (1 if protocol == "linear" else 5)
    config = EvalConfig(
        protocol=protocol, probe=probe, seeds=tuple(range(n_seeds)), device=device_name, batch_size=batch_size,
        workers=workers, precision=precision, channels_last=channels_last, score_on=score_on,
        finetune=FinetuneConfig(lrs=learning_rates, epochs=epochs, batch_size=batch_size, augment=augment, amp=amp,
                                workers=workers, max_batches=max_batches or None))
    loaded = load_encoder(encoder, offline=offline)
    if input_size:
        loaded = dataclasses.replace(loaded, input=dataclasses.replace(loaded.input, size=input_size))
    if manifest.synthetic:
        console.print("[bold yellow]SYNTHETIC pool[/]: scores check the pipeline, not real-data performance.")
    chosen = tasks or [t.name for t in manifest.tasks]
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[event]}"),
                  TimeElapsedColumn(), console=console) as bar:
        overall = bar.add_task("tasks", total=len(chosen), event="")
        images = bar.add_task("feature extraction (images)", total=None, event="", visible=protocol == "linear")

        def on_progress(task: str, event: str) -> None:
            bar.update(overall, event=f"{task}: {event}")
            if event in ("done", "reused", "skipped"):
                bar.advance(overall)

        results = evaluate(loaded, built, tasks, config, out, name=name, cache=features, progress=on_progress,
                           on_images=lambda done, total: bar.update(images, completed=done, total=total))
    write_report(results, out / "report.html")
    print_results(results, out)


def print_results(results: Results, out: Path) -> None:
    """The per-task summary table, the skipped tasks and where the results and report are."""
    from dpbench.results import task_summaries

    table = Table(title=f"{results.method} on {results.provenance.pool} ({results.provenance.protocol}"
                        + (", SYNTHETIC" if results.provenance.synthetic else "") + ")")
    for column in ("task", "metric", "mean", "std", "seeds"):
        table.add_column(column, justify="left" if column == "task" else "right")
    for task, summary in task_summaries(results).items():
        table.add_row(task, summary.metric, f"{summary.mean:.4f}", f"{summary.std:.4f}", str(summary.n))
    table_console().print(table)  # a pipe gets whole task names
    for task, why in results.skipped.items():
        console.print(f"[yellow]skipped[/] {task}: {why}")
    console.print(f"results: {out / 'results.json'}; report: {out / 'report.html'}")
