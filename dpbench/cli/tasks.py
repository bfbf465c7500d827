"""``dpbench tasks``, ``tasks show``, ``tasks init``, ``pools`` and ``docs``: the registry, and your own task cards,
as tables, cards and pages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.panel import Panel

from dpbench.cli.output import emit, format_option
from dpbench.cli.support import console, fail, friendly
from dpbench.errors import DpbenchError
from dpbench.tasks.cards import CARD_SUFFIXES, TaskCard, card_json, load_card, stored_card
from dpbench.tasks.models import Task
from dpbench.tasks.registry import all_tasks, get_pool, get_task, pool_version, pools

tasks_app = typer.Typer(help="The task registry, and your own task cards (tasks init, --cards, --data).")
DATA_HELP = "A pool built from your task cards (dpbench build --task CARD --out DIR): list its tasks."
CARDS_HELP = "A task card, or a folder of task cards (.yaml, .yml, .json): list their tasks."


def _record(t: Task) -> dict[str, Any]:
    s = t.sizes
    return {"task": t.name, "abbr": t.abbreviation, "type": t.origin, "organ": t.organ, "stain": t.stain,
            "classes": t.n_classes, "metric": t.metric, "split by": t.split_unit, "train": s.train.images,
            "val": s.val.images, "test": s.test.images, "availability": t.availability, "licence": t.licence,
            "role": t.role}


@tasks_app.callback(invoke_without_command=True)
@friendly
def tasks_table(
    ctx: typer.Context,
    availability: str | None = typer.Option(None, help="public, registration, private or synthetic."),
    licence: str | None = typer.Option(None, help="Licence id, e.g. CC0-1.0 or CC-BY-4.0."),
    pool: str | None = typer.Option(None, help="Only the tasks of this pool."),
    data: Path | None = typer.Option(None, help=DATA_HELP),
    cards: Path | None = typer.Option(None, help=CARDS_HELP),
    format: str = format_option(),
) -> None:
    """List registered tasks (filters combine), or your own tasks (--cards, --data)."""
    if ctx.invoked_subcommand:
        return
    if data or cards:
        _own_table(data, cards, format)
        return
    names = get_pool(pool).tasks if pool else tuple(all_tasks())
    rows = [get_task(n) for n in names]
    rows = [t for t in rows if (availability is None or t.availability == availability)
            and (licence is None or t.licence.lower() == licence.lower())]
    if not rows:
        raise fail("no task matches these filters")
    emit([_record(t) for t in rows], format, title=f"{len(rows)} task(s)" + (f" of pool {pool}" if pool else ""),
         caption="train / val / test: images per split", right=("classes", "train", "val", "test"))


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
            found.append((card, {str(s): f"{e.images} ({e.groups})" for s, e in entry.splits.items()}))
        return f"{len(found)} task(s) of your pool {manifest.pool} (version {manifest.pool_version})", found
    assert cards is not None
    loaded: list[tuple[TaskCard, dict[str, Any]]] = [(load_card(path), {}) for path in _card_files(cards)]
    return f"{len(loaded)} task card(s) in {cards} (not built yet)", loaded


def _own_table(data: Path | None, cards: Path | None, format: str) -> None:
    title, found = _own_cards(data, cards)
    records = []
    for card, cells in found:
        records.append({"task": card.name, "pool": card.pool_name, "classes": list(card.classes),
                        "metric": card.metric, "split by": card.split_unit, "organ": card.organ_other or card.organ,
                        "stain": card.stain_other or card.stain, "train": cells.get("train"),
                        "val": cells.get("val"), "test": cells.get("test"), "data": card.data.kind,
                        "licence": card.licence})
    emit(records, format, title=title, caption="your own tasks, from task cards: not dpbench benchmark tasks; "
         "train / val / test: images (groups)")


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
def pools_table(format: str = format_option()) -> None:
    """List the pools with their versions."""
    records = []
    for pool in pools().values():
        members = [get_task(n) for n in pool.tasks]
        records.append({"pool": pool.name, "version": pool_version(pool), "tasks": len(members),
                        "classes": sum(t.n_classes for t in members), "images": sum(t.sizes.images for t in members),
                        "description": pool.description})
    emit(records, format, title="pools", right=("tasks", "classes", "images"))


@friendly
def docs(ctx: typer.Context,
         out: Path = typer.Option(Path("docs"), help="Docs folder whose generated pages are rewritten.")) -> None:
    """Regenerate the generated pages: task cards and source pages from the registry, cli.md from the commands."""
    from dpbench.cli.clidoc import render_cli_doc
    from dpbench.cli.taskdocs import write_task_docs
    from dpbench.io import atomic_write_bytes

    written = write_task_docs(out)
    atomic_write_bytes(out / "cli.md", render_cli_doc(ctx.find_root().command).encode())
    console.print(f"wrote {len(written) + 1} pages under {out}")


