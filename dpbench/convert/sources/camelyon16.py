"""Camelyon16: 768 px tiles of the training whole-slide images, labelled from the lesion outlines.

Raw layout (any mirror of the challenge data, under ``<raw>/camelyon16/``, optionally inside ``CAMELYON16/``)::

    training/normal/normal_001.tif ...          pyramidal TIFF slides without metastases
    training/tumor/tumor_001.tif ...            slides with metastases
    training/lesion_annotations/tumor_001.xml   ASAP XML outlines (or the unextracted lesion_annotations.zip)
    testing/images/test_001.tif ...             official test slides (used only with official_test=True)
    testing/reference.csv                       ``Test_001,Tumor,...`` slide labels
    testing/lesion_annotations/test_001.xml     outlines of the tumour test slides (or its .zip)

What the conversion does (the paper's recipe: 768 px tiles, no overlap, stored at 384 px, ``tumor`` at 10 %
tumour area, background removed, at most 1,000 patches per class per slide):

* Every slide is cut into non-overlapping 768x768 level-0 tiles from its top-left corner (partial tiles at the
  right and bottom edges are dropped). Tiles are read one by one with OpenSlide ``read_region``; a slide is never
  decoded whole. Each tile is resized to 384x384 (Lanczos) when written; ``um_per_px`` is the slide's level-0
  resolution times two.
* Tissue and tumour fractions are measured on masks at 1/32 of level 0 (a tile is 24x24 mask pixels), read from
  the nearest pyramid level and box-filtered. Tissue = HSV saturation above Otsu's threshold of the whole slide
  (never below 20/255). A tile is background, and dropped, when under 25 % of it is tissue, unless it is a tumour
  tile. Both thresholds are dpbench's choice: the paper only says background tiles were removed.
* Tumour area: the ASAP polygons of groups ``Tumor``, ``_0`` and ``_1`` are filled at 1/32 scale, then those of
  ``_2`` and ``Exclusion`` (non-tumour islands inside a lesion) are cleared. Tiles whose coarse tumour fraction
  lies between 0 and 50 % are measured again on the tile alone at 1/4 scale (192x192), because at 1/32 filled
  outlines round small areas up (a 5 % sliver can read as 12.5 %). A tile is ``tumor`` when at least
  10 % of it is tumour, else ``normal`` (tiles with a smaller lesion part are kept as ``normal``, as in the
  paper's rule). Spline annotations are rasterised through their control points; annotations with fewer than
  three points (dots) cannot carry an area and are skipped with a count. Every tile of a ``normal`` slide is
  ``normal``. An annotation group outside those five stops the conversion, as does a polygon lying entirely
  outside its slide. A tumour slide without an outline file is skipped with a count (its tiles cannot be
  labelled).
* Per slide and class, when more than 1,000 tiles remain, 1,000 are drawn with a generator seeded by the task,
  slide and class names, so the draw does not depend on the scan order.
* Group = slide. By default only the 270 training slides are used, as in the paper (271 slides split 221 / 26 /
  24 by slide); the official test slides are left out. ``Camelyon16(task, root, official_test=True)`` adds them,
  labelled by ``reference.csv`` and their outlines, pinned to the test split (the training slides then fill
  train and val). The duplicated official test slide is not detected.
"""

from __future__ import annotations

import csv
import logging
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from dpbench.convert.base import Converter, seeded_rng
from dpbench.convert.imaging import area_fractions, grid
from dpbench.convert.slides import (
    SlideCache,
    SlideRegions,
    parse_asap_xml,
    rasterise,
    slide_mpp,
    thumbnail,
    tissue_mask,
)
from dpbench.errors import RawDataError
from dpbench.tasks.models import SplitName, Task
from dpbench.tasks.samples import Sample

SOURCE_IDS = ("camelyon16",)
log = logging.getLogger("dpbench.convert")

TILE = 768
STORED = 384
MASK_DOWNSAMPLE = 32
TUMOUR_FRACTION = 0.10
#: Tiles whose coarse tumour fraction is above 0 and below this are measured again at 1/FINE_DOWNSAMPLE, because
#: at 1/32 a tile is only 24x24 mask pixels and filled outlines round the area up (a 5 % sliver can read as 12.5 %).
BORDERLINE, FINE_DOWNSAMPLE = 0.5, 4
MIN_TISSUE = 0.25
MAX_PER_CLASS = 1000
TUMOUR_GROUPS = frozenset({"Tumor", "_0", "_1"})
HOLE_GROUPS = frozenset({"_2", "Exclusion"})
NORMAL, TUMOR = 0, 1


class Camelyon16(SlideRegions, Converter):
    """Tiles of Camelyon16 slides, labelled by tumour area; one group per slide."""

    resize_to = STORED

    def __init__(self, task: Task, root: Path, official_test: bool = False,
                 max_per_class: int = MAX_PER_CLASS) -> None:
        super().__init__(task, root)
        self.official_test = official_test
        self.max_per_class = max_per_class
        self.base = root / "CAMELYON16" if (root / "CAMELYON16").is_dir() else root
        self.slides = SlideCache()

    # -- scanning ----------------------------------------------------------------------------------------
    def scan(self) -> Iterator[Sample]:
        training = self.base / "training"
        if not training.is_dir():
            raise RawDataError(f"{training} not found; put the Camelyon16 training/ folder (normal/, tumor/, "
                               "lesion_annotations) under " + str(self.root))
        for kind in ("normal", "tumor"):
            folder = training / kind
            if not folder.is_dir():
                raise RawDataError(f"missing folder {folder}; download the Camelyon16 training/{kind} slides")
            for path in self._slides(folder):
                outlines = None
                if kind == "tumor":
                    outlines = self._outlines(training, path)
                    if outlines is None:
                        self.skip("tumour slide without a lesion annotation file", path)
                        continue
                yield from self._tiles(path, outlines, None)
        testing = self.base / "testing"
        if not self.official_test:
            if testing.is_dir():
                log.info("%s: official test slides under %s are not used (the paper split the training "
                         "slides); pass official_test=True to add them", self.task.name, testing)
            return
        yield from self._test_tiles(testing)

    def _slides(self, folder: Path) -> list[Path]:
        found = []
        for path in sorted(folder.iterdir()):
            if path.suffix.lower() in (".tif", ".tiff"):
                found.append(path)
            elif path.is_file():
                self.skip("not a slide file", path)
        return found

    def _test_tiles(self, testing: Path) -> Iterator[Sample]:
        reference = testing / "reference.csv"
        labels = read_reference(reference)
        for path in self._slides(testing / "images"):
            label = labels.get(path.stem.lower())
            if label is None:
                self.skip("test slide missing from reference.csv", path)
                continue
            outlines = None
            if label == TUMOR:
                outlines = self._outlines(testing, path)
                if outlines is None:
                    self.skip("tumour slide without a lesion annotation file", path)
                    continue
            yield from self._tiles(path, outlines, "test")

    def _outlines(self, folder: Path, slide: Path) -> tuple[bytes, str] | None:
        """The slide's ASAP XML bytes and a name for errors, from the extracted folder or the zip."""
        wanted = f"{slide.stem.lower()}.xml"
        extracted = folder / "lesion_annotations"
        if extracted.is_dir():
            for path in sorted(extracted.iterdir()):
                if path.name.lower() == wanted:
                    return path.read_bytes(), str(path)
        archive = folder / "lesion_annotations.zip"
        if archive.is_file():
            try:
                with zipfile.ZipFile(archive) as zf:
                    for member in sorted(zf.namelist()):
                        if Path(member).name.lower() == wanted:
                            return zf.read(member), f"{archive}:{member}"
            except (zipfile.BadZipFile, OSError) as exc:
                raise RawDataError(f"cannot read {archive} ({exc}); re-download it") from exc
        return None

    def _tiles(self, path: Path, outlines: tuple[bytes, str] | None, split: SplitName | None) -> Iterator[Sample]:
        slide = self.slides.get(path)
        width, height = slide.dimensions
        coarse = thumbnail(slide, path, MASK_DOWNSAMPLE)
        tissue = tissue_mask(coarse)
        mask_h, mask_w = tissue.shape
        tumour = np.zeros_like(tissue)
        include: list[np.ndarray] = []
        exclude: list[np.ndarray] = []
        if outlines is not None:
            include, exclude = self._polygons(outlines, width, height)
            tumour = rasterise(include, exclude, mask_w, mask_h, 1 / MASK_DOWNSAMPLE)
        corners = list(grid(width, height, TILE))
        if not corners:
            self.skip("slide smaller than one tile", path)
            return
        small = [(x // MASK_DOWNSAMPLE, y // MASK_DOWNSAMPLE) for x, y in corners]
        side = TILE // MASK_DOWNSAMPLE
        tissue_frac = area_fractions(tissue, small, side)
        tumour_frac = area_fractions(tumour, small, side)
        by_class: dict[int, list[tuple[int, int]]] = {NORMAL: [], TUMOR: []}
        background = 0
        fine = TILE // FINE_DOWNSAMPLE
        include_boxes, exclude_boxes = bounding_boxes(include), bounding_boxes(exclude)
        for (x, y), t_frac, m_frac in zip(corners, tissue_frac, tumour_frac, strict=True):
            if 0 < m_frac < BORDERLINE:
                near = (meeting(include, include_boxes, x, y), meeting(exclude, exclude_boxes, x, y))
                m_frac = float(rasterise(*near, fine, fine, 1 / FINE_DOWNSAMPLE, (x, y)).mean())
            is_tumour = m_frac >= TUMOUR_FRACTION
            if is_tumour or t_frac >= MIN_TISSUE:
                by_class[TUMOR if is_tumour else NORMAL].append((x, y))
            else:
                background += 1
        self.skip("background tile (under 25 % tissue)", path, background)
        mpp = slide_mpp(slide)
        um_per_px = mpp * TILE / STORED if mpp else None
        for label, kept in by_class.items():
            if len(kept) > self.max_per_class:
                rng = seeded_rng(self.task.name, path.name, self.task.class_names[label])
                chosen = np.sort(rng.choice(len(kept), self.max_per_class, replace=False))
                self.skip(f"over the {self.max_per_class} tiles per class per slide cap", path,
                          len(kept) - self.max_per_class)
                kept = [kept[i] for i in chosen]
            for x, y in kept:
                yield Sample(key=f"{path.stem}_x{x:06d}_y{y:06d}", group=path.stem, label=label,
                             source=self.rel(path), coords=(x, y, TILE, TILE), um_per_px=um_per_px, split=split)

    def _polygons(self, outlines: tuple[bytes, str], width: int, height: int
                  ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        data, where = outlines
        include: list[np.ndarray] = []
        exclude: list[np.ndarray] = []
        for note in parse_asap_xml(data, where):
            if note.group not in TUMOUR_GROUPS | HOLE_GROUPS:
                raise RawDataError(f"{where}: annotation {note.name!r} is in unknown group {note.group!r}; "
                                   f"expected one of {', '.join(sorted(TUMOUR_GROUPS | HOLE_GROUPS))}")
            if len(note.points) < 3:
                self.skip("annotation with fewer than 3 points", f"{where}:{note.name}")
                continue
            xs, ys = note.points[:, 0], note.points[:, 1]
            if xs.max() < 0 or ys.max() < 0 or xs.min() >= width or ys.min() >= height:
                raise RawDataError(f"{where}: annotation {note.name!r} lies outside the {width}x{height} slide; "
                                   "the outline file belongs to another slide or is damaged")
            (include if note.group in TUMOUR_GROUPS else exclude).append(note.points)
        return include, exclude


def bounding_boxes(polygons: list[np.ndarray]) -> np.ndarray:
    """(N, 4) level-0 ``x0, y0, x1, y1`` bounds of each (M, 2) polygon."""
    if not polygons:
        return np.zeros((0, 4))
    return np.array([[p[:, 0].min(), p[:, 1].min(), p[:, 0].max(), p[:, 1].max()] for p in polygons],
                    dtype=np.float64)


def meeting(polygons: list[np.ndarray], boxes: np.ndarray, x: int, y: int) -> list[np.ndarray]:
    """The ``polygons`` (in order) whose bounds meet the tile at level-0 (x, y), widened by two fine-mask
    pixels: the others cannot paint any pixel of the tile's fine mask, so leaving them out changes nothing."""
    if not polygons:
        return []
    margin = 2 * FINE_DOWNSAMPLE
    near = ((boxes[:, 0] <= x + TILE + margin) & (boxes[:, 2] >= x - margin)
            & (boxes[:, 1] <= y + TILE + margin) & (boxes[:, 3] >= y - margin))
    return [polygon for polygon, keep in zip(polygons, near.tolist(), strict=True) if keep]


def read_reference(path: Path) -> dict[str, int]:
    """Slide stem (lower case) → label from ``testing/reference.csv`` (``Test_001,Tumor|Normal,...``)."""
    if not path.is_file():
        raise RawDataError(f"missing {path}; the official test labels are needed with official_test=True")
    labels: dict[str, int] = {}
    with path.open(newline="") as handle:
        for number, row in enumerate(csv.reader(handle), start=1):
            if not row or not row[0].strip():
                continue
            name, verdict = row[0].strip(), (row[1].strip().lower() if len(row) > 1 else "")
            if number == 1 and not name.lower().startswith("test"):
                continue  # a header row
            if verdict not in ("normal", "tumor"):
                raise RawDataError(f"{path} line {number}: label {verdict!r} of {name} is neither Normal nor "
                                   "Tumor; the file is damaged")
            labels[Path(name).stem.lower()] = TUMOR if verdict == "tumor" else NORMAL
    return labels


def converter(task: Task, root: Path) -> Converter:
    """The converter of Camelyon16 over ``root`` (training slides only, as in the paper)."""
    return Camelyon16(task, root)
