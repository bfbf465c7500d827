"""Janowczyk use case 7 (lymphoma): 1388x1040 H&E images of CLL, FL and MCL cut into 384 px tiles.

Raw layout (``lymphoma.tar.gz`` extracted under ``<raw>/janowczyk_lymphoma/``, directly or inside one
folder)::

    CLL/<image>.tif     chronic lymphocytic leukaemia
    FL/<image>.tif      follicular lymphoma
    MCL/<image>.tif     mantle cell lymphoma

Each image is cut into non-overlapping 384x384 px tiles, as many as fit (``width // 384`` by
``height // 384``: 3x2 = 6 for the 1388x1040 images, 374 x 6 = 2,244, the paper's count). The tile grid is
centred in the image, so the unused margin (236 px across, 272 px down) is split evenly between opposite
borders; the paper does not say where its grid sat. Tiles keep their native resolution and the label of
their image's folder.

No patient ids exist, so the group is the source image: the six tiles of one image always land in the same
split (tiles of one image are near-duplicates in stain and tissue, and splitting them would leak). The
paper's 374 "patients" are these images. No official split exists.

A folder other than CLL, FL and MCL, or a missing one of the three, stops the conversion with an error
naming it; images smaller than one tile and non-image files are skipped and counted.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from dpbench.convert.base import IMAGE_EXT, Converter, safe_key, subfolders
from dpbench.convert.imaging import image_size
from dpbench.errors import RawDataError
from dpbench.tasks.models import Task
from dpbench.tasks.samples import Sample

SOURCE_IDS = ("janowczyk_lymphoma",)
TILE = 384


def centred_grid(width: int, height: int, size: int) -> list[tuple[int, int]]:
    """Top-left corners of the non-overlapping ``size`` px tiles that fit, centred in the image, row by row."""
    cols, rows = width // size, height // size
    x0, y0 = (width - cols * size) // 2, (height - rows * size) // 2
    return [(x0 + i * size, y0 + j * size) for j in range(rows) for i in range(cols)]


class JanowczykLymphoma(Converter):
    """Folder-per-class images, tiled 384 px on a centred grid; one group per source image."""

    def base(self) -> Path:
        """The folder holding the class folders (the source folder or its only sub-folder)."""
        names = set(self.task.class_names)
        visible = subfolders(self.root)
        if any(p.name in names for p in visible) or len(visible) != 1:
            return self.root
        return visible[0]

    def scan(self) -> Iterator[Sample]:
        base = self.base()
        index = {name: i for i, name in enumerate(self.task.class_names)}
        folders = subfolders(base)
        for folder in folders:
            if folder.name not in index:
                raise RawDataError(f"unknown class folder {folder}: expected only "
                                   f"{', '.join(self.task.class_names)}")
        missing = sorted(set(index) - {p.name for p in folders})
        if missing:
            raise RawDataError(f"{base} lacks the class folder(s) {', '.join(missing)}; re-extract lymphoma.tar.gz")
        for folder in folders:
            for path in sorted(p for p in folder.iterdir() if not p.name.startswith(".")):
                if not path.is_file() or path.suffix.lower() not in IMAGE_EXT:
                    self.skip("not an image file", path)
                    continue
                corners = centred_grid(*image_size(path), TILE)
                if not corners:
                    self.skip(f"image smaller than one {TILE} px tile", path)
                    continue
                group = safe_key(folder.name, path.stem)
                for n, (x, y) in enumerate(corners):
                    yield Sample(key=safe_key(group, f"t{n}"), group=group, label=index[folder.name],
                                 source=self.rel(path), coords=(x, y, TILE, TILE), um_per_px=self.task.um_per_px)


def converter(task: Task, root: Path) -> Converter:
    """The converter of JanowczykLymphoma over ``root``."""
    return JanowczykLymphoma(task, root)
