"""Shared CLI plumbing: one clear error line instead of a traceback, one console."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer
from rich.console import Console

from dpbench.errors import DpbenchError, RegistryError

P = ParamSpec("P")
R = TypeVar("R")

#: The encoder spec forms, for help texts (the full list with details: dpbench.encoders.SPEC_FORMS).
SPECS = ("random[:SEED], torchvision:NAME[:WEIGHTS], timm:NAME[:random], torchscript:PATH, python:MODULE:ATTR, "
         "checkpoint:PATH")

console = Console()
err_console = Console(stderr=True)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print ``error: message`` on stderr and return the Exit to raise."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def friendly(func: Callable[P, R]) -> Callable[P, R]:
    """Turn the project's user-facing errors into one line on stderr and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except (DpbenchError, RegistryError) as exc:
            raise fail(str(exc).strip("'\"")) from None
        except KeyboardInterrupt:
            raise fail("interrupted; rerun the same command to resume", 130) from None

    return wrapper
