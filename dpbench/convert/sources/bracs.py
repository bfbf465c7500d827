"""BRACS (ICAR-CNR): the region-of-interest set, one folder per official split and class.

Raw layout (under ``<raw>/bracs/``)::

    BRACS_RoI/latest_version/train/0_N/BRACS_<slide>_N_<n>.png
                                  /1_PB/ ... /6_IC/          classes N PB UDH FEA ADH DCIS IC
                            /val/...
                            /test/...

``BRACS_RoI/latest_version`` may also be given directly as ``<raw>/bracs/latest_version`` or as
``<raw>/bracs`` itself (the folder holding train/val/test). The split folders are the official, patient-wise
splits and are all pinned. The class is the ``<k>_<CLASS>`` folder, whose index must match its name; the
class in the file name must agree with it. Groups are the slide id of the file name (``BRACS_<slide>``):
BRACS links slides to patients only in a separate spreadsheet, which is not read, and the pinned official
splits already keep patients apart. Regions are kept whole at their native size (0.25 um/px, variable,
some very large). An unknown class or split folder, a file name without slide and class, or a disagreeing
class stops the conversion with the path named; non-PNG files are skipped and counted.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from dpbench.convert.base import Converter, subfolders
from dpbench.errors import RawDataError
from dpbench.tasks.models import SPLITS, SplitName, Task
from dpbench.tasks.samples import Sample

SOURCE_IDS = ("bracs",)
_NAME = re.compile(r"^BRACS_(?P<slide>\d+)_(?P<cls>[A-Z]+)_(?P<n>\d+)$")


def _base(root: Path) -> Path:
    """The folder that holds train/val/test."""
    for base in (root / "BRACS_RoI" / "latest_version", root / "latest_version", root):
        if base.is_dir() and any((base / s).is_dir() for s in SPLITS):
            return base
    raise RawDataError(f"no train/val/test folders in {root}: place the BRACS_RoI/latest_version folder of "
                       "the BRACS download there")


class Bracs(Converter):
    """Split/class folders of RoI PNGs; every split pinned; grouped by slide."""

    group_id = re.compile(r"(?:^|/)(?P<id>BRACS_\d+)_[A-Z]+_\d+\.png$")
    group_id_kind = "slide"

    def scan(self) -> Iterator[Sample]:
        base = _base(self.root)
        folders = {f"{i}_{name}": i for i, name in enumerate(self.task.class_names)}
        for entry in subfolders(base):
            if entry.name not in SPLITS:
                raise RawDataError(f"unknown split folder {entry}: expected train, val and test")
        for split in SPLITS:
            if not (base / split).is_dir():
                raise RawDataError(f"missing official split folder {base / split}; re-download BRACS_RoI")
            for folder in subfolders(base / split):
                if folder.name not in folders:
                    raise RawDataError(f"unknown class folder {folder}: expected one of {', '.join(folders)}")
                yield from self._regions(folder, folders[folder.name], split)

    def _regions(self, folder: Path, label: int, split: SplitName) -> Iterator[Sample]:
        for path in sorted(folder.iterdir()):
            if not path.is_file() or path.suffix.lower() != ".png":
                self.skip("not a PNG region", path)
                continue
            match = _NAME.match(path.stem)
            if match is None:
                raise RawDataError(f"cannot read slide and class from {path}: expected "
                                   "BRACS_<slide>_<CLASS>_<n>.png")
            if match.group("cls") != self.task.class_names[label]:
                raise RawDataError(f"{path} is named as class {match.group('cls')} but sits in {folder.name}; "
                                   "re-download BRACS_RoI")
            yield Sample(key=path.stem, group=f"BRACS_{match.group('slide')}", label=label, source=self.rel(path),
                         um_per_px=self.task.um_per_px, split=split)


def converter(task: Task, root: Path) -> Converter:
    """The converter of Bracs over ``root``."""
    return Bracs(task, root)
