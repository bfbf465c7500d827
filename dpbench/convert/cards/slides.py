"""Annotated whole slides: labelled patches cut from the polygons of QuPath GeoJSON or ASAP XML files.

Each slide OpenSlide reads (``.svs``, ``.tif``, ``.ndpi``, ``.mrxs``, ...) under the data folder pairs with the
annotation file of the same name (``<slide>.geojson``, ``.json`` or ``.xml``, with or without the slide's own suffix)
beside it or under ``data.annotations``. What the conversion does:

* The slide is tiled from its top-left corner with level-0 windows of ``patch_px * um_per_px / slide µm/px`` pixels
  every ``stride_px`` (default: no overlap), each read with OpenSlide's ``read_region`` and resized to ``patch_px``
  (Lanczos) when written, so every patch shows the card's field of view whatever the scanner's resolution.
* Coverage and tissue are measured on coarse masks (at most 16 mask pixels per patch side, 4,096 per slide side):
  the polygons of each class are filled (holes cleared), and tissue is HSV saturation above Otsu's threshold
  (never below 20/255), as for Camelyon16. A window is kept when one class covers at least ``min_coverage`` of it
  (a window that two classes cover that much is skipped) and tissue covers at least ``min_tissue`` of it (classes
  in ``data.background`` are exempt: glass is their content).
* Group: the slide (or its ``group`` in ``data.slides_table``, e.g. the patient), or with ``data.group: annotation``
  the annotated region holding most of the patch: then patches of one slide reach several splits, a choice for
  single-slide pilots only. ``data.max_per_class`` draws that many patches per class and slide (seeded).
* A slide without an annotation file is skipped with a count; a class name outside the card, a polygon outside its
  slide, a slide without a recorded resolution (set ``data.slide_um_per_px``) or one coarser than the card's
  ``um_per_px`` stops the scan with the fix.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from dpbench.convert.annotations import ANNOTATION_SUFFIXES, Region, outside, read_regions
from dpbench.convert.base import raw_files, safe_key, seeded_rng
from dpbench.convert.cards.base import CardConverter
from dpbench.convert.cards.table import table_rows
from dpbench.convert.imaging import area_fractions, grid
from dpbench.convert.slides import SlideCache, SlideRegions, rasterise, slide_mpp, thumbnail, tissue_mask
from dpbench.errors import RawDataError
from dpbench.tasks.cards import SlideData, TaskCard
from dpbench.tasks.models import SplitName, Task
from dpbench.tasks.samples import Sample

SLIDE_SUFFIXES = frozenset({".svs", ".tif", ".tiff", ".ndpi", ".mrxs", ".scn", ".vms", ".vmu", ".bif", ".svslide"})
MASK_SIDE = 16  # coarse-mask pixels per patch side, at most
MASK_MAX = 4096  # coarse-mask pixels per slide side, at most
#: The card may ask a resolution this much finer than the scan (0.499 vs 0.5 µm/px) before it is refused.
UPSAMPLE_TOLERANCE = 0.9


class SlideConverter(SlideRegions, CardConverter):
    """Labelled patches of annotated slides; one group per slide, patient or annotated region."""

    def __init__(self, task: Task, card: TaskCard, base: Path) -> None:
        super().__init__(task, card, base)
        assert isinstance(card.data, SlideData)
        self.data: SlideData = card.data
        self.resize_to = card.patch_px
        self.slides = SlideCache()

    def items(self) -> Iterator[Sample]:
        self.where = f"the slides under {self.root}"
        if not self.root.is_dir():
            raise RawDataError(f"{self.task.name}: slide folder {self.root} does not exist; fix data.path in the card")
        notes = self.base / self.data.annotations if self.data.annotations else self.root
        table = self._slide_table()
        slides = [p for p in raw_files(self.root) if p.suffix.lower() in SLIDE_SUFFIXES]
        if not slides:
            raise RawDataError(f"{self.task.name}: no slide files ({', '.join(sorted(SLIDE_SUFFIXES))}) under "
                               f"{self.root}; fix data.path in the card")
        for path in slides:
            note = annotation_file(notes / path.parent.relative_to(self.root), path)
            if note is None:
                self.skip("slide without an annotation file", path)
                continue
            regions, skips = read_regions(note)
            for reason, where in skips:
                self.skip(reason, where)
            labelled = [(label, r) for r in regions if (label := self.label(r.label, f"{note}: {r.name}")) is not None]
            group, split = self.rel(path.with_suffix("")), None
            if table is not None:
                if path.name not in table and path.stem not in table:
                    raise RawDataError(f"{self.task.name}: slide {path.name} is not in {self.data.slides_table}; add "
                                       "a row for it (slide,group)")
                group, split = table.get(path.name) or table[path.stem]
            yield from self._patches(path, labelled, group, split)

    def _slide_table(self) -> dict[str, tuple[str, SplitName | None]] | None:
        if self.data.slides_table is None:
            return None
        path = self.base / self.data.slides_table
        column = self.card.split.column
        found: dict[str, tuple[str, SplitName | None]] = {}
        for line, row in table_rows(path, ("slide", "group") + ((column,) if column else ())):
            at = f"{path} line {line}"
            if not row["slide"] or not row["group"]:
                raise RawDataError(f"{at}: empty slide or group; every row needs both")
            found[row["slide"]] = (row["group"], self.split_value(row[column], at) if column else None)
        return found

    def _scale(self, path: Path) -> tuple[int, int]:
        """Level-0 side and stride of a patch of this slide."""
        slide = self.slides.get(path)
        mpp = slide_mpp(slide) or self.data.slide_um_per_px
        if mpp is None:
            raise RawDataError(f"{self.task.name}: slide {path} does not record its resolution (µm/px); set "
                               "data.slide_um_per_px in the card")
        um, px = self.card.um_per_px or 0.0, self.card.patch_px or 0
        if um < mpp * UPSAMPLE_TOLERANCE:
            raise RawDataError(f"{self.task.name}: slide {path} is scanned at {mpp:g} µm/px, so patches at the "
                               f"card's {um:g} µm/px cannot be cut from it; set um_per_px to {mpp:g} or more")
        return round(px * um / mpp), max(1, round((self.data.stride_px or px) * um / mpp))

    def _patches(self, path: Path, labelled: list[tuple[int, Region]], group: str,
                 split: SplitName | None) -> Iterator[Sample]:
        slide = self.slides.get(path)
        width, height = slide.dimensions
        for _, region in labelled:
            if outside(region, width, height):
                raise RawDataError(f"{self.task.name}: annotation {region.name!r} lies outside the {width}x{height} "
                                   f"slide {path}; the annotation file belongs to another slide")
        side, stride = self._scale(path)
        corners = list(grid(width, height, side, stride))
        if not corners or not labelled:
            self.skip("slide smaller than one patch" if labelled else "slide without a labelled polygon", path)
            return
        ds = max(1, side // MASK_SIDE, math.ceil(max(width, height) / MASK_MAX))
        size, mask_w, mask_h = max(1, side // ds), math.ceil(width / ds), math.ceil(height / ds)
        small = [(x // ds, y // ds) for x, y in corners]
        cover = np.stack([area_fractions(rasterise([r.outer for k, r in labelled if k == label],
                                                   [h for k, r in labelled if k == label for h in r.holes],
                                                   mask_w, mask_h, 1 / ds), small, size)
                          for label in range(self.task.n_classes)])
        tissue = area_fractions(tissue_mask(thumbnail(slide, path, ds)), small, size) if self.data.min_tissue else None
        ids = region_ids(labelled, mask_w, mask_h, ds) if self.data.group == "annotation" else None
        exempt = {self.index[name] for name in self.data.background}
        kept: dict[int, list[tuple[int, int, str]]] = {k: [] for k in range(self.task.n_classes)}
        dropped = {"two": 0, "tissue": 0}
        for i, ((x, y), (sx, sy)) in enumerate(zip(corners, small, strict=True)):
            label = int(np.argmax(cover[:, i]))
            if cover[label, i] < self.data.min_coverage:
                continue
            if int(np.sum(cover[:, i] >= self.data.min_coverage)) > 1:
                dropped["two"] += 1
            elif tissue is not None and label not in exempt and tissue[i] < self.data.min_tissue:
                dropped["tissue"] += 1
            else:
                where = group if ids is None else region_group(ids, labelled, label, sx, sy, size, group)
                kept[label].append((x, y, where))
        self.skip("patch that two classes' annotations cover", path, dropped["two"])
        self.skip(f"patch under {self.data.min_tissue:.0%} tissue (data.min_tissue)", path, dropped["tissue"])
        for label, windows in kept.items():
            cap = self.data.max_per_class
            if cap is not None and len(windows) > cap:
                rng = seeded_rng(self.task.name, path.name, self.task.class_names[label])
                self.skip(f"over data.max_per_class ({cap}) patches per class and slide", path, len(windows) - cap)
                windows = [windows[j] for j in np.sort(rng.choice(len(windows), cap, replace=False))]
            for x, y, where in windows:
                yield Sample(key=safe_key(self.rel(path.with_suffix("")), f"x{x:06d}", f"y{y:06d}"), group=where,
                             label=label, source=self.rel(path), coords=(x, y, side, side),
                             um_per_px=self.card.um_per_px, split=split)


def annotation_file(folder: Path, slide: Path) -> Path | None:
    """The annotation file of ``slide`` in ``folder``: ``<stem>`` or ``<file name>`` plus a known suffix."""
    for name in (slide.stem, slide.name):
        for suffix in ANNOTATION_SUFFIXES:
            candidate = folder / f"{name}{suffix}"
            if candidate.is_file():
                return candidate
    return None


def region_ids(labelled: list[tuple[int, Region]], width: int, height: int, ds: int) -> np.ndarray:
    """Coarse mask of region numbers (1-based index in ``labelled``; 0 outside every region, later regions on top)."""
    canvas = Image.new("I", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    for number, (_, region) in enumerate(labelled, start=1):
        for ring, value in [(region.outer, number)] + [(hole, 0) for hole in region.holes]:
            draw.polygon([(float(px) / ds, float(py) / ds) for px, py in ring[:, :2]], fill=value)
    return np.asarray(canvas)


def region_group(ids: np.ndarray, labelled: list[tuple[int, Region]], label: int, x: int, y: int, size: int,
                 slide: str) -> str:
    """``<slide>#<n>``: the region of class ``label`` that covers most of the mask window at (x, y)."""
    counts = np.bincount(ids[y:y + size, x:x + size].ravel(), minlength=len(labelled) + 1)
    numbers = [n for n, (k, _) in enumerate(labelled, start=1) if k == label]
    best = max(numbers, key=lambda n: (int(counts[n]), -n))
    return f"{slide}#{best}"
