"""Warwick CRCHistoPhenotypes: 500 px H&E images with classified nucleus centres, cut into 100 px tiles.

Raw layout (``CRCHistoPhenotypes_2016_04_28.zip`` extracted under ``<raw>/warwick_crc/``; the top folder
``CRCHistoPhenotypes_2016_04_28/`` may be kept or not)::

    Detection/img1/img1.bmp                 the image (500x500 RGB)
    Detection/img1/img1_detection.mat       key ``detection``: every nucleus centre (not used for labels)
    Classification/img1/img1_inflammatory.mat   key ``detection``: N x 2 centres, columns (x, y)
    Classification/img1/img1_{epithelial,fibroblast,others}.mat

The ``.mat`` columns are (x, y), i.e. (column, row) in image pixels; an empty array means no such nucleus.
The image is read from ``Detection/imgN/`` or, failing that, ``Classification/imgN/``.

Each image is cut into a non-overlapping grid of 100x100 tiles (5x5 = 25 per 500 px image, 2,500 in all,
the paper's count; the supplementary calls the tiling "overlapping", but any overlap would exceed that
count). A tile is ``inflammatory`` when the centre of at least one inflammatory nucleus falls inside it
(left/top edges inclusive) and ``other`` otherwise (only epithelial, fibroblast or other nuclei, or none).
No supersampling. A centre outside the image is skipped and counted (the far edge itself is kept, clamped
to the last pixel); an image without ``imgN_inflammatory.mat`` or without a ``Classification/imgN/``
folder is skipped and counted since its labels are unknown; an unreadable ``.mat`` or one without an N x 2
``detection`` array is an error naming it.

Group: the image (no image-to-patient mapping is published). There is no official split.

Assumption, unconfirmed: the ``.mat`` centres are used as 0-based pixel positions. The files come from MATLAB,
whose users crop around them as 1-based spatial coordinates (``imcrop(im, [x-16, y-16, 31, 31])``), while
Python users read them unchanged; no documentation of the base was found. The difference (1 px) only moves
a centre lying within 1 px of a tile edge into the neighbouring tile.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from dpbench.convert.base import Converter
from dpbench.convert.imaging import grid, image_size, points_in
from dpbench.convert.points import PointConverter
from dpbench.errors import RawDataError
from dpbench.tasks.models import Task
from dpbench.tasks.samples import Sample

SOURCE_IDS = ("warwick_crc",)
ARCHIVE_DIR = "CRCHistoPhenotypes_2016_04_28"
POSITIVE = "inflammatory"
_IMAGE = re.compile(r"^img(\d+)$")


def read_centres(path: Path) -> np.ndarray:
    """(N, 2) x, y nucleus centres from a CRCHistoPhenotypes ``.mat`` file (key ``detection``)."""
    from scipy.io import loadmat

    try:
        content = loadmat(path)
    except Exception as exc:  # scipy raises several unrelated types for a bad file
        raise RawDataError(f"cannot read {path} as a MATLAB file ({exc}); re-extract the archive") from exc
    if "detection" not in content:
        keys = sorted(k for k in content if not k.startswith("__"))
        raise RawDataError(f"{path} has no 'detection' array (keys: {keys}); not a CRCHistoPhenotypes file")
    array = np.asarray(content["detection"])
    if array.size == 0:
        return np.empty((0, 2))
    if array.ndim != 2 or array.shape[1] != 2 or not np.issubdtype(array.dtype, np.number):
        raise RawDataError(f"{path}: 'detection' is {array.shape} {array.dtype}, expected N x 2 numbers (x, y)")
    return array.astype(np.float64)


class WarwickCrc(PointConverter):
    """5x5 tiles per image, positive when an inflammatory nucleus centre lies in the tile."""

    def scan(self) -> Iterator[Sample]:
        base = self.root / ARCHIVE_DIR if (self.root / ARCHIVE_DIR).is_dir() else self.root
        classification = base / "Classification"
        if not classification.is_dir():
            raise RawDataError(f"{base} has no Classification/ folder; extract {ARCHIVE_DIR}.zip there")
        size = self.task.patch_px or 100
        index = {name: i for i, name in enumerate(self.task.class_names)}
        folders = sorted((p for p in classification.iterdir() if p.is_dir()), key=_image_number)
        for folder in folders:
            name = folder.name
            image = base / "Detection" / name / f"{name}.bmp"
            if not image.is_file():
                image = folder / f"{name}.bmp"
            if not image.is_file():
                self.skip("no imgN.bmp in Detection/ or Classification/", self.rel(folder))
                continue
            labels = folder / f"{name}_{POSITIVE}.mat"
            if not labels.is_file():
                self.skip(f"no imgN_{POSITIVE}.mat (labels unknown)", self.rel(folder))
                continue
            width, height = image_size(image)
            rel = self.rel(image)
            centres = self.inside(read_centres(labels), width, height, self.rel(labels))
            for x, y in grid(width, height, size):
                positive = points_in(centres, x, y, size)
                yield Sample(key=f"{name}-y{y:03d}-x{x:03d}", group=name,
                             label=index[POSITIVE] if positive else index["other"], source=rel,
                             coords=(x, y, size, size), um_per_px=self.task.um_per_px)
        labelled = {folder.name for folder in folders}
        detection = base / "Detection"
        for folder in sorted(detection.iterdir() if detection.is_dir() else ()):
            if folder.is_dir() and folder.name not in labelled:
                self.skip("no Classification/imgN/ folder (labels unknown)", self.rel(folder))


def _image_number(folder: Path) -> tuple[int, str]:
    match = _IMAGE.match(folder.name)
    if match is None:
        raise RawDataError(f"unexpected folder {folder}: expected Classification/imgN/ folders only")
    return int(match.group(1)), folder.name


def converter(task: Task, root: Path) -> Converter:
    """The converter of WarwickCRC over ``root``."""
    return WarwickCrc(task, root)
