"""The ``dpbench`` command line: tasks, pools, build, verify, docs (plug-ins add more)."""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from dpbench import __version__
from dpbench.cli_support import console, fail, friendly
from dpbench.commands.audit import audit_command
from dpbench.commands.check_encoder import check_encoder_command
from dpbench.commands.distribute import download_command, publish_command
from dpbench.commands.evaluate import eval_command
from dpbench.commands.rank import rank
from dpbench.commands.sources import sources_app
from dpbench.errors import DpbenchError
from dpbench.tasks.models import Task
from dpbench.tasks.registry import all_tasks, get_pool, get_task, pool_version, pools

if TYPE_CHECKING:
    from dpbench.build import BuildReport

app = typer.Typer(help="dpbench: benchmark digital-pathology encoders on grouped, sharded tasks.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
tasks_app = typer.Typer(help="The task registry.")
app.add_typer(tasks_app, name="tasks")
app.add_typer(sources_app, name="sources")


def _version(value: bool) -> None:
    if value:
        console.print(f"dpbench {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """dpbench: benchmark digital-pathology encoders on grouped, sharded tasks."""


def _sizes(task: Task) -> str:
    s = task.sizes
    return f"{s.train.images:,} / {s.val.images:,} / {s.test.images:,}"


@tasks_app.callback(invoke_without_command=True)
@friendly
def tasks_table(
    ctx: typer.Context,
    availability: str | None = typer.Option(None, help="public, registration, private or synthetic."),
    licence: str | None = typer.Option(None, help="Licence id, e.g. CC0-1.0 or CC-BY-4.0."),
    pool: str | None = typer.Option(None, help="Only the tasks of this pool."),
) -> None:
    """List registered tasks as a table (filters combine)."""
    if ctx.invoked_subcommand:
        return
    names = get_pool(pool).tasks if pool else tuple(all_tasks())
    rows = [get_task(n) for n in names]
    rows = [t for t in rows if (availability is None or t.availability == availability)
            and (licence is None or t.licence.lower() == licence.lower())]
    table = Table(title=f"{len(rows)} task(s)" + (f" of pool {pool}" if pool else ""))
    for column in ("task", "abbr", "type", "organ", "stain", "cls", "metric", "split by",
                   "train / val / test images", "availability", "licence", "role"):
        table.add_column(column, justify="right" if column in ("cls",) else "left")
    for t in rows:
        table.add_row(t.name, t.abbreviation, t.origin, t.organ, t.stain, str(t.n_classes), t.metric,
                      t.split_unit, _sizes(t), t.availability, t.licence, t.role)
    console.print(table)
    if not rows:
        raise fail("no task matches these filters")


@tasks_app.command("show")
@friendly
def tasks_show(name: str = typer.Argument(..., help="Task name (see `dpbench tasks`).")) -> None:
    """Print one task card."""
    from dpbench.docs import task_card_lines

    task = get_task(name)
    console.print(Panel("\n".join(task_card_lines(task, markdown=False)), title=task.name, expand=False))


@app.command("pools")
@friendly
def pools_table() -> None:
    """List the pools with their versions."""
    table = Table(title="pools")
    for column in ("pool", "version", "tasks", "classes", "images", "description"):
        table.add_column(column)
    for pool in pools().values():
        members = [get_task(n) for n in pool.tasks]
        table.add_row(pool.name, pool_version(pool), str(len(members)), str(sum(t.n_classes for t in members)),
                      f"{sum(t.sizes.images for t in members):,}", pool.description)
    console.print(table)


@app.command("build")
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


@app.command("verify")
@friendly
def verify(root: Path = typer.Argument(..., help="Folder holding manifest.json and shards."),
           decode: bool = typer.Option(True, help="Decode every image (slower, catches bad bytes).")) -> None:
    """Check every shard against the manifest: hash, size, sample count, labels, image decoding."""
    from dpbench.verify import verify_pool

    checked, problems = verify_pool(root, decode=decode)
    for p in problems:
        console.print(f"[red]BAD[/] {p.path}: {p.what}; {p.fix}", soft_wrap=True, highlight=False)
    if problems:
        raise fail(f"{len(problems)} of {checked} shards failed verification in {root}", 1)
    console.print(f"[green]OK[/] {checked} shards in {root} match the manifest")


@app.command("docs")
@friendly
def docs(out: Path = typer.Option(Path("docs"), help="Docs folder whose generated pages are rewritten.")) -> None:
    """Regenerate the task cards and the task index from the registry."""
    from dpbench.docs import write_task_docs

    written = write_task_docs(out)
    console.print(f"wrote {len(written)} pages under {out}")


app.command("rank")(rank)
app.command("audit")(audit_command)
app.command("eval")(eval_command)
app.command("check-encoder")(check_encoder_command)
app.command("publish")(publish_command)
app.command("download")(download_command)


def _load_plugins() -> None:
    for entry in entry_points(group="dpbench.cli"):
        try:
            entry.load()(app)
        except Exception as exc:  # a broken plug-in must not take the core CLI down
            fail(f"plug-in {entry.name!r} failed to load ({exc}); its commands are unavailable", 0)


def main() -> None:
    """Console-script entry point."""
    _load_plugins()
    app()
