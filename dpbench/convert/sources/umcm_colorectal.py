"""UMCM Colorectal (Kather et al. 2016): the Zenodo archive's class folders of 150 px TIFF tiles.

Raw layout (``Kather_texture_2016_image_tiles_5000.zip`` extracted under ``<raw>/umcm_colorectal/``)::

    Kather_texture_2016_image_tiles_5000/01_TUMOR/<hex>_CRC-Prim-HE-<slide>_<image>.tif_Row_<r>_Col_<c>.tif
    ...                                 /08_EMPTY/...

e.g. ``01_TUMOR/A26A_CRC-Prim-HE-05_008.tif_Row_151_Col_1.tif``: tile (row 151, column 1) of source image
``CRC-Prim-HE-05_008.tif`` of slide ``CRC-Prim-HE-05``. The tiles are kept whole. The group is the slide
(``CRC-Prim-HE-01`` to ``-10``: the ten slides of the release, taken as the paper's ten patients), so every
tile of a slide, whatever its source image, lands in one split; a tile name without a slide id stops the
conversion. The sample key is ``<CLASS>-<name without the last extension>`` with every character a shard key
cannot hold (the ``.`` of the inner ``.tif``) replaced by ``-``. A class folder that is not one of the eight
known ``NN_CLASS`` names stops the conversion, so no tile is ever given a guessed label.

Checked against the real names: all 5,000 tile paths of the release as listed in ``data/colorectal/train.csv``
and ``test.csv`` of GitHub ``EvelynChee/LO2LN`` (the tests build a tree with those names and stand-in pixels;
that repository's own train/test split is by tile and mixes the slides). Assumption: one slide per patient
(the release names slides, not patients).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from dpbench.convert.base import Converter, safe_key
from dpbench.errors import RawDataError
from dpbench.tasks.models import Task
from dpbench.tasks.samples import Sample

SOURCE_IDS = ("umcm_colorectal",)
ARCHIVE_DIR = "Kather_texture_2016_image_tiles_5000"
#: The slide id of a tile name (``CRC-Prim-HE-05``), the group of its tiles.
SLIDE = re.compile(r"(?P<id>CRC-Prim-HE-\d+)")
_FOLDER = re.compile(r"^\d\d_([A-Z]+)$")
_IMAGE_EXT = {".tif", ".tiff", ".png"}


class UmcmColorectal(Converter):
    """Folder-per-class tiles; one group per slide."""

    group_id = SLIDE
    group_id_kind = "slide"

    def scan(self) -> Iterator[Sample]:
        base = self.root / ARCHIVE_DIR if (self.root / ARCHIVE_DIR).is_dir() else self.root
        index = {name: i for i, name in enumerate(self.task.class_names)}
        folders = sorted(p for p in base.iterdir() if p.is_dir())
        if not folders:
            raise RawDataError(f"{base} holds no class folders; extract {ARCHIVE_DIR}.zip there")
        for folder in folders:
            match = _FOLDER.match(folder.name)
            if not match or match.group(1) not in index:
                raise RawDataError(f"unknown class folder {folder}: expected one of "
                                   f"{', '.join(f'NN_{c}' for c in self.task.class_names)}")
            for path in sorted(folder.iterdir()):
                if path.suffix.lower() not in _IMAGE_EXT:
                    self.skip("not an image file", path)
                    continue
                slide = SLIDE.search(path.name)
                if slide is None:
                    raise RawDataError(f"{path}: no slide id (CRC-Prim-HE-<nn>) in the tile name, so its patient "
                                       f"is unknown; keep the names of {ARCHIVE_DIR}.zip as extracted")
                yield Sample(key=safe_key(match.group(1), path.stem), group=slide["id"],
                             label=index[match.group(1)], source=self.rel(path), um_per_px=self.task.um_per_px)


def converter(task: Task, root: Path) -> Converter:
    """The converter of UmcmColorectal over ``root``."""
    return UmcmColorectal(task, root)
