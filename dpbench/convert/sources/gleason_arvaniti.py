"""Gleason grading of prostate TMAs (Arvaniti et al. 2018): the patches of the authors' ``create_patches.py``.

The Dataverse record (doi:10.7910/DVN/OCYCMP) holds TMA spot images and Gleason masks, not patches; the
expected input is the output of ``utils/create_patches.py`` (GitHub ``eiriniar/gleason_CNN``, patch size
750), the layout kaiko-ai/eva also reads. Raw layout (under ``<raw>/gleason_arvaniti/``)::

    train_validation_patches_750/<spot>/<spot>_patch_<j>_class_<g>.jpg     arrays ZT76, ZT111, ZT199, ZT204
    test_patches_750/patho_1/<spot>/<spot>_patch_<j>_class_<g>.jpg         array ZT80, pathologist 1
    test_patches_750/patho_2/...                                            pathologist 2 (not read)

``<spot>`` is a TMA spot such as ``ZT111_4_A_1_1``: its first ``_`` field is the array. ``<g>`` is the
patch's Gleason class, 0 benign, 1 pattern 3, 2 pattern 4, 3 pattern 5 (the pattern of the patch's central
third, as create_patches.py labels it). The published split is by array and pinned: ZT111, ZT199 and ZT204
train, ZT76 val (the authors' validation array), ZT80 test; the arrays hold different patients, so the split
is patient-disjoint. The test labels are pathologist 1's (as in eva); patho_2 is ignored. Groups are TMA
spots (the file-name prefix before ``_patch_``). Patches are kept whole (750x750, about 0.23 um/px). A JPEG
whose name does not follow the pattern, a class outside 0-3, or an array other than the five stops the
conversion with the file named; other files are skipped and counted.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from dpbench.convert.base import Converter
from dpbench.errors import RawDataError
from dpbench.tasks.models import SplitName, Task
from dpbench.tasks.samples import Sample

SOURCE_IDS = ("gleason_arvaniti",)
TRAIN_DIR = "train_validation_patches_750"
TEST_DIR = "test_patches_750/patho_1"
#: array → official split
ARRAYS: dict[str, SplitName] = {"ZT111": "train", "ZT199": "train", "ZT204": "train", "ZT76": "val",
                                "ZT80": "test"}
_NAME = re.compile(r"^(?P<spot>(?P<array>ZT\d+)_[A-Za-z0-9_-]+?)_patch_(?P<j>\d+)_class_(?P<grade>\d+)$")
_JPEG = {".jpg", ".jpeg"}


class GleasonArvaniti(Converter):
    """create_patches.py output; split pinned by array; one group per TMA spot."""

    def scan(self) -> Iterator[Sample]:
        for folder, test in ((TRAIN_DIR, False), (TEST_DIR, True)):
            base = self.root / folder
            if not base.is_dir():
                raise RawDataError(f"missing {base}: run utils/create_patches.py of eiriniar/gleason_CNN on the "
                                   "Dataverse images so that it writes the 750 px patches there")
            for path in sorted(p for p in base.rglob("*") if p.is_file()):
                if path.suffix.lower() not in _JPEG:
                    self.skip("not a JPEG patch", path)
                    continue
                yield self._sample(path, test)

    def _sample(self, path: Path, test: bool) -> Sample:
        match = _NAME.match(path.stem)
        if match is None:
            raise RawDataError(f"cannot read the spot and class from {path}: expected "
                               "<array>_<spot>_patch_<j>_class_<g>.jpg as written by create_patches.py")
        array, grade = match.group("array"), int(match.group("grade"))
        if not 0 <= grade < self.task.n_classes:
            raise RawDataError(f"{path}: class {grade} is outside 0-3 (benign, Gleason 3, 4, 5)")
        split = ARRAYS.get(array)
        if split is None or (split == "test") != test:
            where = "test_patches_750 (ZT80 only)" if test else f"{TRAIN_DIR} (ZT76, ZT111, ZT199, ZT204)"
            raise RawDataError(f"{path}: array {array} does not belong in {where}; check the patch folders")
        return Sample(key=path.stem, group=match.group("spot"), label=grade, source=self.rel(path),
                      um_per_px=self.task.um_per_px, split=split)


def converter(task: Task, root: Path) -> Converter:
    """The converter of GleasonArvaniti over ``root``."""
    return GleasonArvaniti(task, root)
