"""Whole-slide helpers for converters: OpenSlide regions, coarse thumbnails, tissue detection, ASAP XML polygons.

A slide is never decoded whole: tiles are read with OpenSlide's ``read_region`` at level 0, and the coarse
views used to decide which tiles to keep (tissue, annotations) are read from the pyramid level nearest to the
requested downsample, in horizontal strips of bounded size. Transparent pixels (outside the scanned area) are
composited onto white, so they count as background.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageDraw

from dpbench.errors import RawDataError

if TYPE_CHECKING:
    import openslide

    from dpbench.tasks.models import Task
    from dpbench.tasks.samples import Sample

#: Largest number of pyramid-level pixels read at once when building a thumbnail.
STRIP_PIXELS = 1 << 24
#: Tissue saturation threshold never goes below this (0..255), so a blank slide is not split in two by Otsu.
MIN_SATURATION = 20


def open_slide(path: Path) -> openslide.OpenSlide:
    """Open a whole-slide image (one-line error naming the file when it is missing or unreadable)."""
    import openslide

    if not path.is_file():
        raise RawDataError(f"missing slide {path}; re-download it")
    try:
        return openslide.OpenSlide(str(path))
    except (openslide.OpenSlideError, OSError, ValueError) as exc:
        raise RawDataError(f"cannot open slide {path} ({exc}); the file is corrupt or not a slide: "
                           "re-download it") from exc


def slide_mpp(slide: openslide.OpenSlide) -> float | None:
    """Level-0 microns per pixel (x) recorded in the slide, or None."""
    value = slide.properties.get("openslide.mpp-x")
    try:
        mpp = float(value) if value is not None else None
    except ValueError:
        return None
    return mpp if mpp and mpp > 0 else None


def to_rgb(region: Image.Image) -> np.ndarray:
    """RGB uint8 pixels of an OpenSlide RGBA region, transparent pixels composited onto white."""
    rgba = np.asarray(region.convert("RGBA"), dtype=np.uint16)
    alpha = rgba[..., 3:4]
    rgb = (rgba[..., :3] * alpha + 255 * (255 - alpha) + 127) // 255
    return rgb.astype(np.uint8)


def read_tile(slide: openslide.OpenSlide, path: Path, x: int, y: int, w: int, h: int) -> np.ndarray:
    """The level-0 region (x, y, w, h) of ``slide`` as RGB (an error naming ``path`` when it cannot be read)."""
    import openslide

    width, height = slide.dimensions
    if x < 0 or y < 0 or x + w > width or y + h > height:
        raise RawDataError(f"tile {(x, y, w, h)} falls outside the {width}x{height} slide {path}; the slide "
                           "changed since the scan")
    try:
        return to_rgb(slide.read_region((x, y), 0, (w, h)))
    except (openslide.OpenSlideError, OSError, ValueError) as exc:
        raise RawDataError(f"cannot read {(x, y, w, h)} from slide {path} ({exc}); re-download it") from exc


def thumbnail(slide: openslide.OpenSlide, path: Path, downsample: int) -> np.ndarray:
    """RGB view of the slide at ``1/downsample`` of level 0, ``ceil(W/d) x ceil(H/d)`` pixels.

    Read from the pyramid level nearest below ``downsample`` in strips (at most ``STRIP_PIXELS`` level
    pixels each) and box-filtered, so target pixel (i, j) averages level-0 pixels ``[d*j, d*(j+1))`` x
    ``[d*i, d*(i+1))``; the strip size does not change the result beyond rounding.
    """
    import openslide

    width, height = slide.dimensions
    out_w, out_h = math.ceil(width / downsample), math.ceil(height / downsample)
    level = slide.get_best_level_for_downsample(downsample)
    scale = float(slide.level_downsamples[level])
    ratio = downsample / scale  # level pixels per target pixel
    read_w = math.ceil(out_w * ratio)
    rows = max(1, int(STRIP_PIXELS // max(1.0, read_w * ratio)))
    strips = []
    for top in range(0, out_h, rows):
        bottom = min(out_h, top + rows)
        first = math.floor(top * ratio)
        read_h = max(1, math.ceil(bottom * ratio) - first)
        try:
            region = slide.read_region((0, round(first * scale)), level, (read_w, read_h))
        except (openslide.OpenSlideError, OSError, ValueError) as exc:
            raise RawDataError(f"cannot read slide {path} at level {level} ({exc}); re-download it") from exc
        box = (0.0, top * ratio - first, out_w * ratio, bottom * ratio - first)
        strip = Image.fromarray(to_rgb(region)).resize((out_w, bottom - top), Image.Resampling.BOX, box=box)
        strips.append(np.asarray(strip))
    return np.concatenate(strips, axis=0)


def otsu_threshold(values: np.ndarray) -> int:
    """Otsu's threshold of uint8 ``values``: the level t maximising between-class variance of (<= t, > t)."""
    hist = np.bincount(values.ravel(), minlength=256).astype(np.float64)
    total = hist.sum()
    if total == 0:
        return 0
    levels = np.arange(256, dtype=np.float64)
    weight_low = np.cumsum(hist)
    mean_low = np.cumsum(hist * levels)
    weight_high = total - weight_low
    with np.errstate(divide="ignore", invalid="ignore"):
        mu_low = mean_low / weight_low
        mu_high = (mean_low[-1] - mean_low) / weight_high
        between = weight_low * weight_high * (mu_low - mu_high) ** 2
    between = np.nan_to_num(between, nan=-1.0)
    return int(np.argmax(between))


def tissue_mask(rgb: np.ndarray, min_saturation: int = MIN_SATURATION) -> np.ndarray:
    """Tissue pixels of an RGB thumbnail: HSV saturation above ``max(Otsu, min_saturation)``.

    Glass, white and transparent background have a low saturation and black (void) areas have none, while
    stained tissue is saturated; pen marks are saturated too and count as tissue.
    """
    saturation = np.asarray(Image.fromarray(rgb).convert("HSV"))[..., 1]
    threshold = max(otsu_threshold(saturation), min_saturation)
    return np.asarray(saturation > threshold)


@dataclass(frozen=True)
class AsapAnnotation:
    """One annotation of an ASAP XML file: its group (``PartOfGroup``), type and (N, 2) x/y points."""

    name: str
    group: str
    kind: str
    points: np.ndarray


def parse_asap_xml(data: bytes, where: str) -> list[AsapAnnotation]:
    """Annotations of an ASAP XML document (``where`` names the file in errors), points in coordinate order."""
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise RawDataError(f"malformed annotation XML {where} ({exc}); re-extract it") from exc
    if root.tag != "ASAP_Annotations":
        raise RawDataError(f"{where} is not an ASAP annotation file (root <{root.tag}>)")
    found = []
    for node in root.iter("Annotation"):
        coords: list[tuple[int, float, float]] = []
        for coord in node.iter("Coordinate"):
            try:
                order = int(coord.get("Order", len(coords)))
                x = float(str(coord.get("X")).replace(",", "."))
                y = float(str(coord.get("Y")).replace(",", "."))
            except ValueError as exc:
                raise RawDataError(f"{where}: bad coordinate in annotation {node.get('Name')!r} ({exc}); the "
                                   "file is damaged") from exc
            if not (math.isfinite(x) and math.isfinite(y)):
                raise RawDataError(f"{where}: non-finite coordinate in annotation {node.get('Name')!r}")
            coords.append((order, x, y))
        coords.sort(key=lambda c: c[0])
        points = np.array([(x, y) for _, x, y in coords], dtype=np.float64).reshape(-1, 2)
        found.append(AsapAnnotation(name=node.get("Name", ""), group=node.get("PartOfGroup", ""),
                                    kind=node.get("Type", ""), points=points))
    return found


def rasterise(include: list[np.ndarray], exclude: list[np.ndarray], width: int, height: int,
              scale: float, origin: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """Boolean mask of the ``include`` polygons minus the ``exclude`` polygons: level-0 points, shifted so that
    ``origin`` (level-0) is the mask's corner, times ``scale``."""
    canvas = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    ox, oy = origin
    for polygons, value in ((include, 1), (exclude, 0)):
        for polygon in polygons:
            if len(polygon) >= 3:
                draw.polygon([((float(px) - ox) * scale, (float(py) - oy) * scale) for px, py in polygon],
                             fill=value)
    return np.asarray(canvas) > 0


class SlideCache:
    """A few open slide handles, least recently used closed first (one per converter)."""

    def __init__(self, size: int = 4) -> None:
        self.size = size
        self._open: OrderedDict[Path, openslide.OpenSlide] = OrderedDict()

    def get(self, path: Path) -> openslide.OpenSlide:
        """The open handle of ``path`` (opened now if needed)."""
        if path in self._open:
            self._open.move_to_end(path)
            return self._open[path]
        slide = open_slide(path)
        self._open[path] = slide
        while len(self._open) > self.size:
            _, oldest = self._open.popitem(last=False)
            oldest.close()
        return slide

    def close(self) -> None:
        """Close every handle."""
        while self._open:
            _, slide = self._open.popitem(last=False)
            slide.close()


class SlideRegions:
    """Mix-in (listed before the converter base) of converters whose samples are level-0 regions of whole slides:
    each sample's pixels are read on their own through ``self.slides``; a whole slide is never decoded."""

    task: Task
    root: Path
    slides: SlideCache

    def read(self, rel: str) -> np.ndarray:
        raise RawDataError(f"{self.task.name}: {rel} is a whole slide; its samples are read by region")

    def pixels(self, sample: Sample) -> np.ndarray:
        """The level-0 pixels of ``sample``'s region (``coords``: x, y, width, height)."""
        if sample.coords is None:
            raise RawDataError(f"{self.task.name}: sample {sample.key} has no region coordinates")
        path = self.root / sample.source
        return read_tile(self.slides.get(path), path, *sample.coords)
