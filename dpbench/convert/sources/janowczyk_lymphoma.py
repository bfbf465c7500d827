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

The group is the case: the image names carry the case (specimen accession) they come from, ``sj-03-2810`` in
``CLL/sj-03-2810_001.tif`` (30 name prefixes, 29 accessions: ``sj-05-6124-R3`` and ``sj-05-6124-R4`` are two
blocks of one accession and stay together), so every tile of every image of a case lands in one split. An
image name without an ``sj-<yy>-<n>`` accession is its own group (a logged count). The paper's 374
"patients" are the images; grouping by image puts every case in several splits. No official
split exists (the tutorial's own five folds split images, not cases).

A folder other than CLL, FL and MCL, or a missing one of the three, stops the conversion with an error
naming it; images smaller than one tile and non-image files are skipped and counted.

Checked against the real names: the 374 image paths of the archive as listed in the tutorial's fold-1 lists
``DL tutorial Code/7-lymphoma/models/train_w32_parent_1.txt`` and ``test_w32_parent_1.txt`` of GitHub
``choosehappy/public`` (113 CLL, 139 FL, 122 MCL). Assumptions: the accession identifies the patient, and the
images are 1388x1040 as published (the tests use stand-in pixels).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

from dpbench.convert.base import IMAGE_EXT, Converter, safe_key, subfolders
from dpbench.convert.imaging import image_size
from dpbench.errors import RawDataError
from dpbench.tasks.models import Task
from dpbench.tasks.samples import Sample

SOURCE_IDS = ("janowczyk_lymphoma",)
TILE = 384
#: The case (specimen accession) in an image path, e.g. ``sj-05-6124`` in ``FL/sj-05-6124-R3_007.tif``.
CASE = re.compile(r"(?:^|/)(?P<id>sj-\d+-\d+)(?=[-_.])", re.IGNORECASE)
log = logging.getLogger("dpbench.convert")


def centred_grid(width: int, height: int, size: int) -> list[tuple[int, int]]:
    """Top-left corners of the non-overlapping ``size`` px tiles that fit, centred in the image, row by row."""
    cols, rows = width // size, height // size
    x0, y0 = (width - cols * size) // 2, (height - rows * size) // 2
    return [(x0 + i * size, y0 + j * size) for j in range(rows) for i in range(cols)]


class JanowczykLymphoma(Converter):
    """Folder-per-class images, tiled 384 px on a centred grid; one group per case."""

    group_id = CASE
    group_id_kind = "case"

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
        without_case = 0
        for folder in folders:
            for path in sorted(p for p in folder.iterdir() if not p.name.startswith(".")):
                if not path.is_file() or path.suffix.lower() not in IMAGE_EXT:
                    self.skip("not an image file", path)
                    continue
                corners = centred_grid(*image_size(path), TILE)
                if not corners:
                    self.skip(f"image smaller than one {TILE} px tile", path)
                    continue
                name = safe_key(folder.name, path.stem)
                case = CASE.search(self.rel(path))
                if case is None:
                    without_case += 1
                group = case["id"].lower() if case else name
                for n, (x, y) in enumerate(corners):
                    yield Sample(key=safe_key(name, f"t{n}"), group=group, label=index[folder.name],
                                 source=self.rel(path), coords=(x, y, TILE, TILE), um_per_px=self.task.um_per_px)
        if without_case:
            log.warning("%s: %d image(s) without an sj-<yy>-<n> case in their name, each its own group",
                        self.task.name, without_case)


def converter(task: Task, root: Path) -> Converter:
    """The converter of JanowczykLymphoma over ``root``."""
    return JanowczykLymphoma(task, root)
