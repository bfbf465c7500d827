"""``dpbench build`` and ``dpbench verify``: shards and manifest from a pool, and their check."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from dpbench.cli.support import console, fail, friendly
from dpbench.errors import DpbenchError
from dpbench.tasks.registry import get_pool

if TYPE_CHECKING:
    from dpbench.build import BuildOptions, BuildReport, TaskReport
    from dpbench.build.builder import Progress as BuildProgress


@friendly
def build(
    pool: str | None = typer.Option(None, help="Pool to build (see `dpbench pools`; default synthetic); with --task, "
                                    "the name of your own pool (default: the card's pool, else custom-<task>)."),
    out: Path = typer.Option(Path("dpbench-data"), help="Output folder for shards and manifest."),
    tasks: list[str] | None = typer.Option(None, "--tasks", help="Only these tasks of the pool (repeatable)."),
    cards: list[Path] | None = typer.Option(None, "--task", help="Build your own task from this task card (YAML or "
                                            "JSON, see docs/own-data.md; repeatable)."),
    shard_size: int = typer.Option(1000, help="Samples per shard."),
    workers: int = typer.Option(2, help="Tasks built in parallel (processes)."),
    raw: Path | None = typer.Option(None, help="Raw-data root for real pools (one folder per source, "
                                    "see `dpbench sources list`); absent sources are reported and skipped."),
    licence_allow: list[str] | None = typer.Option(
        None, "--licence-allow", help="Only tasks under these licences, e.g. CC0-1.0,CC-BY-4.0 (repeatable)."),
) -> None:
    """Split a pool (or your own task cards) by patient/slide and write webdataset shards plus manifest.json
    (resumable)."""
    from dpbench.build import BuildOptions, build_pool, plan_build
    from dpbench.tasks.registry import licence_filter, pool_tasks

    if cards:
        if tasks or raw or licence_allow:
            raise DpbenchError("--tasks, --raw and --licence-allow select registry tasks; with --task CARD the cards "
                               "say what to build (pass one --task per card)")
        _build_cards(cards, pool, out, BuildOptions(shard_size=shard_size, workers=workers))
        return
    chosen = get_pool(pool or "synthetic")
    if raw is not None and not raw.is_dir():
        raise DpbenchError(f"--raw {raw} is not a folder; point it at the folder holding the raw sources")
    if licence_allow:
        kept = licence_filter(pool_tasks(chosen, tasks), licence_allow)
        if not kept:
            raise DpbenchError(f"no task of pool {chosen.name} is under {', '.join(licence_allow)}; "
                               "see `dpbench tasks --pool` for the licences")
        tasks = [t.name for t in kept]
    if chosen.synthetic:
        console.print("[bold yellow]SYNTHETIC pool[/]: procedurally generated images, not real data.")
    with _bars() as bars:
        plan = plan_build(chosen, tasks, raw)
        selected = plan[0]
        # Converted counts are known only once the raw data are scanned: no total for real pools.
        on_progress, on_task = bars(len(selected), sum(t.sizes.images for t in selected) if chosen.synthetic else None)
        report = build_pool(chosen, out, tasks, BuildOptions(shard_size=shard_size, workers=workers, raw=raw),
                            progress=on_progress, on_task=on_task, plan=plan)
    _summary(report, out)


def _build_cards(cards: list[Path], pool: str | None, out: Path, options: BuildOptions) -> None:
    from dpbench.build.cards import build_cards

    with _bars() as bars:
        on_progress, on_task = bars(len(cards), None)
        report = build_cards(cards, out, options, pool=pool, progress=on_progress, on_task=on_task)
    _summary(report, out)
    console.print(f"your own pool [bold]{report.manifest.pool}[/] (cards kept as {out}/<task>/card.json); evaluate "
                  f"it: dpbench eval --data {out} --encoder SPEC", highlight=False)


@contextmanager
def _bars() -> Iterator[Callable[[int, int | None], tuple[BuildProgress, Callable[[TaskReport], None]]]]:
    """Progress bars of a build: yields ``start(n_tasks, n_images)`` giving the build's two callbacks."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[rate]}"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:

        def start(n_tasks: int, n_images: int | None) -> tuple[BuildProgress, Callable[[TaskReport], None]]:
            bar_tasks = progress.add_task("tasks", total=n_tasks, rate="")
            bar_images = progress.add_task("images", total=n_images, rate="")
            shards = [0]
            started = progress.get_time()

            def on_progress(_task: str, images: int, written: int) -> None:
                shards[0] += written
                progress.advance(bar_images, images)
                done = progress.tasks[bar_images].completed
                elapsed = max(progress.get_time() - started, 1e-6)
                progress.update(bar_images, rate=f"{done / elapsed:,.0f} img/s, {shards[0]} shards")

            return on_progress, lambda _r: progress.advance(bar_tasks)

        yield start


def _summary(report: BuildReport, out: Path) -> None:
    manifest = report.manifest
    label = " (SYNTHETIC)" if manifest.synthetic else ""
    table = Table(title=f"pool {manifest.pool}{label} version {manifest.pool_version} → {out}",
                  caption="train/val/test: images (groups); shards: written/kept from an earlier run")
    table.add_column("task", no_wrap=True)
    for column in ("cls", "train", "val", "test", "shards", "s"):
        table.add_column(column, justify="right", no_wrap=True)
    for r in report.tasks:
        e = r.entry
        cells = [f"{e.splits[s].images} ({e.splits[s].groups})" for s in ("train", "val", "test")]
        table.add_row(e.name, str(len(e.classes)), *cells, f"{r.written}/{r.reused}", f"{r.seconds:.1f}")
    console.print(table)
    n_images = sum(sum(s.images for s in r.entry.splits.values()) for r in report.tasks)
    console.print(f"{len(report.tasks)} tasks, {n_images:,} images, {len(manifest.shards)} shards "
                  f"in {report.seconds:.1f} s; manifest: {out / 'manifest.json'}")
    for name, why in report.missing.items():
        console.print(f"[yellow]not built:[/] {name}: {why}")
    for r in report.tasks:
        for reason, count in sorted(r.skipped.items()):
            console.print(f"[yellow]skipped:[/] {r.entry.name}: {count} raw item(s): {reason}")
        if r.entry.splits["val"].groups == 0:
            console.print(f"[yellow]note:[/] {r.entry.name} has no validation group: the linear probe selects C by "
                          "CV on train, fine-tuning will skip this task")
        if r.entry.missing_classes:
            console.print(f"[yellow]note:[/] {r.entry.name} lacks classes {r.entry.missing_classes} "
                          "(the data do not allow every class in every split)")


@friendly
def verify(root: Path = typer.Argument(..., help="Folder holding manifest.json and shards."),
           decode: bool = typer.Option(True, help="Decode every image (slower, catches bad bytes).")) -> None:
    """Check every shard against the manifest: hash, size, sample count, labels, image decoding."""
    from dpbench.pool.verify import verify_pool

    checked, problems = verify_pool(root, decode=decode)
    for p in problems:
        console.print(f"[red]BAD[/] {p.path}: {p.what}; {p.fix}", soft_wrap=True, highlight=False)
    if problems:
        raise fail(f"{len(problems)} of {checked} shards failed verification in {root}", 1)
    console.print(f"[green]OK[/] {checked} shards in {root} match the manifest")


