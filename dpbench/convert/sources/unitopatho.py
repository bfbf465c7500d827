"""UniToPatho (IEEE DataPort): the 800 um subset, class folders of 1812 px PNG crops with train/test CSVs.

Raw layout (under ``<raw>/unitopatho/``, optionally inside the archive's ``unitopath-public/`` folder)::

    800/HP/<image_id>.png ...        one folder per class: HP NORM TA.HG TA.LG TVA.HG TVA.LG
    800/train.csv, 800/test.csv      columns include image_id, top_label_name, wsi (others are not read)

Each CSV row is one crop at ``800/<top_label_name>/<image_id>``, labelled by ``top_label_name``. The CSV
file is the official split: test.csv rows are pinned to test, train.csv rows are shared by dpbench between
train and val (about 10%, by slide). Groups are the ``wsi`` column (one slide per patient in UniToPatho),
so val and test are patient-disjoint from train. Crops (1812x1812 px at 0.4415 um/px) are downsampled by
exactly 2 to 906x906 (0.883 um/px, Lanczos) to keep shards a quarter of the raw size. Keys are the image id
with characters other than letters, digits, ``_`` and ``-`` replaced by ``_`` and, when any was replaced, an
8-hex digest of the original id appended (so keys stay unique). The other subsets (7000, 800_224, ...) are
not read. An unknown class folder or label, a row without an image id or slide, an image listed twice or
missing on disk stops the conversion with the file and line named; a PNG listed in neither CSV is skipped
and counted.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

from dpbench.convert.base import Converter, key_safe, read_rows, subfolders
from dpbench.errors import RawDataError
from dpbench.tasks.models import SplitName, Task
from dpbench.tasks.samples import Sample

SOURCE_IDS = ("unitopatho",)
SUBSET = "800"
#: CSV file → official split (None: shared between train and val by dpbench)
TABLES: tuple[tuple[str, SplitName | None], ...] = (("train.csv", None), ("test.csv", "test"))
COLUMNS = ("image_id", "top_label_name", "wsi")


def image_key(image_id: str) -> str:
    """A shard-safe key for ``image_id`` (unique: a digest is appended whenever a character was replaced)."""
    stem = image_id[:-4] if image_id.lower().endswith(".png") else image_id
    clean = key_safe(stem, "_")
    if clean == stem:
        return clean
    return f"{clean}-{hashlib.sha256(image_id.encode()).hexdigest()[:8]}"


def locate(task: Task, raw: Path) -> Path | None:
    """``raw/unitopatho`` when it holds the 800 subset directly or inside ``unitopath-public/``."""
    folder = raw / task.source.folder
    for base in (folder, folder / "unitopath-public"):
        if (base / SUBSET).is_dir():
            return base
    return folder if folder.is_dir() else None


class UniToPatho(Converter):
    """Rows of train.csv / test.csv; test pinned; grouped by slide; crops halved to 906 px."""

    resize_to = 906

    def scan(self) -> Iterator[Sample]:
        base = self.root / SUBSET
        if not base.is_dir():
            raise RawDataError(f"missing {base}: extract the UniToPatho archive so that its 800/ subset sits in "
                               f"{self.root}")
        index = {name: i for i, name in enumerate(self.task.class_names)}
        for folder in subfolders(base):
            if folder.name not in index:
                raise RawDataError(f"unknown class folder {folder}: expected one of "
                                   f"{', '.join(self.task.class_names)}")
        listed: set[str] = set()
        paths: set[Path] = set()
        for table_name, split in TABLES:
            for line, row in self._rows(base / table_name):
                image_id, label, wsi = (row[c] for c in COLUMNS)
                where = f"{base / table_name} line {line}"
                if label not in index or not image_id or not wsi:
                    raise RawDataError(f"{where}: malformed row (image {image_id!r}, label {label!r}, "
                                       f"wsi {wsi!r}); expected one of {', '.join(index)} and a slide id")
                if image_id in listed:
                    raise RawDataError(f"{where}: image {image_id} is listed twice in train.csv/test.csv")
                listed.add(image_id)
                path = base / label / image_id
                if not path.is_file():
                    raise RawDataError(f"missing raw file {path} (listed on {where}); re-extract the archive")
                paths.add(path)
                yield Sample(key=image_key(image_id), group=wsi, label=index[label], source=self.rel(path),
                             um_per_px=self.task.um_per_px, split=split)
        for path in sorted(base.glob("*/*")):
            if path.is_file() and path not in paths:
                self.skip("not listed in train.csv or test.csv", path)

    @staticmethod
    def _rows(table: Path) -> Iterator[tuple[int, dict[str, str]]]:
        if not table.is_file():
            raise RawDataError(f"missing {table}; re-extract the UniToPatho archive")
        yield from read_rows(table, COLUMNS)


def converter(task: Task, root: Path) -> Converter:
    """The converter of UniToPatho over ``root``."""
    return UniToPatho(task, root)
