"""Gleason grading of prostate TMAs (Arvaniti et al. 2018): the patches of the authors' ``create_patches.py``.

The Dataverse record (doi:10.7910/DVN/OCYCMP) holds TMA spot images and Gleason masks, not patches; the
expected input is the output of ``utils/create_patches.py`` (GitHub ``eiriniar/gleason_CNN``, patch size
750), the layout kaiko-ai/eva also reads. Raw layout (under ``<raw>/gleason_arvaniti/``, or its
``dataset_TMA/`` folder when the script ran there)::

    train_validation_patches_750/<spot>/<spot>_patch_<j>_class_<g>.jpg     arrays ZT76, ZT111, ZT199, ZT204
    test_patches_750/patho_1/<spot>/<spot>_patch_<j>_class_<g>.jpg         array ZT80, pathologist 1
    test_patches_750/patho_2/...                                            pathologist 2 (not read)

or, as the script's earlier versions wrote the test set (commits before ``ffbac66``, "dataset published")::

    inter_observer/joint_test_patches_750/patho_1/<spot>/...                array ZT80, pathologist 1

(the two test layouts together are an error: keep one). To make the patches: download the Dataverse files and
extract them into one folder (``TMA_images/`` with the spot JPEGs of the ``ZT*.tar.gz`` archives,
``Gleason_masks_train/``, ``Gleason_masks_test/Gleason_masks_test_pathologist{1,2}/``), set ``prefix`` in
``main()`` of ``utils/create_patches.py`` to that folder, run ``python utils/create_patches.py`` (it needs
numpy, pandas, Pillow and a SciPy that still has ``scipy.misc.imread``, i.e. before 1.2, and an empty output
folder: it refuses existing spot folders), and put that folder (or a link to it) at ``<raw>/gleason_arvaniti``.

``<spot>`` is a TMA spot such as ``ZT111_4_A_1_1``: its first ``_`` field is the array. ``<g>`` is the
patch's Gleason class, 0 benign, 1 pattern 3, 2 pattern 4, 3 pattern 5 (the pattern of the patch's central
third, as create_patches.py labels it). The published split is by array and pinned: ZT111, ZT199 and ZT204
train, ZT76 val (the authors' validation array), ZT80 test; the arrays hold different patients, so the split
is patient-disjoint. The test labels are pathologist 1's (as in eva); patho_2 is ignored. Groups are TMA
spots (the file-name prefix before ``_patch_``; one spot per patient). Patches are kept whole (750x750, about
0.23 um/px). A JPEG whose name does not follow the pattern, a class outside 0-3, or an array other than the
five stops the conversion with the file named; other files are skipped and counted.

Checked against the script itself: the output folders and the patch name format of ``utils/create_patches.py``
in GitHub ``eiriniar/gleason_CNN`` (current version and the earlier ``inter_observer/`` one). Assumption: the
spot names (``ZT80_38_A_1_1``, ...) follow the Dataverse image names, which are not listed in any public
repository found; the tests use names of that form.
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
#: Where create_patches.py writes pathologist 1's test patches: its current version, then its earlier one.
TEST_DIRS = ("test_patches_750/patho_1", "inter_observer/joint_test_patches_750/patho_1")
#: The folder create_patches.py's ``prefix`` names, when the patches were made inside the download.
DATASET_DIR = "dataset_TMA"
#: The TMA spot (one per patient) in a patch path.
SPOT = re.compile(r"(?:^|/)(?P<id>ZT\d+_[A-Za-z0-9_-]+?)_patch_\d+_class_\d+\.jpe?g$", re.IGNORECASE)
#: array → official split
ARRAYS: dict[str, SplitName] = {"ZT111": "train", "ZT199": "train", "ZT204": "train", "ZT76": "val",
                                "ZT80": "test"}
_NAME = re.compile(r"^(?P<spot>(?P<array>ZT\d+)_[A-Za-z0-9_-]+?)_patch_(?P<j>\d+)_class_(?P<grade>\d+)$")
_JPEG = {".jpg", ".jpeg"}


class GleasonArvaniti(Converter):
    """create_patches.py output; split pinned by array; one group per TMA spot."""

    group_id = SPOT
    group_id_kind = "TMA spot"

    def base(self) -> Path:
        """The folder create_patches.py wrote into: the source folder, or its ``dataset_TMA/``."""
        inner = self.root / DATASET_DIR
        return inner if not (self.root / TRAIN_DIR).is_dir() and (inner / TRAIN_DIR).is_dir() else self.root

    def test_dir(self, base: Path) -> str:
        """Which of :data:`TEST_DIRS` holds the test patches (exactly one must)."""
        found = [d for d in TEST_DIRS if (base / d).is_dir()]
        if len(found) > 1:
            raise RawDataError(f"{base} holds both {found[0]} and {found[1]}: two runs of create_patches.py; keep "
                               "one of them")
        if not found:
            raise RawDataError(f"missing {base / TEST_DIRS[0]} (or {base / TEST_DIRS[1]}): run "
                               "utils/create_patches.py of eiriniar/gleason_CNN on the Dataverse images so that it "
                               "writes the 750 px patches there (see docs/sources/gleason_arvaniti.md)")
        return found[0]

    def scan(self) -> Iterator[Sample]:
        root = self.base()
        for folder, test in ((TRAIN_DIR, False), (self.test_dir(root), True)):
            base = root / folder
            if not base.is_dir():
                raise RawDataError(f"missing {base}: run utils/create_patches.py of eiriniar/gleason_CNN on the "
                                   "Dataverse images so that it writes the 750 px patches there (see "
                                   "docs/sources/gleason_arvaniti.md)")
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
            where = "the test patches (ZT80 only)" if test else f"{TRAIN_DIR} (ZT76, ZT111, ZT199, ZT204)"
            raise RawDataError(f"{path}: array {array} does not belong in {where}; check the patch folders")
        return Sample(key=path.stem, group=match.group("spot"), label=grade, source=self.rel(path),
                      um_per_px=self.task.um_per_px, split=split)


def converter(task: Task, root: Path) -> Converter:
    """The converter of GleasonArvaniti over ``root``."""
    return GleasonArvaniti(task, root)
