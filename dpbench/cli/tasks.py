"""``dpbench tasks``, ``tasks show``, ``tasks init``, ``pools`` and ``docs``: the registry, and your own task cards,
as tables, cards and pages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.panel import Panel
from rich.table import Table

from dpbench.cli.support import console, fail, friendly
from dpbench.errors import DpbenchError
from dpbench.tasks.cards import CARD_SUFFIXES, TaskCard, card_json, load_card, stored_card
from dpbench.tasks.models import Task
from dpbench.tasks.registry import all_tasks, get_pool, get_task, pool_version, pools

tasks_app = typer.Typer(help="The task registry, and your own task cards (tasks init, --cards, --data).")
DATA_HELP = "A pool built from your task cards (dpbench build --task CARD --out DIR): list its tasks."
CARDS_HELP = "A task card, or a folder of task cards (.yaml, .yml, .json): list their tasks."


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
    data: Path | None = typer.Option(None, help=DATA_HELP),
    cards: Path | None = typer.Option(None, help=CARDS_HELP),
) -> None:
    """List registered tasks as a table (filters combine), or your own tasks (--cards, --data)."""
    if ctx.invoked_subcommand:
        return
    if data or cards:
        _own_table(data, cards)
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


def _card_files(path: Path) -> list[Path]:
    if path.is_dir():
        found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in CARD_SUFFIXES)
        if not found:
            raise DpbenchError(f"no task card (.yaml, .yml, .json) in {path}; write one with: dpbench tasks init DATA")
        return found
    return [path]


def _own_cards(data: Path | None, cards: Path | None) -> tuple[str, list[tuple[TaskCard, dict[str, Any]]]]:
    """(title, [(card, split cells)]) of a built pool's tasks or of card files."""
    if data is not None:
        from dpbench.pool.built import BuiltPool

        manifest = BuiltPool(data).manifest
        found = []
        for entry in manifest.tasks:
            card = stored_card(data / entry.name)
            if card is None:
                raise DpbenchError(f"{data} holds pool {manifest.pool}, a registry pool: list it with dpbench tasks "
                                   f"--pool {manifest.pool}")
            found.append((card, {str(s): f"{e.images:,} ({e.groups})" for s, e in entry.splits.items()}))
        return f"{len(found)} task(s) of your pool {manifest.pool} (version {manifest.pool_version})", found
    assert cards is not None
    loaded: list[tuple[TaskCard, dict[str, Any]]] = [(load_card(path), {}) for path in _card_files(cards)]
    return f"{len(loaded)} task card(s) in {cards} (not built yet)", loaded


def _own_table(data: Path | None, cards: Path | None) -> None:
    title, found = _own_cards(data, cards)
    table = Table(title=title, caption="your own tasks, from task cards: not dpbench benchmark tasks")
    for column in ("task", "pool", "classes", "metric", "split by", "organ", "stain", "train", "val", "test",
                   "data", "licence"):
        table.add_column(column)
    for card, cells in found:
        organ = card.organ_other or card.organ
        stain = card.stain_other or card.stain
        table.add_row(card.name, card.pool_name, ", ".join(card.classes), card.metric, card.split_unit, organ, stain,
                      cells.get("train", "-"), cells.get("val", "-"), cells.get("test", "-"), card.data.kind,
                      card.licence)
    console.print(table)


@tasks_app.command("init")
@friendly
def tasks_init(
    data: Path = typer.Argument(..., help="Your data: a class-folder tree, a folder of annotated slides, or a CSV or "
                                "Parquet table (path,label,group[,split])."),
    out: Path | None = typer.Option(None, help="Card file to write (default: DATA/task.yaml, or <table>.task.yaml "
                                    "beside a table)."),
    name: str | None = typer.Option(None, help="Task name (default: from the folder or table name)."),
    force: bool = typer.Option(False, help="Overwrite an existing card."),
) -> None:
    """Scan your data and write a task card for you to edit, then build it with dpbench build --task CARD."""
    import yaml

    from dpbench.convert.cards.draft import draft_card, render_card
    from dpbench.io import atomic_write_bytes
    from dpbench.tasks.cards import parse_card

    if not data.exists():
        raise DpbenchError(f"{data} does not exist; give your data folder or table")
    card = out or (data.with_name(f"{data.stem}.task.yaml") if data.is_file() else data / "task.yaml")
    if card.exists() and not force:
        raise DpbenchError(f"{card} exists; edit it, or pass --force to write a new one (or --out elsewhere)")
    draft = draft_card(data, card, name)
    text = render_card(draft.fields)
    parse_card(yaml.safe_load(text), card)  # the draft is a valid card before anyone edits it
    try:
        atomic_write_bytes(card, text.encode())
    except OSError as exc:
        raise DpbenchError(f"cannot write {card} ({exc.strerror}); choose another --out") from None
    for note in draft.notes:
        console.print(("[yellow]" if note.startswith("WARNING") else "") + note, highlight=False)
    console.print(f"wrote {card}: check classes, split_unit, licence, organ, stain and µm/px, then build it:\n"
                  f"  dpbench build --task {card} --out DIR", highlight=False)


@tasks_app.command("show")
@friendly
def tasks_show(name: str = typer.Argument(..., help="Task name (see `dpbench tasks`)."),
               data: Path | None = typer.Option(None, help="A pool built from task cards holding the task.")) -> None:
    """Print one task card (a registry task, or with --data a task of your own pool)."""
    from dpbench.cli.taskdocs import task_card_lines

    if data is not None:
        card = stored_card(data / name)
        if card is None:
            raise DpbenchError(f"no task card of {name} in {data}; see dpbench tasks --data {data}")
        lines = [f"{k}: {v}" for k, v in card_json(card).items() if v not in (None, "", [], {})]
        console.print(Panel("\n".join(lines), title=f"{card.name} (your task card)", expand=False), highlight=False)
        return
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


