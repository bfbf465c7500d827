"""The ``dpbench`` command line: one typer app, each command group in its own module, plug-ins added last."""

from __future__ import annotations

from importlib.metadata import entry_points

import typer

from dpbench import __version__
from dpbench.cli.audit import audit_command
from dpbench.cli.build import build, verify
from dpbench.cli.check_encoder import check_encoder_command
from dpbench.cli.distribute import download_command, publish_command
from dpbench.cli.doctor import doctor_command
from dpbench.cli.encoders import encoders_app
from dpbench.cli.evaluate import eval_command
from dpbench.cli.rank import rank
from dpbench.cli.sources import sources_app
from dpbench.cli.support import console, fail
from dpbench.cli.tasks import docs, pools_table, tasks_app

app = typer.Typer(help="dpbench: benchmark digital-pathology encoders on grouped, sharded tasks.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
#: The help panels that group ``dpbench --help`` by what a user wants to do (plug-ins use them too).
DATA, EVALUATE, COMPARE, SETUP = "Tasks and data", "Evaluate an encoder", "Compare and publish", "Set-up"
app.add_typer(tasks_app, name="tasks", rich_help_panel=DATA)
app.add_typer(tasks_app, name="task", hidden=True)  # `dpbench task init DIR` reads as well
app.add_typer(sources_app, name="sources", rich_help_panel=DATA)
app.add_typer(encoders_app, name="encoders", rich_help_panel=EVALUATE)


def _version(value: bool) -> None:
    if value:
        console.print(f"dpbench {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """dpbench: benchmark digital-pathology encoders on grouped, sharded tasks."""


for name, command, panel in (
        ("pools", pools_table, DATA), ("build", build, DATA), ("verify", verify, DATA), ("audit", audit_command, DATA),
        ("download", download_command, DATA), ("check-encoder", check_encoder_command, EVALUATE),
        ("eval", eval_command, EVALUATE), ("rank", rank, COMPARE), ("publish", publish_command, COMPARE),
        ("doctor", doctor_command, SETUP), ("docs", docs, SETUP)):
    app.command(name, rich_help_panel=panel)(command)


_loaded: list[str] = []


def load_plugins() -> None:
    """Attach the installed plug-ins' commands (entry-point group ``dpbench.cli``) to :data:`app`, once."""
    if _loaded:
        return
    _loaded.append("done")
    for entry in entry_points(group="dpbench.cli"):
        try:
            entry.load()(app)
        except Exception as exc:  # a broken plug-in must not take the core CLI down
            fail(f"plug-in {entry.name!r} failed to load ({exc}); its commands are unavailable", 0)


def main() -> None:
    """Console-script entry point."""
    load_plugins()
    app()
