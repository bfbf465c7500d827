"""``dpbench build`` and ``dpbench verify``: shards and manifest from a pool, and their check."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from dpbench.cli.support import console, fail, friendly
from dpbench.errors import DpbenchError
from dpbench.tasks.registry import get_pool

if TYPE_CHECKING:
    from dpbench.build import BuildReport


@friendly
def build(
    pool: str = typer.Option("synthetic", help="Pool to build (see `dpbench pools`)."),
    out: Path = typer.Option(Path("dpbench-data"), help="Output folder for shards and manifest."),
    tasks: list[str] | None = typer.Option(None, "--tasks", help="Only these tasks of the pool (repeatable)."),
    shard_size: int = typer.Option(1000, help="Samples per shard."),
    workers: int = typer.Option(2, help="Tasks built in parallel (processes)."),
    raw: Path | None = typer.Option(None, help="Raw-data root for real pools (one folder per source, "
                                    "see `dpbench sources list`); absent sources are reported and skipped."),
    licence_allow: list[str] | None = typer.Option(
        None, "--licence-allow", help="Only tasks under these licences, e.g. CC0-1.0,CC-BY-4.0 (repeatable)."),
) -> None:
    """Split a pool by patient/slide and write webdataset shards plus manifest.json (resumable)."""
    from dpbench.build import BuildOptions, build_pool, plan_build
    from dpbench.tasks.registry import licence_filter, pool_tasks

    chosen = get_pool(pool)
    if raw is not None and not raw.is_dir():
        raise DpbenchError(f"--raw {raw} is not a folder; point it at the folder holding the raw sources")
    if licence_allow:
        kept = licence_filter(pool_tasks(chosen, tasks), licence_allow)
        if not kept:
            raise DpbenchError(f"no task of pool {pool} is under {', '.join(licence_allow)}; "
                               "see `dpbench tasks --pool` for the licences")
        tasks = [t.name for t in kept]
    if chosen.synthetic:
        console.print("[bold yellow]SYNTHETIC pool[/]: procedurally generated images, not real data.")
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[rate]}"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        plan = plan_build(chosen, tasks, raw)
        selected = plan[0]
        # Converted counts are known only once the raw data are scanned: no total for real pools.
        n_images = sum(t.sizes.images for t in selected) if chosen.synthetic else None
        bar_tasks = progress.add_task("tasks", total=len(selected), rate="")
        bar_images = progress.add_task("images", total=n_images, rate="")
        shards = [0]
        started = progress.get_time()

        def on_progress(_task: str, images: int, written: int) -> None:
            shards[0] += written
            progress.advance(bar_images, images)
            done = progress.tasks[bar_images].completed
            elapsed = max(progress.get_time() - started, 1e-6)
            progress.update(bar_images, rate=f"{done / elapsed:,.0f} img/s, {shards[0]} shards")

        report = build_pool(chosen, out, tasks, BuildOptions(shard_size=shard_size, workers=workers, raw=raw),
                            progress=on_progress, on_task=lambda _r: progress.advance(bar_tasks), plan=plan)
    _summary(report, out)


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


