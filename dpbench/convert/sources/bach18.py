"""BACH 2018 microscopy: each labelled 2048x1536 photo cut into a 4x3 grid of 512 px tiles.

Raw layout (``ICIAR2018_BACH_Challenge.zip`` from Zenodo 3632035 extracted under ``<raw>/bach18/``)::

    ICIAR2018_BACH_Challenge/Photos/Normal/n001.tif ...     100 TIFF photos per class
                                   /Benign/b001.tif ...
                                   /InSitu/is001.tif ...
                                   /Invasive/iv001.tif ...
                                   /microscopy_ground_truth.csv   optional: ``b001.tif,Benign`` rows
    patients.csv                                                    optional, see below

Each photo is tiled from its top-left corner into non-overlapping 512x512 tiles (12 for a 2048x1536 photo, the
paper's 4,800 patches from 400 photos); every tile keeps the photo's class, given by its folder. When
``microscopy_ground_truth.csv`` is present, a photo whose CSV class differs from its folder stops the conversion
(a label is never guessed). A class folder other than the four stops it too; non-TIFF files are skipped with a
count.

Grouping: the patient of each photo is published separately (a spreadsheet linked from the challenge site).
Save it as ``patients.csv`` (in ``<raw>/bach18/`` or beside ``Photos/``) with a header row holding an ``image``
column (photo name, with or without ``.tif``) and a ``patient`` column; the tiles are then grouped by patient,
and a photo missing from the file is an error. Without the file every photo is its own group: the 12 tiles of a
photo always stay together, but photos of one patient may fall in different splits (a warning says so).
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterator
from pathlib import Path

from dpbench.convert.base import Converter
from dpbench.convert.imaging import grid, image_size
from dpbench.errors import RawDataError
from dpbench.tasks.models import Task
from dpbench.tasks.samples import Sample

SOURCE_IDS = ("bach18",)
ARCHIVE_DIR = "ICIAR2018_BACH_Challenge"
TILE = 512
GROUND_TRUTH = "microscopy_ground_truth.csv"
PATIENTS = "patients.csv"
log = logging.getLogger("dpbench.convert")


class Bach18(Converter):
    """Grid tiles of the BACH microscopy photos; grouped by patient when ``patients.csv`` is given."""

    def photos_dir(self) -> Path:
        """The ``Photos`` folder (inside the archive folder, or directly under the source folder)."""
        for candidate in (self.root / ARCHIVE_DIR / "Photos", self.root / "Photos"):
            if candidate.is_dir():
                return candidate
        raise RawDataError(f"no Photos/ folder under {self.root}; extract {ARCHIVE_DIR}.zip there")

    def scan(self) -> Iterator[Sample]:
        photos = self.photos_dir()
        index = {name: i for i, name in enumerate(self.task.class_names)}
        truth = read_ground_truth(photos / GROUND_TRUTH)
        patients = self._patients(photos)
        if patients is None:
            log.warning("%s: no %s found: split by photo, so photos of one patient may land in different "
                        "splits (patient leakage possible)", self.task.name, PATIENTS)
        for folder in sorted(p for p in photos.iterdir() if p.is_dir()):
            if folder.name not in index:
                raise RawDataError(f"unknown class folder {folder}: expected one of {', '.join(index)}")
            for path in sorted(folder.iterdir()):
                if path.suffix.lower() not in (".tif", ".tiff"):
                    self.skip("not a TIFF photo", path)
                    continue
                listed = truth.get(path.stem.lower())
                if listed is not None and listed != folder.name:
                    raise RawDataError(f"{path} is in folder {folder.name} but {photos / GROUND_TRUTH} says "
                                       f"{listed}; fix the file or the folder")
                group = path.stem
                if patients is not None:
                    if path.stem.lower() not in patients:
                        raise RawDataError(f"{PATIENTS} has no patient for {path.name}; add it or remove the file")
                    group = f"patient-{patients[path.stem.lower()]}"
                width, height = image_size(path)
                corners = list(grid(width, height, TILE))
                if not corners:
                    self.skip("photo smaller than one tile", path)
                for x, y in corners:
                    yield Sample(key=f"{path.stem}_x{x:04d}_y{y:04d}", group=group, label=index[folder.name],
                                 source=self.rel(path), coords=(x, y, TILE, TILE), um_per_px=self.task.um_per_px)

    def _patients(self, photos: Path) -> dict[str, str] | None:
        for candidate in (self.root / PATIENTS, photos.parent / PATIENTS, photos / PATIENTS):
            if candidate.is_file():
                return read_patients(candidate)
        return None


def read_ground_truth(path: Path) -> dict[str, str]:
    """Photo stem (lower case) → class name from ``microscopy_ground_truth.csv`` ({} when absent)."""
    if not path.is_file():
        return {}
    truth: dict[str, str] = {}
    with path.open(newline="", encoding="utf-8-sig") as handle:
        for number, row in enumerate(csv.reader(handle), start=1):
            if not row or not row[0].strip():
                continue
            if len(row) < 2 or not row[1].strip():
                raise RawDataError(f"{path} line {number}: expected 'photo,class', got {row!r}")
            truth[Path(row[0].strip()).stem.lower()] = row[1].strip()
    return truth


def read_patients(path: Path) -> dict[str, str]:
    """Photo stem (lower case) → patient id from a ``patients.csv`` with ``image`` and ``patient`` columns."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        columns = {name.strip().lower(): name for name in reader.fieldnames or []}
        if "image" not in columns or "patient" not in columns:
            raise RawDataError(f"{path} needs a header row with 'image' and 'patient' columns "
                               f"(found {reader.fieldnames})")
        patients: dict[str, str] = {}
        for number, row in enumerate(reader, start=2):
            image = (row.get(columns["image"]) or "").strip()
            patient = (row.get(columns["patient"]) or "").strip()
            if not image or not patient:
                raise RawDataError(f"{path} line {number}: empty image or patient ({row})")
            stem = Path(image).stem.lower()
            if patients.setdefault(stem, patient) != patient:
                raise RawDataError(f"{path} line {number}: {image} is given two patients "
                                   f"({patients[stem]}, {patient})")
    if not patients:
        raise RawDataError(f"{path} lists no photo; fill it or remove it")
    return patients


def converter(task: Task, root: Path) -> Converter:
    """The converter of BACH 2018 microscopy over ``root``."""
    return Bach18(task, root)
