"""MITOS-ATYPIA-14: x40 frames with mitosis and not-mitosis points, cut into 323 px patches.

Raw layout (the challenge's training archives extracted under ``<raw>/mitos_atypia14/``)::

    Training Aperio/A03/A03/frames/x40/A03_00Aa.tiff
    Training Aperio/A03/A03/mitosis/A03_00Aa_mitosis.csv        rows "x,y,confidence" in x40 pixels
    Training Aperio/A03/A03/mitosis/A03_00Aa_not_mitosis.csv
    Training Hamamatsu/H03/H03/frames/x40/H03_00Aa.tiff  (same layout)

Every ``frames/x40/*.tiff`` under the folder is used (the x10/x20 frames are not); its CSVs are looked for in
the slide's ``mitosis/`` folder (beside ``frames/``), then in ``frames/x40/mitosis/``. A frame lacking
either CSV is skipped with a counted reason (an empty CSV means "none"), since its labels are unknown.

Patches are 323x323 x40 pixels. Class ``mitosis``: 10 windows around each mitosis point, each shifted
uniformly by up to 80 px (a quarter of the patch, so the point stays inside) and moved inside the frame.
Class ``non_mitosis``: the same 10 shifted windows around each not-mitosis point (the paper's "other"
class; it states the factor for mitoses only, dpbench applies it to both); a not-mitosis window that also
contains a mitosis point is dropped and counted rather than labelled ``non_mitosis``. Class ``no_annotation``: tiles
covering the frame exhaustively with a 64 px overlap (stride 259, about a fifth of the patch, the same
fraction as dpbench's 250 px mitosis tasks; the paper gives no overlap), plus a last row/column flush with
the frame edge, kept only when no mitosis or not-mitosis point lies inside. The confidence column is
ignored: every listed point counts, whatever its confidence. A point outside its frame is skipped and
counted; a malformed CSV stops the conversion with an error naming it.

Group: the slide number without the scanner letter, so ``A03`` (Aperio) and ``H03`` (Hamamatsu), two scans
of one glass slide, fall in the same split (the paper's 22 slide groups suggest it kept them apart).
There is no official split.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from dpbench.convert.base import Converter
from dpbench.convert.points import PointConverter, read_point_csv
from dpbench.errors import RawDataError
from dpbench.tasks.models import Task
from dpbench.tasks.samples import Sample

SOURCE_IDS = ("mitos_atypia14",)
OVERLAP = 64
_SLIDE = re.compile(r"^([AH])(\d+)$")


class MitosAtypia14(PointConverter):
    """x40 frames of both scanners; groups join a slide's two scans."""

    group_id = re.compile(r"(?:^|/)[AH]0*(?P<id>\d+)/frames/x40/[^/]+$")
    group_id_kind = "slide"

    overlap = OVERLAP

    def scan(self) -> Iterator[Sample]:
        index = {name: i for i, name in enumerate(self.task.class_names)}
        frames = sorted(p for p in self.root.rglob("*") if p.is_file() and p.parent.name == "x40"
                        and p.parent.parent.name == "frames" and p.suffix.lower() in (".tif", ".tiff"))
        if not frames:
            raise RawDataError(f"no frames/x40/*.tiff under {self.root}; extract the MITOS-ATYPIA-14 training "
                               "archives ('Training Aperio', 'Training Hamamatsu') there")
        for path in frames:
            slide = path.parents[2].name
            match = _SLIDE.match(slide)
            if match is None:
                raise RawDataError(f"{path}: slide folder {slide!r} is not a scanner letter (A or H) and a "
                                   "number; expected '.../A03/frames/x40/'")
            if not path.stem.startswith(f"{slide}_"):
                raise RawDataError(f"{path}: frame name does not start with its slide id {slide}_")
            found = self._csvs(path)
            if found is None:
                continue
            mitoses, others = found
            yield from self.point_samples(
                path, prefix=path.stem, group=f"slide{int(match.group(2)):02d}",
                points=[(index["mitosis"], mitoses), (index["non_mitosis"], others)],
                background=index["no_annotation"])

    def _csvs(self, frame: Path) -> tuple[np.ndarray, np.ndarray] | None:
        for folder in (frame.parents[2] / "mitosis", frame.parent / "mitosis"):
            yes = folder / f"{frame.stem}_mitosis.csv"
            no = folder / f"{frame.stem}_not_mitosis.csv"
            if yes.is_file() and no.is_file():
                return read_point_csv(yes, "xy"), read_point_csv(no, "xy")
        self.skip("x40 frame without both mitosis CSVs (labels unknown)", self.rel(frame))
        return None


def converter(task: Task, root: Path) -> Converter:
    """The converter of MitosAtypia14 over ``root``."""
    return MitosAtypia14(task, root)
