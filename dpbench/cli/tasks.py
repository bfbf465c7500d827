"""``dpbench tasks``, ``tasks show``, ``pools`` and ``docs``: the registry as tables, cards and pages."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.panel import Panel
from rich.table import Table

from dpbench.cli.support import console, fail, friendly
from dpbench.tasks.models import Task
from dpbench.tasks.registry import all_tasks, get_pool, get_task, pool_version, pools

tasks_app = typer.Typer(help="The task registry.")


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
    from dpbench.cli.taskdocs import task_card_lines

    task = get_task(name)
    console.print(Panel("\n".join(task_card_lines(task, markdown=False)), title=task.name, expand=False))


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


@friendly
def docs(out: Path = typer.Option(Path("docs"), help="Docs folder whose generated pages are rewritten.")) -> None:
    """Regenerate the task cards and the task index from the registry."""
    from dpbench.cli.taskdocs import write_task_docs

    written = write_task_docs(out)
    console.print(f"wrote {len(written)} pages under {out}")


