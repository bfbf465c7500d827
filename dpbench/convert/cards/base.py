"""What every task-card converter shares: the card, label lookup, readable-file and class checks, unique keys."""

from __future__ import annotations

import dataclasses
import hashlib
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from dpbench.convert.base import Converter, safe_key
from dpbench.convert.imaging import image_size
from dpbench.errors import RawDataError
from dpbench.tasks.cards import TaskCard
from dpbench.tasks.models import SPLITS, SplitName, Task
from dpbench.tasks.samples import Sample


class CardConverter(Converter):
    """Base of the converters of a task card's data (subclasses implement :meth:`items`)."""

    #: What the card's data are, for messages ("the folder X", "the table X", ...).
    where = ""

    def __init__(self, task: Task, card: TaskCard, base: Path) -> None:
        self.card = card
        self.base = base
        self.index = {name: i for i, name in enumerate(card.classes)}
        self.unknown: dict[str, str] = {}  # label not in the card → where it was first seen
        super().__init__(task, self.data_root())

    def data_root(self) -> Path:
        """The folder sample sources are relative to (the data folder; a table's own folder)."""
        return self.base / self.card.data.path

    def items(self) -> Iterable[Sample]:
        """The samples of the data, keys not yet made unique (see :meth:`scan`)."""
        raise NotImplementedError

    # -- shared checks ------------------------------------------------------------------------------------
    def label(self, name: str, where: str) -> int | None:
        """The class index of ``name``, or None (remembered, and refused at the end of the scan)."""
        if name in self.index:
            return self.index[name]
        self.unknown.setdefault(name, where)
        return None

    def readable(self, path: Path) -> None:
        """Refuse an image file whose header cannot be read (a truncated file is caught when it is decoded)."""
        try:
            image_size(path)
        except RawDataError as exc:
            raise RawDataError(f"{self.task.name}: cannot read image {path} (damaged, or not a PNG, JPEG, BMP or "
                               "TIFF image); fix, convert or remove it") from exc

    def split_value(self, text: str, where: str) -> SplitName | None:
        """A prescribed split from a split column: train, val, test, or None for an empty cell."""
        value = text.strip().lower()
        if not value:
            return None
        for name in SPLITS:
            if value == name:
                return name
        raise RawDataError(f"{where}: split {text!r} is not train, val, test or empty; fix the "
                           f"{self.card.split.column!r} column")

    def scan(self) -> list[Sample]:
        found = list(self.items())
        if self.unknown:
            shown = ", ".join(f"{name!r} ({where})" for name, where in list(self.unknown.items())[:4])
            more = f" and {len(self.unknown) - 4} more" if len(self.unknown) > 4 else ""
            raise RawDataError(f"{self.task.name}: label(s) {shown}{more} are not classes of the card "
                               f"({', '.join(self.card.classes)}); add them to classes or fix the data")
        if not found:
            raise RawDataError(f"{self.task.name}: no images found in {self.where or self.root} (skipped: "
                               f"{dict(self.skipped) or 'none'}); check data.path in the card")
        present = Counter(s.label for s in found)
        empty = [name for name, i in self.index.items() if not present[i]]
        if empty:
            raise RawDataError(f"{self.task.name}: class(es) {', '.join(empty)} of the card have no images in "
                               f"{self.where or self.root} (skipped: {dict(self.skipped) or 'none'}); add images of "
                               "every class, or remove the class from the card")
        return unique_keys(found)


def unique_keys(samples: list[Sample]) -> list[Sample]:
    """``samples`` with every key that more than one of them has suffixed by a short hash of its source and crop
    (deterministic: the same files give the same keys)."""
    counts = Counter(s.key for s in samples)
    out = []
    for sample in samples:
        if counts[sample.key] > 1:
            digest = hashlib.sha256(f"{sample.source}|{sample.coords}".encode()).hexdigest()[:8]
            sample = dataclasses.replace(sample, key=safe_key(sample.key, digest))
        out.append(sample)
    return out
