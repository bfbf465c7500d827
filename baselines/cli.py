"""``dpbench baselines ...``: commands that the baselines plug-in adds to the CLI."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from dpbench.cli_support import friendly
from dpbench.protocols import loto_folds
from dpbench.tasks.registry import get_pool

app = typer.Typer(help="Baselines: multi-task pre-training and its leave-one-task-out protocol.",
                  no_args_is_help=True)


@app.command("loto")
@friendly
def loto(pool: str = typer.Option("mormont2020", help="Pool whose evaluation tasks are held out."),
         target: list[str] | None = typer.Option(None, help="Held-out task(s); default: evaluation tasks."),
         ) -> None:
    """Show the leave-one-task-out folds: what each pre-training run trains on."""
    table = Table(title=f"LOTO folds of pool {pool}")
    table.add_column("target")
    table.add_column("held out together")
    table.add_column("training tasks", justify="right")
    for fold in loto_folds(get_pool(pool), target):
        table.add_row(fold.target, ", ".join(fold.held_out), str(len(fold.train)))
    Console().print(table)


def register(root: typer.Typer) -> None:
    """Entry point: attach this plug-in's commands to the ``dpbench`` CLI."""
    root.add_typer(app, name="baselines")
