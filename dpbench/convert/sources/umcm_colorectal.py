"""UMCM Colorectal (Kather et al. 2016): the Zenodo archive's class folders of 150 px TIFF tiles.

Raw layout (``Kather_texture_2016_image_tiles_5000.zip`` extracted under ``<raw>/umcm_colorectal/``)::

    Kather_texture_2016_image_tiles_5000/01_TUMOR/<id>_CRC-Prim-HE-<nn>_<...>.tif
    ...                                 /08_EMPTY/...

The tiles are kept whole. No patient ids are published, so every tile is its own group (an image-level
split; the paper's 6/4 patient split cannot be rebuilt). A class folder that is not one of the eight
known ``NN_CLASS`` names stops the conversion, so no tile is ever given a guessed label.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from dpbench.convert.base import Converter
from dpbench.errors import RawDataError
from dpbench.tasks.models import Task
from dpbench.tasks.samples import Sample

SOURCE_IDS = ("umcm_colorectal",)
ARCHIVE_DIR = "Kather_texture_2016_image_tiles_5000"
_FOLDER = re.compile(r"^\d\d_([A-Z]+)$")
_IMAGE_EXT = {".tif", ".tiff", ".png"}


class UmcmColorectal(Converter):
    """Folder-per-class tiles; one group per tile."""

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
                key = f"{match.group(1)}-{path.stem}"
                yield Sample(key=key, group=key, label=index[match.group(1)], source=self.rel(path),
                             um_per_px=self.task.um_per_px)


def converter(task: Task, root: Path) -> Converter:
    """The converter of UmcmColorectal over ``root``."""
    return UmcmColorectal(task, root)
