"""BreakHis: whole 700x460 PNG images, benign vs malignant, with the official patient-wise folds.

Raw layout (``BreaKHis_v1.tar.gz`` extracted under ``<raw>/breakhis/``)::

    BreaKHis_v1/histology_slides/breast/benign/SOB/adenosis/SOB_B_A_14-22549AB/40X/SOB_B_A-14-22549AB-40-001.png
                                       /malignant/SOB/ductal_carcinoma/SOB_M_DC_14-2523/100X/...
    Folds.csv      optional (here or inside BreaKHis_v1/): columns fold, mag, grp (train|test), filename
    dsfold1.txt    or the authors' own fold file (here, inside BreaKHis_v1/ or mkfold/), read when there is no
                   Folds.csv: one row ``<image name>|<mag>|<fold>|<train|test>`` per image

An image name ``SOB_<B|M>_<type>-<year>-<id>-<mag>-<seq>.png`` carries the class, tumour subtype, patient
(``<year>-<id>``) and magnification; every one of them must agree with the folders the image sits in
(benign/malignant, subtype folder, ``SOB_<B|M>_<type>_<year>-<id>``, ``<mag>X``), or the conversion stops naming
the file. Images are kept whole; the label is benign (0) or malignant (1); the group is the patient id. The
release has 82 patient folders but 81 patient ids: ``14-13412`` has a ductal (``SOB_M_DC_14-13412``) and a
lobular (``SOB_M_LC_14-13412``) folder, 123 images each with equal counts per magnification, apparently the
same pictures filed under two subtypes (a known defect); both folders form one group. Ids that share a number
but differ in their letters (e.g. ``29960AB`` and ``29960CD``) are different patients, as in the release's
count of 82.

Splits: the paper evaluates on the five official patient-wise folds (per magnification). When a fold file is
present, fold 1 (all magnifications) is the official split: its ``test`` images are pinned to test, and its
``train`` patients to train except 10 % of them per class (at least one when a class has two or more), drawn
by a hash of task, fold and patient id, which are pinned to val. Images not listed in the fold are skipped
with a count, and listed images missing on disk are counted too. The authors' fold files list ``14-13412``'s
ductal folder in train and its lobular folder in test of fold 1 (the same patient on both sides); by rule the
whole patient goes to test, where the published test list puts it, with a logged warning counting the moved
images, so the test list stays complete and no picture sits on both sides. Any other patient in both train and
test of a fold is an error. Without a fold file no split is pinned and the builder splits patients to the
task's target sizes. ``fold_samples(task, root, fold, magnification)`` returns the samples of any fold and
magnification.

Checked against the real names: the 7,663 image paths of the release without patient 14-13412, listed in
``dataset/BreaKHis_v1/mysplit.csv`` of GitHub ``lizbaka/BreakHis-exp`` (80 folders; their paths follow the
name-to-folder rule above), and the two rows of the authors' ``dsfold1.txt`` for 14-13412 quoted in
``project/pipeline/01-data-preprocessing/analysis/find_dash_token_collisions_0to3_vs_1to3.py`` of GitHub
``oleksandr-kardash/synthetic-cancer-cell-image-generation`` (``SOB_M_DC-14-13412-100-001.png|100|1|train``,
``SOB_M_LC-14-13412-100-001.png|100|1|test``). Assumptions: the other rows of the fold files (not public in
full), the names of 14-13412's images (32/33/32/26 per magnification in each folder, from the published
per-class counts minus those of the list above), and the Folds.csv column layout of common copies.
"""
from __future__ import annotations

import csv
import logging
import re
from collections.abc import Iterator
from pathlib import Path

from dpbench.convert.base import Converter
from dpbench.errors import RawDataError
from dpbench.io import shuffle_order
from dpbench.tasks.models import SplitName, Task
from dpbench.tasks.samples import Sample

SOURCE_IDS = ("breakhis",)
ARCHIVE_DIR = "BreaKHis_v1"
FOLDS = "Folds.csv"
#: The authors' own fold files (``dsfold1.txt`` ... ``dsfold5.txt``), read when there is no Folds.csv.
DSFOLD = "dsfold{}.txt"
#: Patients the release files under two subtypes, listed in train and in test of a fold by the authors' files.
SHARED_PATIENTS = frozenset({"14-13412"})
#: The patient id in a BreakHis image path (the group of its images).
PATIENT = re.compile(r"SOB_[BM]_[A-Z]+-(?P<id>\d+-[A-Za-z0-9]+)-\d+-\d+\.png$", re.IGNORECASE)
log = logging.getLogger("dpbench.convert")
MAGNIFICATIONS = (40, 100, 200, 400)
VAL_FRACTION = 0.10
SUBTYPES = {
    "benign": {"adenosis": "A", "fibroadenoma": "F", "phyllodes_tumor": "PT", "tubular_adenoma": "TA"},
    "malignant": {"ductal_carcinoma": "DC", "lobular_carcinoma": "LC", "mucinous_carcinoma": "MC",
                  "papillary_carcinoma": "PC"},
}
_NAME = re.compile(r"^SOB_(?P<cls>[BM])_(?P<type>[A-Z]+)-(?P<year>\d+)-(?P<id>[A-Za-z0-9]+)-(?P<mag>\d+)-"
                   r"(?P<seq>\d+)\.png$", re.IGNORECASE)


class BreakHis(Converter):
    """Whole BreakHis images grouped by patient, pinned to an official fold when a fold file exists.

    ``fold`` picks the official fold (1-5); with ``strict`` a missing fold file is an error instead of a
    fall-back to the builder's split. ``magnification`` (40, 100, 200 or 400) keeps one magnification.
    """

    group_id = PATIENT

    def __init__(self, task: Task, root: Path, fold: int = 1, magnification: int | None = None,
                 strict: bool = False) -> None:
        super().__init__(task, root)
        if not 1 <= fold <= 5:
            raise ValueError(f"BreakHis has folds 1-5, not {fold}")
        if magnification is not None and magnification not in MAGNIFICATIONS:
            raise ValueError(f"BreakHis magnifications are {MAGNIFICATIONS}, not {magnification}")
        self.fold, self.magnification, self.strict = fold, magnification, strict

    def slides_dir(self) -> Path:
        """``histology_slides/breast`` of the extracted archive."""
        for candidate in (self.root / ARCHIVE_DIR / "histology_slides" / "breast",
                          self.root / "histology_slides" / "breast"):
            if candidate.is_dir():
                return candidate
        raise RawDataError(f"no {ARCHIVE_DIR}/histology_slides/breast under {self.root}; extract "
                           f"{ARCHIVE_DIR}.tar.gz there")

    def folds_file(self) -> Path | None:
        """``Folds.csv`` beside or inside the archive folder, else the authors' ``dsfold<N>.txt`` of this fold
        (there or in ``mkfold/``), if present."""
        names = (FOLDS, DSFOLD.format(self.fold))
        for name in names:
            for folder in (self.root, self.root / ARCHIVE_DIR, self.root / "mkfold"):
                if (folder / name).is_file():
                    return folder / name
        return None

    def scan(self) -> Iterator[Sample]:
        breast = self.slides_dir()
        found = [s for s in self._images(breast)
                 if self.magnification is None or self._mag(s) == self.magnification]
        folds = self.folds_file()
        if folds is None:
            if self.strict:
                raise RawDataError(f"{FOLDS} (or {DSFOLD.format(self.fold)}) not found in {self.root}; it is needed "
                                   f"to rebuild fold {self.fold}")
            yield from found
            return
        yield from self._pinned(found, folds)

    @staticmethod
    def _mag(sample: Sample) -> int:
        return int(sample.source.rsplit("/", 2)[-2].rstrip("Xx"))

    def _images(self, breast: Path) -> Iterator[Sample]:
        for class_dir in sorted(p for p in breast.iterdir() if p.is_dir()):
            if class_dir.name not in SUBTYPES:
                raise RawDataError(f"unknown class folder {class_dir}: expected benign or malignant")
            label = self.task.class_names.index(class_dir.name)
            sob = class_dir / "SOB"
            if not sob.is_dir():
                raise RawDataError(f"missing folder {sob}; re-extract {ARCHIVE_DIR}.tar.gz")
            for type_dir in sorted(p for p in sob.iterdir() if p.is_dir()):
                code = SUBTYPES[class_dir.name].get(type_dir.name)
                if code is None:
                    raise RawDataError(f"unknown subtype folder {type_dir}: expected one of "
                                       f"{', '.join(SUBTYPES[class_dir.name])}")
                for path in sorted(type_dir.glob("*/*/*")):
                    if not path.is_file():
                        continue
                    if path.suffix.lower() != ".png":
                        self.skip("not a PNG image", path)
                        continue
                    patient = self._check(path, class_dir.name, code)
                    yield Sample(key=path.stem, group=patient, label=label, source=self.rel(path))

    @staticmethod
    def _check(path: Path, class_name: str, code: str) -> str:
        """The patient id of ``path`` after checking that its name agrees with its folders."""
        match = _NAME.match(path.name)
        if not match:
            raise RawDataError(f"{path}: name is not SOB_<B|M>_<type>-<year>-<id>-<mag>-<seq>.png")
        cls, kind = match["cls"].upper(), match["type"].upper()
        patient = f"{match['year']}-{match['id']}"
        expected = {
            "class": (cls, "B" if class_name == "benign" else "M"),
            "subtype": (kind, code),
            "patient folder": (path.parent.parent.name, f"SOB_{cls}_{kind}_{patient}"),
            "magnification folder": (path.parent.name.upper(), f"{int(match['mag'])}X"),
        }
        for what, (seen, wanted) in expected.items():
            if seen != wanted:
                raise RawDataError(f"{path}: the {what} in the name ({wanted}) disagrees with the folders "
                                   f"({seen}); the file is misplaced or renamed")
        return patient

    def _pinned(self, found: list[Sample], folds: Path) -> Iterator[Sample]:
        listed = read_fold(folds, self.fold)
        on_disk = {s.key for s in found}
        for name, (mag, _) in sorted(listed.items()):
            if Path(name).stem not in on_disk and (self.magnification is None or mag == self.magnification):
                self.skip(f"listed in {folds.name} fold {self.fold} but missing on disk", name)
        listed_as: dict[str, set[str]] = {}
        labels: dict[str, int] = {}
        kept = []
        for sample in found:
            entry = listed.get(f"{sample.key}.png")
            if entry is None:
                self.skip(f"not listed in {folds.name} fold {self.fold}", sample.source)
                continue
            listed_as.setdefault(sample.group, set()).add(entry[1])
            labels.setdefault(sample.group, sample.label)
            kept.append(sample)
        both = sorted(p for p, grps in listed_as.items() if len(grps) > 1)
        for patient in both:
            if patient not in SHARED_PATIENTS:
                raise RawDataError(f"{folds}: patient {patient} is in both train and test of fold {self.fold}; the "
                                   "folds file is damaged")
            moved = sum(1 for s in kept if s.group == patient and listed[f"{s.key}.png"][1] == "train")
            log.warning("%s: fold %d lists patient %s (filed under two subtypes in the release) in train and in "
                        "test; all its images go to test (%d moved from train)", self.task.name, self.fold,
                        patient, moved)
        patient_split = {p: "test" if "test" in grps else "train" for p, grps in listed_as.items()}
        val = self._val_patients([p for p, g in patient_split.items() if g == "train"], labels)
        for sample in kept:
            split: SplitName = "test" if patient_split[sample.group] == "test" else (
                "val" if sample.group in val else "train")
            yield Sample(key=sample.key, group=sample.group, label=sample.label, source=sample.source, split=split)

    def _val_patients(self, train: list[str], labels: dict[str, int]) -> set[str]:
        """10 % of the train patients of each class (by a stable hash), at least one when a class has two."""
        chosen: set[str] = set()
        for label in sorted(set(labels[p] for p in train)):
            members = shuffle_order((p for p in train if labels[p] == label), f"{self.task.name}:{self.fold}")
            if len(members) >= 2:
                chosen.update(members[:max(1, round(VAL_FRACTION * len(members)))])
        return chosen


def read_fold(path: Path, fold: int) -> dict[str, tuple[int, str]]:
    """Image file name → (magnification, ``train``/``test``) of one fold of ``Folds.csv`` or of the authors'
    ``dsfold<N>.txt`` (rows ``name|mag|fold|grp``, no header)."""
    rows: dict[str, tuple[int, str]] = {}
    for number, row in _fold_rows(path):
        try:
            row_fold, mag = int(row["fold"]), int(row["mag"])
        except (TypeError, ValueError) as exc:
            raise RawDataError(f"{path} line {number}: fold/mag are not integers ({row})") from exc
        grp, name = (row["grp"] or "").strip().lower(), Path((row["filename"] or "").strip()).name
        if grp not in ("train", "test") or not name:
            raise RawDataError(f"{path} line {number}: grp must be train or test with a filename ({row})")
        if row_fold != fold:
            continue
        if rows.setdefault(name, (mag, grp)) != (mag, grp):
            raise RawDataError(f"{path} line {number}: {name} is listed twice in fold {fold} with "
                               "different values")
    if not rows:
        raise RawDataError(f"{path} has no row for fold {fold}")
    return rows


def _fold_rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, {fold, mag, grp, filename}) of each row of a fold file, either format."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        if path.suffix.lower() == ".txt":
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                parts = [p.strip() for p in line.split("|")]
                if len(parts) != 4:
                    raise RawDataError(f"{path} line {number}: expected '<name>|<mag>|<fold>|<train|test>', got "
                                       f"{line.strip()!r}")
                yield number, dict(zip(("filename", "mag", "fold", "grp"), parts, strict=True))
            return
        reader = csv.DictReader(handle)
        missing = {"fold", "mag", "grp", "filename"} - {(n or "").strip() for n in reader.fieldnames or []}
        if missing:
            raise RawDataError(f"{path} lacks the column(s) {', '.join(sorted(missing))}; expected fold, mag, "
                               "grp, filename")
        for number, raw_row in enumerate(reader, start=2):
            yield number, {(k or "").strip(): v for k, v in raw_row.items()}  # the header check strips names too


def fold_samples(task: Task, root: Path, fold: int, magnification: int | None = None) -> list[Sample]:
    """The samples of official fold ``fold`` (train/val/test pinned), optionally of one magnification."""
    return BreakHis(task, root, fold=fold, magnification=magnification, strict=True).samples()


def converter(task: Task, root: Path) -> Converter:
    """The converter of BreakHis over ``root`` (fold 1 when a fold file is present)."""
    return BreakHis(task, root)
