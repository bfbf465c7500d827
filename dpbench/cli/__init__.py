"""The ``dpbench`` command line (typer + rich): one module per command group; plug-ins register through the
``dpbench.cli`` entry-point group. Heavy modules load inside each command, so ``--help`` stays fast."""

from dpbench.cli.app import app, main

__all__ = ["app", "main"]
