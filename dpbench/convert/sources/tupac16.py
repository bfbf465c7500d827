"""TUPAC16 auxiliary mitosis set: high-power fields with mitosis centres, cut into 250 px patches.

Raw layout (the auxiliary-set zips extracted side by side under ``<raw>/tupac16/``)::

    mitoses_train_image_data_part_1/01/01.tif      case 01, HPF 01 (parts 1..3 hold cases 01..73)
    mitoses_train_image_data_part_2/...
    mitoses_ground_truth/01/01.csv                 rows "row,col" (y, x): one mitosis centre per row

or, when the image zips were extracted side by side as they are (their members have no top folder: ``01/01.tif``
... ``73/<hpf>.tif``), the case folders directly in the source folder::

    01/01.tif
    mitoses_ground_truth/01/01.csv

The ground-truth columns are **row, column** (y first); dpbench swaps them into (x, y). An HPF without a
CSV is treated as holding no mitosis, like an empty CSV. A
CSV without a matching image is skipped and counted; a malformed CSV stops the conversion with an error
naming it; a point outside its HPF is skipped and counted.

Patches are 250x250 pixels. Class ``mitosis``: 10 windows around each mitosis, each shifted uniformly by
up to 62.5 px (a quarter of the patch, so the mitosis stays inside) and moved inside the HPF. Class
``no_mitosis``: tiles covering the HPF exhaustively with a 50 px overlap (stride 200; the paper gives no
overlap, and on a 2000 px field this gives 10x10 tiles), plus a last row/column flush with the edge, kept
only when no mitosis centre lies inside.

Group: the case (patient) folder, so all HPFs of a patient fall in one split. The paper's published group
counts (526/74/56 = 656) are HPF counts, so its split was by HPF; dpbench splits by the 73 cases.
There is no official split.

Checked against: the zip member names a third-party loader reads straight from the auxiliary-set archives
(``<case>/<hpf>.tif`` in the image parts, ``mitoses_ground_truth/<case>/<hpf>.csv`` in the ground truth), which
is why both layouts are accepted. Assumptions (no public listing of the archives was found): the member names
themselves, and the row-then-column order of the CSVs (the challenge's description; one third-party loader reads
them as x, y).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from dpbench.convert.base import Converter, subfolders
from dpbench.convert.points import PointConverter, read_point_csv
from dpbench.errors import RawDataError
from dpbench.tasks.models import Task
from dpbench.tasks.samples import Sample

SOURCE_IDS = ("tupac16",)
IMAGE_PARTS = "mitoses_train_image_data_part_*"
GROUND_TRUTH = "mitoses_ground_truth"
OVERLAP = 50
#: The case (patient) folder of an HPF image path.
CASE = re.compile(r"(?:^|/)(?P<id>\d+)/[^/]+$")


class Tupac16(PointConverter):
    """HPF TIFFs of three parts (or of case folders in the source folder), ground truth by case; groups are cases."""

    overlap = OVERLAP
    group_id = CASE
    group_id_kind = "case"

    def scan(self) -> Iterator[Sample]:
        index = {name: i for i, name in enumerate(self.task.class_names)}
        parts = sorted(p for p in self.root.glob(IMAGE_PARTS) if p.is_dir())
        cases_here = [p for p in subfolders(self.root) if p.name.isdigit()]  # parts extracted without a folder
        truth = self.root / GROUND_TRUTH
        if not (parts or cases_here) or not truth.is_dir():
            raise RawDataError(f"{self.root} lacks {IMAGE_PARTS}/ (or case folders 01/ ...) or {GROUND_TRUTH}/; "
                               "extract the TUPAC16 auxiliary mitosis zips (image parts 1-3 and the ground truth) "
                               "there")
        found = [p for part in parts for p in part.rglob("*") if p.is_file()]
        found += [p for case in cases_here for p in case.rglob("*") if p.is_file()]
        images = sorted(found, key=lambda p: (p.parent.name, p.stem, p.as_posix()))
        seen: set[tuple[str, str]] = set()
        for path in images:
            if path.suffix.lower() not in (".tif", ".tiff"):
                self.skip("not a TIFF image", self.rel(path))
                continue
            case, hpf = path.parent.name, path.stem
            seen.add((case, hpf))
            if not (truth / case).is_dir():  # a partial extraction: its mitoses would all become negatives
                self.skip("HPF of a case without a ground-truth folder (labels unknown)", self.rel(path))
                continue
            csv = truth / case / f"{hpf}.csv"
            mitoses = read_point_csv(csv, "yx") if csv.is_file() else np.empty((0, 2))
            yield from self.point_samples(path, prefix=f"{case}-{hpf}", group=f"case{case}",
                                          points=[(index["mitosis"], mitoses)], background=index["no_mitosis"])
        for csv in sorted(truth.rglob("*.csv")):
            if (csv.parent.name, csv.stem) not in seen:
                self.skip("ground truth without a matching HPF image", self.rel(csv))


def converter(task: Task, root: Path) -> Converter:
    """The converter of Tupac16Mitosis over ``root``."""
    return Tupac16(task, root)
