"""Point annotations to patches: shifted windows around each point and exhaustive point-free tiles.

Shared by the detection converters whose sources mark object centres (mitoses, nuclei). A point is kept
when it lies in the image, the far edge included (``0 <= x <= width``: a 1-based MATLAB or inclusive pixel
index can reach it); points further out are skipped with a counted reason. Exhaustive tiles cover the whole
image: windows every ``size - overlap`` pixels, plus one flush with the right/bottom edge when the stride
does not land there.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from dpbench.convert.base import Converter, seeded_rng
from dpbench.convert.imaging import image_size, points_in, positions, shifted_windows
from dpbench.errors import RawDataError
from dpbench.tasks.models import SplitName
from dpbench.tasks.samples import Sample

_HEADER_FIELD = re.compile(r"^[A-Za-z_ ]*$")


def covering_starts(length: int, size: int, stride: int) -> list[int]:
    """Window starts along one axis that cover ``length`` (a last window flush with the end if needed)."""
    starts = positions(length, size, stride)
    if starts and starts[-1] + size < length:
        starts.append(length - size)
    return starts


def covering_grid(width: int, height: int, size: int, overlap: int) -> list[tuple[int, int]]:
    """Top-left corners of ``size`` windows overlapping by ``overlap`` px that cover the image, row by row."""
    stride = size - overlap
    if stride <= 0:
        raise ValueError(f"overlap {overlap} must be smaller than the window {size}")
    return [(x, y) for y in covering_starts(height, size, stride) for x in covering_starts(width, size, stride)]


def read_point_csv(path: Path, order: Literal["xy", "yx"], min_columns: int = 2) -> np.ndarray:
    """(N, 2) float x, y points from a headerless CSV whose first two columns are ``order``.

    Blank lines are ignored and one header row of words is tolerated; any other non-numeric or short row
    raises :class:`RawDataError` naming the file and line.
    """
    if not path.is_file():
        raise RawDataError(f"missing annotation file {path}; re-extract the source archive")
    rows: list[tuple[float, float]] = []
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            for number, row in enumerate(csv.reader(handle), start=1):
                cells = [cell.strip() for cell in row]
                if not any(cells):
                    continue
                if number == 1 and all(_HEADER_FIELD.match(cell) for cell in cells):
                    continue
                if len(cells) < min_columns:
                    raise RawDataError(f"{path}, line {number}: expected {min_columns} columns, got {len(cells)} "
                                       f"({','.join(cells)!r}); the file is truncated or not this dataset's CSV")
                try:
                    first, second = float(cells[0]), float(cells[1])
                except ValueError:
                    raise RawDataError(f"{path}, line {number}: non-numeric coordinates {cells[:2]}; "
                                       "re-download the annotations") from None
                if not (np.isfinite(first) and np.isfinite(second)):
                    raise RawDataError(f"{path}, line {number}: non-finite coordinates {cells[:2]}")
                rows.append((first, second) if order == "xy" else (second, first))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise RawDataError(f"cannot parse {path} as CSV ({exc}); re-download the annotations") from exc
    return np.array(rows, dtype=np.float64).reshape(-1, 2)


class PointConverter(Converter):
    """A converter turning (image, labelled points) into shifted positives and point-free background tiles.

    ``shifts`` windows are drawn around every point, each shifted uniformly by up to a quarter of the patch
    (so the point stays inside), seeded by task, image file, class and point index. Background tiles
    (``overlap`` px apart, see :func:`covering_grid`) are kept only when no kept point of any class falls
    inside them.
    """

    shifts = 10
    overlap = 0

    def inside(self, points: np.ndarray, width: int, height: int, where: str) -> np.ndarray:
        """The points of ``points`` lying in the image (far edge clamped in); others are skipped and counted."""
        ok = (points[:, 0] >= 0) & (points[:, 0] <= width) & (points[:, 1] >= 0) & (points[:, 1] <= height)
        for x, y in points[~ok]:
            self.skip("annotation point outside its image", f"{where} ({x:g}, {y:g})")
        kept: np.ndarray = np.minimum(points[ok], np.array([width - 1, height - 1], dtype=np.float64))
        return kept

    def point_samples(self, path: Path, prefix: str, group: str, points: Sequence[tuple[int, np.ndarray]],
                      background: int, split: SplitName | None = None,
                      dimensions: tuple[int, int] | None = None) -> Iterator[Sample]:
        """Samples of one image: ``shifts`` per point of each (label, points) pair, then background tiles.

        The pairs come in priority order: a window of a later pair that contains a point of an earlier pair
        (a "non-mitosis" window showing a mitosis) is dropped and counted, never given the weaker label.
        ``dimensions`` is the image's (width, height) when the caller has read it already (else it is read
        from the image header).
        """
        size = self.task.patch_px
        if size is None:
            raise RawDataError(f"{self.task.name}: the registry gives no patch size")
        width, height = dimensions if dimensions is not None else image_size(path)
        rel = self.rel(path)
        if width < size or height < size:
            self.skip(f"image smaller than the {size} px patch", rel)
            return
        kept = [self.inside(found, width, height, rel) for _, found in points]
        for rank, ((label, _), pts) in enumerate(zip(points, kept, strict=True)):
            name = self.task.class_names[label]
            stronger = np.concatenate(kept[:rank]) if rank else np.empty((0, 2))
            for i, (x, y) in enumerate(pts):
                rng = seeded_rng(self.task.name, path.name, name, i)  # not the folder depth of the extraction
                for j, (wx, wy) in enumerate(shifted_windows(rng, float(x), float(y), size, self.shifts,
                                                             width, height)):
                    if points_in(stronger, wx, wy, size):
                        self.skip(f"{name} window containing a point of an earlier class", rel)
                        continue
                    yield Sample(key=f"{prefix}-{name}{i:04d}-{j:02d}", group=group, label=label, source=rel,
                                 coords=(wx, wy, size, size), um_per_px=self.task.um_per_px, split=split)
        every = np.concatenate(kept) if kept else np.empty((0, 2))
        for x, y in covering_grid(width, height, size, self.overlap):
            if not points_in(every, x, y, size):
                yield Sample(key=f"{prefix}-bg-x{x:05d}-y{y:05d}", group=group, label=background, source=rel,
                             coords=(x, y, size, size), um_per_px=self.task.um_per_px, split=split)
