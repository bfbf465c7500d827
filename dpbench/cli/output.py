"""List-like output for scripts and people: ``--format table|csv|json``; a pipe or a file never gets a cut table."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any, Literal

import typer
from rich.console import Console
from rich.table import Table

from dpbench.cli.support import choice, console

#: The formats of every list-like command.
Format = Literal["table", "csv", "json"]
FORMATS = choice("--format", Format)


def format_option() -> Any:
    """The ``--format`` option (one default, one help text for every list-like command)."""
    return typer.Option("table", "--format", parser=FORMATS, metavar="[table|csv|json]",
                        help="table (for people), csv or json (for scripts: raw values, every column whole).")


def table_console() -> Console:
    """The terminal's console, or for a pipe or a file one wide enough that no cell is cut or folded."""
    return console if console.is_terminal else Console(width=100_000, soft_wrap=True)


def cell(value: Any) -> str:
    """A raw value as a table cell: thousands separators, lists joined, ``None`` as ``–``."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list | tuple):
        return ", ".join(map(str, value))
    return str(value)


def emit(records: Sequence[dict[str, Any]], format: str, title: str = "", caption: str | None = None,
         right: Sequence[str] = ()) -> None:
    """Print ``records`` (one dict of raw values per row, same keys in the same order) as a table, CSV or JSON.

    ``right``: the columns a table right-aligns (numbers)."""
    columns = list(records[0]) if records else []
    if format == "json":
        typer.echo(json.dumps(list(records), indent=1, ensure_ascii=False, default=str))
        return
    if format == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(columns)
        for record in records:
            writer.writerow(["" if v is None else ";".join(map(str, v)) if isinstance(v, list | tuple) else v
                             for v in record.values()])
        typer.echo(buffer.getvalue(), nl=False)
        return
    table = Table(title=title or None, caption=caption)
    for column in columns:
        table.add_column(column, justify="right" if column in right else "left")
    for record in records:
        table.add_row(*(cell(v) for v in record.values()))
    table_console().print(table)
