"""Janowczyk tutorial use case 5 (mitosis): H&E fields with mitosis-centre masks, cut into 250 px patches.

Raw layout (the tutorial's archive extracted under ``<raw>/janowczyk_mitosis/``, any sub-folder depth)::

    01_01.tif        PP_NN.tif: patient PP (two digits), field NN
    01_01_pc.png     ground truth: non-zero pixels mark the mitosis centres of 01_01.tif

Each connected component (8-connected) of non-zero pixels in a ``*_pc.png`` mask is one mitosis, located at
the component's centroid; the mask must have the image's size. A field without a ``_pc.png`` is treated as
holding no mitosis (patient 10 has none) and the number of such fields is logged. A ``.tif`` not named
``PP_NN`` is skipped and counted; an unreadable mask is an error naming it.

Patches are 250x250 pixels. Class ``mitosis``: 10 windows around each mitosis, each shifted uniformly by
up to 62.5 px (a quarter of the patch, so the mitosis stays inside) and moved inside the field. Class
``no_mitosis``: tiles covering the field exhaustively with a 50 px overlap (stride 200; the paper gives no
overlap, this is the value dpbench uses for TUPAC16's 250 px patches too), plus a last row/column flush
with the edge, kept only when no mitosis centroid lies inside.

Group: the patient (the file name's first two characters). There is no official split.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from scipy import ndimage

from dpbench.convert.base import Converter
from dpbench.convert.imaging import image_size, read_mask
from dpbench.convert.points import PointConverter
from dpbench.errors import RawDataError
from dpbench.tasks.models import Task
from dpbench.tasks.samples import Sample

SOURCE_IDS = ("janowczyk_mitosis",)
OVERLAP = 50
MASK_SUFFIX = "_pc.png"
_NAME = re.compile(r"^(\d\d)_(\d+)$")
log = logging.getLogger("dpbench.convert")


def mask_centroids(mask: np.ndarray) -> np.ndarray:
    """(N, 2) x, y centroids of the 8-connected components of a boolean mask, in label order."""
    labels, count = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))
    if count == 0:
        return np.empty((0, 2))
    rows_cols = np.array(ndimage.center_of_mass(mask, labels, range(1, count + 1)), dtype=np.float64)
    return rows_cols.reshape(-1, 2)[:, ::-1].copy()


class Janowczyk5(PointConverter):
    """``PP_NN.tif`` fields with ``_pc.png`` centre masks; groups are patients."""

    group_id = re.compile(r"(?:^|/)(?P<id>\d\d)_\d+\.tiff?$", re.IGNORECASE)

    overlap = OVERLAP

    def scan(self) -> Iterator[Sample]:
        index = {name: i for i, name in enumerate(self.task.class_names)}
        images = sorted(p for p in self.root.rglob("*") if p.is_file() and p.suffix.lower() in (".tif", ".tiff"))
        if not images:
            raise RawDataError(f"no PP_NN.tif fields under {self.root}; extract the Janowczyk mitosis archive there")
        unannotated = 0
        for path in images:
            match = _NAME.match(path.stem)
            if match is None:
                self.skip("TIFF not named PP_NN", self.rel(path))
                continue
            mask_path = path.with_name(path.stem + MASK_SUFFIX)
            dimensions: tuple[int, int] | None = None  # read from the image header once
            if mask_path.is_file():
                mitoses, dimensions = self._mitoses(path, mask_path)
            else:
                unannotated += 1
                mitoses = np.empty((0, 2))
            yield from self.point_samples(path, prefix=path.stem, group=f"patient{match.group(1)}",
                                          points=[(index["mitosis"], mitoses)], background=index["no_mitosis"],
                                          dimensions=dimensions)
        if unannotated and unannotated == len(images) - self.skipped["TIFF not named PP_NN"]:
            raise RawDataError(f"no {MASK_SUFFIX} ground-truth mask next to any field under {self.root}; every "
                               "mitosis would become a negative: extract the ground truth with the images")
        if unannotated:
            log.warning("%s: %d field(s) have no %s mask and are taken as mitosis-free", self.task.name,
                        unannotated, MASK_SUFFIX)

    def _mitoses(self, image: Path, mask_path: Path) -> tuple[np.ndarray, tuple[int, int]]:
        """The mitosis centres of ``mask_path`` and the (width, height) of ``image`` it was checked against."""
        mask = read_mask(mask_path)
        width, height = image_size(image)
        if mask.shape != (height, width):
            raise RawDataError(f"{mask_path} is {mask.shape[1]}x{mask.shape[0]} but {image.name} is "
                               f"{width}x{height}; the mask does not belong to this image")
        return mask_centroids(mask), (width, height)


def converter(task: Task, root: Path) -> Converter:
    """The converter of Janowczyk5 over ``root``."""
    return Janowczyk5(task, root)
