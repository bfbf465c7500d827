"""Shared CLI plumbing: one clear error line instead of a traceback, one console."""

from __future__ import annotations

import difflib
import functools
import math
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, ParamSpec, TypeVar, get_args

import typer
from rich.console import Console

from dpbench.errors import DpbenchError, RegistryError, out_of_memory
from dpbench.io import TMP_MARK

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
    """Turn the project's user-facing errors, and running out of memory, into one line on stderr and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except (DpbenchError, RegistryError) as exc:
            raise fail(str(exc).strip("'\"")) from None
        except KeyboardInterrupt:
            raise fail("interrupted; rerun the same command to resume", 130) from None
        except (MemoryError, RuntimeError) as exc:  # torch's OutOfMemoryError is a RuntimeError
            if not out_of_memory(exc):
                raise
            said = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise fail(f"out of memory ({type(exc).__name__}: {said[:160]}); rerun with a lower --batch-size (or "
                       "a smaller --size / fewer --max-batches where the command has them) or on a device with more "
                       "memory; finished work is kept: rerun to resume (pretrain: add --resume)") from None

    return wrapper


def choice(option: str, values: Any) -> Callable[[str], str]:
    """A typer ``parser`` for a closed set of values (a ``Literal`` type, which ``--help`` lists): a value outside
    it is one error line naming the choices, and the closest one."""
    allowed = tuple(str(v) for v in get_args(values))

    def parse(text: str) -> str:
        if text in allowed:
            return text
        close = difflib.get_close_matches(text, allowed, n=1)
        raise fail(f"{option} {text!r} is not one of {', '.join(allowed)}"
                   + (f"; did you mean {option} {close[0]}?" if close else ""))

    return parse


def integer(option: str, low: int) -> Callable[[str], int]:
    """A typer ``parser`` for a whole number ≥ ``low``, or one error line."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if value < low:
            raise fail(f"{option} must be a whole number >= {low}, got {text!r}")
        return value

    return parse


def fraction(option: str) -> Callable[[str], float]:
    """A typer ``parser`` for a number strictly between 0 and 1 (a level or a probability), or one error line."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not 0 < value < 1:  # also refuses NaN
            raise fail(f"{option} must be a number between 0 and 1 (exclusive), got {text!r}")
        return value

    return parse


#: ``--device`` values: a closed set of forms (``cuda:N`` picks a GPU); ``auto`` is CUDA when available.
DEVICES = "auto|cpu|cuda|cuda:N|mps"


def device(text: str) -> str:
    """A typer ``parser`` for ``--device``: one of :data:`DEVICES`, or one error line."""
    if re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", text):
        return text
    close = difflib.get_close_matches(text, DEVICES.split("|"), n=1)
    raise fail(f"--device {text!r} is not one of {DEVICES.replace('|', ', ')}"
               + (f"; did you mean --device {close[0]}?" if close else ""))


def writable(folder: Path, option: str) -> None:
    """Create ``folder`` if needed and prove it writable before any work, or raise one error naming ``option``."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=f".probe{TMP_MARK}"):
            pass
    except OSError as exc:
        raise DpbenchError(f"cannot write to {folder}: {exc.strerror or type(exc).__name__}; "
                           f"choose another {option}") from None
