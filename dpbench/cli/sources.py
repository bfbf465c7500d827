"""``dpbench sources list|fetch``: where each raw dataset comes from and how to get it."""

from __future__ import annotations

from pathlib import Path

import typer

from dpbench.cli.output import emit, format_option
from dpbench.cli.support import console, friendly
from dpbench.tasks.models import Source

sources_app = typer.Typer(help="Raw sources: list them, fetch the ones that may be downloaded.", no_args_is_help=True)


def _how(source: Source) -> str:
    if source.availability == "private":
        return "private: import a lab export"
    return f"dpbench sources fetch {source.id}" if source.fetchable else "manual (see `sources fetch`)"


@sources_app.command("list")
@friendly
def list_sources(
    licence_allow: list[str] | None = typer.Option(None, "--licence-allow", help="Only these licences."),
    format: str = format_option(),
) -> None:
    """Every raw source: its tasks, availability, licence, size, and how to get it."""
    from dpbench.convert import supported_sources
    from dpbench.tasks.registry import licence_filter, raw_sources

    converters = supported_sources()
    records = [{"source": source_id, "tasks": [t.name for t in tasks], "availability": source.availability,
                "licence": source.licence, "size": source.size or "?", "folder": source.folder,
                "converter": source_id in converters, "get it": _how(source)}
               for source_id, (source, tasks) in raw_sources().items() if licence_filter(list(tasks), licence_allow)]
    emit(records, format, title="raw sources (build with `dpbench build --pool NAME --raw DIR`; data go in "
         "DIR/<folder>)")


@sources_app.command("fetch")
@friendly
def fetch(
    name: str = typer.Argument(..., help="Source id (see `dpbench sources list`)."),
    to: Path = typer.Option(..., "--to", help="Raw-data root; the source lands in TO/<folder>/."),
    accept_licence: bool = typer.Option(False, "--accept-licence", help="Accept the source's licence terms."),
    retries: int = typer.Option(3, help="Attempts per URL before the next mirror."),
    timeout: float = typer.Option(60.0, help="Seconds without data before an attempt fails."),
) -> None:
    """Download, verify and unpack a public source (resumable); print the manual steps otherwise."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TaskID, TextColumn, TransferSpeedColumn

    from dpbench.tasks.registry import get_source
    from dpbench.transport.fetch import STATE, fetch_source

    source = get_source(name)
    console.print(f"{source.title}\nlicence: [bold]{source.licence}[/]  ({source.url})")
    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  console=console, transient=True) as progress:
        bars: dict[str, TaskID] = {}

        def on_progress(file: str, done: int, total: int) -> None:
            if file not in bars:
                bars[file] = progress.add_task(file, total=total or None)
            progress.update(bars[file], completed=done, total=total or None)

        report = fetch_source(source, to, accept_licence=accept_licence, retries=retries, timeout=timeout,
                              progress=on_progress)
    if report.manual is not None:
        console.print(f"[yellow]{name} cannot be downloaded automatically[/] ({source.availability}).\n"
                      f"{report.manual}")
        raise typer.Exit(1)
    for file in report.pinned_now:
        console.print(f"[yellow]note:[/] {file} has no published checksum; its sha256 is now pinned in "
                      f"{report.folder / STATE} and later fetches must match it")
    console.print(f"{name}: fetched {len(report.fetched)}, reused {len(report.reused)}, unpacked "
                  f"{len(report.extracted)} file(s) into {report.folder} in {report.seconds:.1f} s; "
                  f"build with: dpbench build --pool <pool> --raw {to}")
