"""MHIST (BMIRDS, Dartmouth): 224 px PNG images listed in one annotations CSV.

Raw layout (``images.zip`` extracted and ``annotations.csv`` placed under ``<raw>/mhist/``)::

    images/MHIST_aaa.png ...
    annotations.csv     Image Name, Majority Vote Label (HP|SSA),
                        Number of Annotators who Selected SSA (Out of 7), Partition (train|test)

Every CSV row becomes one whole image, labelled by its majority vote (HP = 0, SSA = 1, the positive class).
``Partition`` is the official split: ``test`` rows are pinned to test, ``train`` rows are shared by dpbench
between train and val (about 10% val). MHIST publishes no patient ids, so each image is its own group and
the val split is image-level. When the annotator-count column is present it must agree with the majority
vote (SSA when 4 or more of the 7 chose it); a row where it does not is skipped and counted, never
relabelled. A row with an unknown label or partition, a duplicated image name, or an image missing from
``images/`` stops the conversion with the CSV line named; a PNG that no row lists is skipped and counted.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from dpbench.convert.base import Converter, read_rows
from dpbench.errors import RawDataError
from dpbench.tasks.models import SplitName, Task
from dpbench.tasks.samples import Sample

SOURCE_IDS = ("mhist",)
CSV_NAME = "annotations.csv"
IMAGE_DIR = "images"
NAME, LABEL, PARTITION = "Image Name", "Majority Vote Label", "Partition"
VOTES_PREFIX = "Number of Annotators who Selected SSA"
PARTITIONS: dict[str, SplitName | None] = {"train": None, "test": "test"}
ANNOTATORS = 7


class Mhist(Converter):
    """One sample per annotations row; test partition pinned; one group per image."""

    def scan(self) -> Iterator[Sample]:
        table = self.root / CSV_NAME
        images = self.root / IMAGE_DIR
        if not table.is_file():
            raise RawDataError(f"missing {table}: put the annotations.csv of the MHIST download there")
        if not images.is_dir():
            raise RawDataError(f"missing {images}: extract images.zip of the MHIST download there")
        index = {name: i for i, name in enumerate(self.task.class_names)}
        rows = list(read_rows(table, (NAME, LABEL, PARTITION)))
        # Every row holds every header column, in header order.
        votes = next((h for h in rows[0][1] if h.startswith(VOTES_PREFIX)), None) if rows else None
        listed: set[str] = set()
        for line, row in rows:
            name, label, partition = row[NAME], row[LABEL], row[PARTITION]
            if label not in index or partition not in PARTITIONS or not name:
                raise RawDataError(f"{table} line {line}: malformed row (image {name!r}, label {label!r}, "
                                   f"partition {partition!r}); expected HP|SSA and train|test")
            if name in listed:
                raise RawDataError(f"{table} line {line}: image {name} is listed twice")
            listed.add(name)
            path = images / name
            if not path.is_file():
                raise RawDataError(f"missing raw file {path} (listed on line {line} of {table}); "
                                   "re-extract images.zip")
            if votes is not None and not self._agrees(row[votes], label):
                self.skip("majority label contradicts the annotator count", f"{table} line {line}")
                continue
            key = Path(name).stem
            yield Sample(key=key, group=key, label=index[label], source=self.rel(path),
                         um_per_px=self.task.um_per_px, split=PARTITIONS[partition])
        for path in sorted(images.iterdir()):
            if path.name not in listed:
                self.skip(f"not listed in {CSV_NAME}", path)

    @staticmethod
    def _agrees(count: str, label: str) -> bool:
        """Whether the number of SSA votes out of seven gives ``label`` by majority."""
        if not count.isdigit() or int(count) > ANNOTATORS:
            return False
        return (int(count) > ANNOTATORS // 2) == (label == "SSA")


def converter(task: Task, root: Path) -> Converter:
    """The converter of Mhist over ``root``."""
    return Mhist(task, root)
