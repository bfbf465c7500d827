"""NCT-CRC-HE-100K + CRC-VAL-HE-7K (Zenodo 1214456): two archives of class folders of 224 px TIFF tiles.

Raw layout (both zips extracted under ``<raw>/nct_crc_he/``)::

    NCT-CRC-HE-100K/ADI/ADI-AAAFLCLY.tif      train/val pool (100,000 tiles, 86 slides)
    NCT-CRC-HE-100K/BACK/...                  one folder per class: ADI BACK DEB LYM MUC MUS NORM STR TUM
    CRC-VAL-HE-7K/ADI/...                     official test set (7,180 tiles, 50 other patients)

Tiles are kept whole (224x224 at 0.5 um/px). CRC-VAL-HE-7K is pinned to ``test``; NCT-CRC-HE-100K is split
into train and val by dpbench. Neither archive names the patient or slide of a tile, so every tile is its
own group: the val split is image-level (tiles of one slide may sit in train and val), while the official
test set stays patient-disjoint from both. Only the colour-normalised NCT-CRC-HE-100K is read, since the
test set is normalised too; an extracted NCT-CRC-HE-100K-NONORM folder is ignored. The class is the folder;
a class folder outside the nine names stops the conversion, and so does a tile whose file-name prefix names
a different class than its folder. Keys are ``nct100k-<stem>`` and ``val7k-<stem>``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from dpbench.convert.base import Converter, key_safe
from dpbench.errors import RawDataError
from dpbench.tasks.models import SplitName, Task
from dpbench.tasks.samples import Sample

SOURCE_IDS = ("nct_crc_he",)
#: (archive folder, official split or None, key prefix)
PARTS: tuple[tuple[str, SplitName | None, str], ...] = (
    ("NCT-CRC-HE-100K", None, "nct100k"),
    ("CRC-VAL-HE-7K", "test", "val7k"),
)
_TIFF = {".tif", ".tiff"}


class NctCrcHe(Converter):
    """Folder-per-class tiles of the two archives; one group per tile; CRC-VAL-HE-7K pinned to test."""

    def scan(self) -> Iterator[Sample]:
        index = {name: i for i, name in enumerate(self.task.class_names)}
        for folder_name, split, prefix in PARTS:
            base = self.root / folder_name
            if not base.is_dir():
                raise RawDataError(f"missing {base}: extract {folder_name}.zip (Zenodo record 1214456) into "
                                   f"{self.root}")
            folders = sorted(p for p in base.iterdir() if p.is_dir())
            if not folders:
                raise RawDataError(f"{base} holds no class folders; re-extract {folder_name}.zip")
            for folder in folders:
                if folder.name.startswith((".", "__MACOSX")):
                    self.skip("archive metadata folder", folder)
                    continue
                if folder.name not in index:
                    raise RawDataError(f"unknown class folder {folder}: expected one of "
                                       f"{', '.join(self.task.class_names)}")
                yield from self._tiles(folder, index, split, prefix)

    def _tiles(self, folder: Path, index: dict[str, int], split: SplitName | None, prefix: str) -> Iterator[Sample]:
        for path in sorted(folder.iterdir()):
            if not path.is_file() or path.suffix.lower() not in _TIFF:
                self.skip("not a TIFF tile", path)
                continue
            named = path.stem.split("-", 1)[0]
            if named in index and named != folder.name:
                raise RawDataError(f"{path} is named as class {named} but sits in the {folder.name} folder; "
                                   "re-extract the archive")
            key = f"{prefix}-{key_safe(path.stem, '_')}"
            yield Sample(key=key, group=key, label=index[folder.name], source=self.rel(path),
                         um_per_px=self.task.um_per_px, split=split)


def converter(task: Task, root: Path) -> Converter:
    """The converter of NctCrcHe over ``root``."""
    return NctCrcHe(task, root)
