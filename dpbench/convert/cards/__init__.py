"""Converters of task cards: a user's class-folder tree, table (CSV/Parquet) or annotated slides, as samples.

:func:`card_source` picks the converter of a card's data form; every form shares :class:`CardConverter`'s checks
(labels in the card, readable files, every class present, unique keys), each refusal naming the file and the fix.
"""

from __future__ import annotations

from pathlib import Path

from dpbench.convert.cards.base import CardConverter
from dpbench.tasks.cards import TaskCard
from dpbench.tasks.models import Task

__all__ = ["CardConverter", "card_source"]


def card_source(card: TaskCard, base: Path, task: Task) -> CardConverter:
    """The converter of ``card``'s data; relative paths in the card are taken from ``base`` (the card's folder)."""
    if card.data.kind == "folders":
        from dpbench.convert.cards.folders import FolderConverter

        return FolderConverter(task, card, base)
    if card.data.kind == "table":
        from dpbench.convert.cards.table import TableConverter

        return TableConverter(task, card, base)
    from dpbench.convert.cards.slides import SlideConverter

    return SlideConverter(task, card, base)
