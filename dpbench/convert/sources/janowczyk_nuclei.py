"""Janowczyk use case 1 (nuclei): 2000x2000 ER+ breast H&E regions tiled and labelled by nucleus-mask area.

Raw layout (``nuclei.tgz`` extracted under ``<raw>/janowczyk_nuclei/``; the archive is flat, but files are
found at any depth)::

    <patient>_<...>_original.tif      e.g. 12750_500_f00003_original.tif
    <patient>_<...>_mask.png          binary nucleus mask of the same size (any non-zero pixel is nucleus)

Each image is tiled exhaustively into 250x250 px windows with a 125 px overlap (stride 125), anchored at the
top-left corner with no padding: a 2000 px image gives 15x15 = 225 tiles. A tile is ``nucleus`` when at
least 5 % of its pixels (3,125 of 62,500) are set in the mask, else ``background``; tiles keep their native
resolution. The group is the patient, the file-name prefix before the first ``_`` (the tutorial's own rule),
so all images of one patient stay in one split; no official split exists.

Choices the paper leaves open: the grid is anchored at the top-left corner and border windows that do not
fit are dropped (the paper's 31,725 = 141 x 225 fits this exactly); ``>=`` is used at the threshold. The
annotation is partial (unmarked nuclei exist), so some ``background`` tiles hold nuclei, as in the paper.
An image without its mask is skipped and counted, following the authors' own rule (the tutorial's
``step1_make_patches.m`` lists the patients from the ``*_mask.png`` files: "we only use images for which we
have a mask available", and skips an image whose mask it cannot read). A mask without its image, or a mask
whose size differs from its image, stops the conversion with an error naming the file; other files are
skipped and counted.

Checked against: the tutorial code ``DL tutorial Code/1-nuclei/step1_make_patches.m`` of GitHub
``choosehappy/public`` (file pairing, patient prefix, the mask-only rule). Assumption: which images of the
archive lack a mask (no listing of ``nuclei.tgz`` was found; the paper's 31,725 tiles fit 141 images).
"""

from __future__ import annotations

from pathlib import Path

from dpbench.convert.base import Converter
from dpbench.convert.masks import MaskTiler
from dpbench.tasks.models import Task

SOURCE_IDS = ("janowczyk_nuclei",)


def converter(task: Task, root: Path) -> Converter:
    """250 px tiles (stride 125), nucleus when >= 5 % of the tile is masked."""
    return MaskTiler(task, root, size=250, overlap=125, threshold=0.05, image_suffix="_original.tif",
                     skip_unmasked=True)
