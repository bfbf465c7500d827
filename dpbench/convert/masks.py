"""Mask-thresholded tiling for segmentation sources, and the patient-prefix rule of file names.

:class:`MaskTiler` pairs each raw image with its binary mask by file name, tiles the image exhaustively on a
``stride`` grid of ``size`` px windows anchored at the top-left corner (windows that would cross the border
are not taken, no padding), and labels a tile positive when at least ``threshold`` of its pixels are
foreground in the mask. The threshold is applied on integer pixel counts, so "5 %" of a 250 px tile means
3,125 pixels or more, exactly.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from dpbench.convert.base import Converter, raw_files, safe_key
from dpbench.convert.imaging import grid, image_size, read_mask, window_sums
from dpbench.errors import RawDataError
from dpbench.tasks.models import Task
from dpbench.tasks.samples import Sample


def patient_prefix(name: str, path: Path) -> str:
    """The patient id of a ``<patient>_<...>`` file name (an error naming ``path`` when there is no ``_``)."""
    head, sep, _ = name.partition("_")
    if not sep or not head:
        raise RawDataError(f"{path}: expected a file name '<patient>_<...>' (the patient id is the prefix "
                           "before the first '_'); rename it or remove it from the raw folder")
    return head


def positive_tiles(mask: np.ndarray, corners: list[tuple[int, int]], size: int, threshold: float) -> list[bool]:
    """Whether each ``size`` px window of ``mask`` has at least ``threshold`` of its pixels set."""
    needed = math.ceil(round(threshold * size * size, 6))
    return [bool(c >= needed) for c in window_sums(mask, corners, size)]


class MaskTiler(Converter):
    """Images ``<base><image_suffix>`` with masks ``<base><mask_suffix>`` anywhere under the source folder.

    Tiles are ``size`` px with ``overlap`` px shared between neighbours (stride ``size - overlap``). An image
    without its mask is an error, or, with ``skip_unmasked``, skipped and counted (a source whose authors use
    only the annotated images).
    """

    mask_suffix = "_mask.png"
    group_id = re.compile(r"(?:^|/)(?P<id>[^/_]+)_[^/]*$")  # the patient prefix of the image's file name

    def __init__(self, task: Task, root: Path, *, size: int, overlap: int, threshold: float,
                 image_suffix: str, skip_unmasked: bool = False) -> None:
        super().__init__(task, root)
        self.size = size
        self.stride = size - overlap
        self.threshold = threshold
        self.image_suffix = image_suffix
        self.skip_unmasked = skip_unmasked

    def pairs(self) -> list[tuple[str, Path, Path]]:
        """(base name, image, mask) of every image, sorted by base name; unmatched files are errors (images
        without a mask are skipped instead with ``skip_unmasked``)."""
        images: dict[str, Path] = {}
        masks: dict[str, Path] = {}
        for path in raw_files(self.root):
            name = path.name
            if name.lower().endswith(self.mask_suffix):
                found, base = masks, name[: -len(self.mask_suffix)]
            elif name.lower().endswith(self.image_suffix):
                found, base = images, name[: -len(self.image_suffix)]
            else:
                self.skip(f"neither a '*{self.image_suffix}' image nor a '*{self.mask_suffix}' mask", path)
                continue
            if base in found:
                raise RawDataError(f"{path} and {found[base]} share the name {name!r}; keep one copy of the "
                                   "archive's files under the source folder")
            found[base] = path
        for base, mask in sorted(masks.items()):
            if base not in images:
                raise RawDataError(f"mask {mask} has no image {base}{self.image_suffix} under {self.root}; "
                                   "re-extract the source archive")
        out = []
        for base, image in sorted(images.items()):
            if base not in masks and self.skip_unmasked:
                self.skip(f"image without its '*{self.mask_suffix}' mask (not annotated)", image)
                continue
            if base not in masks:
                raise RawDataError(f"image {image} has no mask {base}{self.mask_suffix}; re-extract the source "
                                   "archive (every image of this source is annotated)")
            out.append((base, image, masks[base]))
        return out

    def scan(self) -> Iterator[Sample]:
        for base, image, mask_path in self.pairs():
            group = patient_prefix(base, image)
            width, height = image_size(image)
            mask = read_mask(mask_path)
            if mask.shape != (height, width):
                raise RawDataError(f"mask {mask_path} is {mask.shape[1]}x{mask.shape[0]} but its image {image} is "
                                   f"{width}x{height}; re-extract the source archive")
            corners = list(grid(width, height, self.size, self.stride))
            if not corners:
                self.skip(f"image smaller than one {self.size} px tile", image)
                continue
            rel = self.rel(image)
            for (x, y), positive in zip(corners, positive_tiles(mask, corners, self.size, self.threshold),
                                        strict=True):
                yield Sample(key=safe_key(base, f"x{x:05d}", f"y{y:05d}"), group=group, label=int(positive),
                             source=rel, coords=(x, y, self.size, self.size), um_per_px=self.task.um_per_px)
