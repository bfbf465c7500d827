"""Janowczyk use case 2 (epithelium): 1000x1000 breast H&E images tiled and labelled by epithelium-mask area.

Raw layout (``epi.tgz`` extracted under ``<raw>/janowczyk_epithelium/``; files are paired by name at any
depth, so the masks may sit beside the images or in the archive's ``masks/`` folder)::

    <patient>_<...>.tif               42 H&E images, one per patient
    masks/<patient>_<...>_mask.png    binary epithelium mask of the same size (non-zero = epithelium)

Each image is tiled exhaustively into 200x200 px windows with a 100 px overlap (stride 100), anchored at the
top-left corner with no padding: a 1000 px image gives 9x9 = 81 tiles (42 x 81 = 3,402, the paper's count).
A tile is ``epithelium`` when at least 10 % of its pixels (4,000 of 40,000) are set in the mask, else
``stroma``; tiles keep their native resolution (the tutorial's own 0.5x downscaling is not applied, as the
paper lists no rescaling). The group is the patient, the file-name prefix before the first ``_``; no
official split exists.

Choices the paper leaves open: top-left anchored grid, border windows that do not fit are dropped, ``>=``
at the threshold, and ``stroma`` means every non-epithelial tile (background included), as no tissue
detection is described. An image without its mask, a mask without its image, or a mask whose size differs
from its image stops the conversion with an error naming the file; other files are skipped and counted.
"""

from __future__ import annotations

from pathlib import Path

from dpbench.convert.base import Converter
from dpbench.convert.masks import MaskTiler
from dpbench.tasks.models import Task

SOURCE_IDS = ("janowczyk_epithelium",)


def converter(task: Task, root: Path) -> Converter:
    """200 px tiles (stride 100), epithelium when >= 10 % of the tile is masked."""
    return MaskTiler(task, root, size=200, overlap=100, threshold=0.10, image_suffix=".tif")
