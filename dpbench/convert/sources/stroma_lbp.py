"""Stroma LBP (Linder et al. 2012, "Epistroma"): whole TMA images labelled epithelium or stroma by folder.

**The layout below is dpbench's assumption**, not a documented release format: the FIMM WebMicroscope
download could not be inspected (its path is unconfirmed and the host may be gone). The converter is
therefore lenient about where the class folders sit and strict about labels. Expected, under
``<raw>/stroma_lbp/``::

    [<set>/...]epithelium/<image>.<ext>     tumour epithelium images
    [<set>/...]stroma/<image>.<ext>         stroma images

``<ext>`` is any of tif, tiff, png, bmp, jpg, jpeg. The label is the one path component between the source
folder and the file that names a class, case-insensitively: ``epithelium`` (or ``epi``) and ``stroma``.
Any other folders on the way (for example ``train/``, ``validation/``, ``test/`` or a top ``epistroma/``)
are kept in the sample key but do not decide the split. An image under no class folder, or under both
(``stroma/epithelium/x.tif``), stops the conversion with an error naming it; non-image files are skipped and
counted.

The images are kept whole and unchanged (293 to 1088 px a side). There are no patient ids, so the group is
the image, and no official split is applied: the paper's sets (2,313 samples from 1,376 images, which its
rules do not explain) cannot be rebuilt from the public subset, and the folder sets found in a given copy
are not known to match them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from dpbench.convert.base import IMAGE_EXT, Converter, raw_files, safe_key
from dpbench.errors import RawDataError
from dpbench.tasks.models import Task
from dpbench.tasks.samples import Sample

SOURCE_IDS = ("stroma_lbp",)
#: Folder names (lower case) accepted for each class of the task, in the task's class order.
FOLDER_NAMES = {"stroma": ("stroma",), "epithelium": ("epithelium", "epi")}


class StromaLbp(Converter):
    """Whole images labelled by their class folder; one group per image."""

    def label_of(self, path: Path) -> int:
        """The class index named by exactly one folder between the source folder and ``path``."""
        folders = [part.lower() for part in path.relative_to(self.root).parts[:-1]]
        labels = {i for i, name in enumerate(self.task.class_names) for folder in folders
                  if folder in FOLDER_NAMES[name]}
        if len(labels) != 1:
            how = "no" if not labels else "more than one"
            raise RawDataError(f"{path} is under {how} class folder ({' or '.join(self.task.class_names)}); "
                               "put each image in exactly one epithelium/ or stroma/ folder")
        return labels.pop()

    def scan(self) -> Iterator[Sample]:
        for path in raw_files(self.root):
            if path.suffix.lower() not in IMAGE_EXT:
                self.skip("not an image file", path)
                continue
            label = self.label_of(path)
            key = safe_key(*path.relative_to(self.root).with_suffix("").parts)
            yield Sample(key=key, group=key, label=label, source=self.rel(path), um_per_px=self.task.um_per_px)


def converter(task: Task, root: Path) -> Converter:
    """The converter of StromaLbp over ``root``."""
    return StromaLbp(task, root)
