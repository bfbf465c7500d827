"""Raw-source converters: one module per source in ``dpbench.convert.sources``.

Each module declares ``SOURCE_IDS`` (the registry source ids it converts) and ``converter(task, root)``
returning a :class:`~dpbench.convert.base.Converter`; it may define ``locate(task, raw)`` when its data do
not sit in ``raw/<source folder>/`` (the default).
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache
from pathlib import Path
from types import ModuleType

from dpbench.convert.base import Converter
from dpbench.errors import RawDataError
from dpbench.tasks.models import Task

__all__ = ["Converter", "RawDataError", "converter_for", "converter_module", "locate", "supported_sources"]


@cache
def _modules() -> dict[str, ModuleType]:
    from dpbench.convert import sources

    found: dict[str, ModuleType] = {}
    for info in sorted(pkgutil.iter_modules(sources.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{sources.__name__}.{info.name}")
        for source_id in module.SOURCE_IDS:
            if source_id in found:
                raise RuntimeError(f"source {source_id} has two converters: {found[source_id].__name__}, "
                                   f"{module.__name__}")
            found[source_id] = module
    return found


def supported_sources() -> frozenset[str]:
    """Source ids that have a converter."""
    return frozenset(_modules())


def converter_module(task: Task) -> ModuleType | None:
    """The converter module of ``task``'s source, if any."""
    return _modules().get(task.source.id)


def locate(task: Task, raw: Path) -> Path | None:
    """Where ``task``'s raw data sit under ``raw``, or None when they are absent."""
    module = converter_module(task)
    if module is not None and hasattr(module, "locate"):
        found: Path | None = module.locate(task, raw)
        return found
    folder = raw / task.source.folder
    return folder if folder.is_dir() else None


def converter_for(task: Task, raw: Path) -> Converter:
    """The converter of ``task`` over the raw data under ``raw`` (a one-line error when it cannot be built)."""
    module = converter_module(task)
    if module is None:
        raise RawDataError(f"task {task.name}: no converter for source {task.source.id} in this version")
    root = locate(task, raw)
    if root is None:
        raise RawDataError(f"task {task.name}: raw data of {task.source.id} not found in {raw} (expected "
                           f"{raw / task.source.folder}); see `dpbench sources list`")
    made: Converter = module.converter(task, root)
    return made
