"""``dpbench leaderboard ...``: commands that the leaderboard plug-in adds to the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

from dpbench.cli.support import friendly
from dpbench.io import atomic_write_bytes
from dpbench.tasks.registry import get_pool, pool_tasks, pool_version

app = typer.Typer(help="Leaderboard: the board's view of the registry.", no_args_is_help=True)


def board_tasks(pool_name: str) -> dict[str, object]:
    """The metadata the board shows for a pool: the same registry the CLI and docs use."""
    pool = get_pool(pool_name)
    return {
        "pool": pool.name, "version": pool_version(pool), "synthetic": pool.synthetic,
        "tasks": [
            {"name": t.name, "abbreviation": t.abbreviation, "metric": t.metric, "classes": list(t.class_names),
             "role": t.role, "licence": t.licence, "availability": t.availability, "linked": list(t.linked)}
            for t in pool_tasks(pool)
        ],
    }


@app.command("export-tasks")
@friendly
def export_tasks(pool: str = typer.Option("mormont2020", help="Pool to export."),
                 out: Path = typer.Option(..., help="JSON file to write.")) -> None:
    """Write the pool's task metadata as the board consumes it."""
    atomic_write_bytes(out, (json.dumps(board_tasks(pool), indent=1, sort_keys=True) + "\n").encode())
    Console().print(f"wrote {out}")


def register(root: typer.Typer) -> None:
    """Entry point: attach this plug-in's commands to the ``dpbench`` CLI."""
    root.add_typer(app, name="leaderboard")
