"""BreakHis: whole 700x460 PNG images, benign vs malignant, with the official patient-wise folds.

Raw layout (``BreaKHis_v1.tar.gz`` extracted under ``<raw>/breakhis/``)::

    BreaKHis_v1/histology_slides/breast/benign/SOB/adenosis/SOB_B_A_14-22549AB/40X/SOB_B_A-14-22549AB-40-001.png
                                       /malignant/SOB/ductal_carcinoma/SOB_M_DC_14-2523/100X/...
    Folds.csv      optional (here or inside BreaKHis_v1/): columns fold, mag, grp (train|test), filename

An image name ``SOB_<B|M>_<type>-<year>-<id>-<mag>-<seq>.png`` carries the class, tumour subtype, patient
(``<year>-<id>``, the 82 patients of the release) and magnification; every one of them must agree with the
folders the image sits in (benign/malignant, subtype folder, ``SOB_<B|M>_<type>_<year>-<id>``, ``<mag>X``), or
the conversion stops naming the file. Images are kept whole; the label is benign (0) or malignant (1); the group
is the patient. Ids that share a number but differ in their letters (e.g. ``29960AB`` and ``29960CD``) are
different patients, as in the release's count of 82.

Splits: the paper evaluates on the five official patient-wise folds (per magnification). When ``Folds.csv``
is present, fold 1 (all magnifications) is the official split: its ``test`` images are pinned to test, and its
``train`` patients to train except 10 % of them per class (at least one when a class has two or more), drawn
by a hash of task, fold and patient id, which are pinned to val. Images not listed in the fold are skipped
with a count, and listed images missing on disk are counted too; a patient in both train and test of a fold is
an error. Without ``Folds.csv`` no split is pinned and the builder splits patients to the task's target sizes.
``fold_samples(task, root, fold, magnification)`` returns the samples of any fold and magnification.
"""

from __future__ import annotations

import csv
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
    """Whole BreakHis images grouped by patient, pinned to an official fold when ``Folds.csv`` exists.

    ``fold`` picks the official fold (1-5); with ``strict`` a missing ``Folds.csv`` is an error instead of a
    fall-back to the builder's split. ``magnification`` (40, 100, 200 or 400) keeps one magnification.
    """

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
        """``Folds.csv`` beside or inside the archive folder, if present."""
        for candidate in (self.root / FOLDS, self.root / ARCHIVE_DIR / FOLDS):
            if candidate.is_file():
                return candidate
        return None

    def scan(self) -> Iterator[Sample]:
        breast = self.slides_dir()
        found = [s for s in self._images(breast)
                 if self.magnification is None or self._mag(s) == self.magnification]
        folds = self.folds_file()
        if folds is None:
            if self.strict:
                raise RawDataError(f"{FOLDS} not found in {self.root}; it is needed to rebuild fold {self.fold}")
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
                self.skip(f"listed in {FOLDS} fold {self.fold} but missing on disk", name)
        patient_split: dict[str, str] = {}
        labels: dict[str, int] = {}
        kept = []
        for sample in found:
            entry = listed.get(f"{sample.key}.png")
            if entry is None:
                self.skip(f"not listed in {FOLDS} fold {self.fold}", sample.source)
                continue
            grp = entry[1]
            if patient_split.setdefault(sample.group, grp) != grp:
                raise RawDataError(f"{folds}: patient {sample.group} is in both train and test of fold "
                                   f"{self.fold}; the folds file is damaged")
            labels.setdefault(sample.group, sample.label)
            kept.append(sample)
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
    """Image file name → (magnification, ``train``/``test``) of one fold of ``Folds.csv``."""
    rows: dict[str, tuple[int, str]] = {}
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = {"fold", "mag", "grp", "filename"} - {(n or "").strip() for n in reader.fieldnames or []}
        if missing:
            raise RawDataError(f"{path} lacks the column(s) {', '.join(sorted(missing))}; expected fold, mag, "
                               "grp, filename")
        for number, raw_row in enumerate(reader, start=2):
            row = {(k or "").strip(): v for k, v in raw_row.items()}  # the header check strips names too
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


def fold_samples(task: Task, root: Path, fold: int, magnification: int | None = None) -> list[Sample]:
    """The samples of official fold ``fold`` (train/val/test pinned), optionally of one magnification."""
    return BreakHis(task, root, fold=fold, magnification=magnification, strict=True).samples()


def converter(task: Task, root: Path) -> Converter:
    """The converter of BreakHis over ``root`` (fold 1 when ``Folds.csv`` is present)."""
    return BreakHis(task, root)
