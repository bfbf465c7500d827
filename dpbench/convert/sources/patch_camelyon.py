"""PatchCamelyon (Zenodo 2546921): one HDF5 pair per official split, read lazily with h5py.

Raw layout (under ``<raw>/patch_camelyon/``)::

    camelyonpatch_level_2_split_{train,valid,test}_x.h5[.gz]   "x": N x 96 x 96 x 3 uint8 patches
    camelyonpatch_level_2_split_{train,valid,test}_y.h5[.gz]   "y": N x 1 x 1 x 1 labels (1 = tumour in the
                                                               central 32x32 px)
    camelyonpatch_level_2_split_{train,valid,test}_meta.csv    optional: coord_y, coord_x, tumor_patch,
                                                               center_tumor_patch, wsi (one row per patch)

The files can be left as downloaded, here or in the ``.archives/`` subfolder where ``dpbench sources fetch``
keeps them: a ``.h5.gz`` without its ``.h5`` is decompressed once into this folder through a temporary file
renamed into place (so an interrupted run never leaves a truncated ``.h5``); the folder must then be
writable. An existing ``.h5`` is always preferred. The three official splits are kept
(``valid`` is dpbench's ``val``) and pinned. Patch ``i`` of split ``s`` has key ``<s>-<i:06d>`` and source
``camelyonpatch_level_2_split_<s>_x.h5#<i>``; its pixels are read from the HDF5 file only when its shard is
written. Groups: the source slide (``wsi`` column) when a split's metadata CSV is present, else the patch
itself. A slide that the metadata places in two splits (not expected) keeps one group per split, with a
warning, since every split is pinned. Shapes, lengths, label values and metadata rows are checked; any
mismatch stops the conversion with the file named.

Checked against: the nine file names and their md5 in the download table of ``README.md`` of GitHub
``basveeling/pcam`` (the registry pins those md5, which ``dpbench sources fetch`` verifies). Assumption: the
metadata CSV columns (``wsi`` ...), which that README does not list.
"""

from __future__ import annotations

import csv
import gzip
import logging
import shutil
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from dpbench.convert.base import ARCHIVES, Converter
from dpbench.errors import RawDataError
from dpbench.io import atomic_open
from dpbench.tasks.models import SplitName, Task
from dpbench.tasks.samples import Sample

SOURCE_IDS = ("patch_camelyon",)
PREFIX = "camelyonpatch_level_2_split_"
#: PCam file split name → dpbench split
SPLITS: tuple[tuple[str, SplitName], ...] = (("train", "train"), ("valid", "val"), ("test", "test"))
PATCH = 96
log = logging.getLogger("dpbench.convert")


def _h5py() -> Any:
    import h5py

    return h5py


class PatchCamelyon(Converter):
    """Official HDF5 splits; pixels read per patch from the ``x`` file."""

    def __init__(self, task: Task, root: Path) -> None:
        super().__init__(task, root)
        self._open: dict[str, Any] = {}

    def scan(self) -> Iterator[Sample]:
        found: list[tuple[str, int, int, str | None, SplitName]] = []  # (x file, index, label, wsi, split)
        for name, split in SPLITS:
            x_path = self._h5(f"{PREFIX}{name}_x.h5")
            labels = self._labels(self._h5(f"{PREFIX}{name}_y.h5"))
            count = self._check_x(x_path)
            if count != len(labels):
                raise RawDataError(f"{x_path} holds {count} patches but its y file {len(labels)} labels; "
                                   "re-download both")
            slides = self._slides(self._find(f"{PREFIX}{name}_meta.csv"), labels)
            for i, label in enumerate(labels.tolist()):
                found.append((x_path.name, i, label, slides[i] if slides else None, split))
        splits_of: dict[str, set[str]] = {}
        for _, _, _, wsi, split in found:
            if wsi is not None:
                splits_of.setdefault(wsi, set()).add(split)
        shared = {w for w, s in splits_of.items() if len(s) > 1}
        if shared:
            log.warning("%s: %d slide(s) appear in several official splits (e.g. %s); grouped per split",
                        self.task.name, len(shared), sorted(shared)[0])
        for x_name, i, label, wsi, split in found:
            key = f"{split}-{i:06d}"
            group = key if wsi is None else (f"{split}:{wsi}" if wsi in shared else wsi)
            yield Sample(key=key, group=group, label=label, source=f"{x_name}#{i}",
                         um_per_px=self.task.um_per_px, split=split)

    # -- raw files ------------------------------------------------------------------------------------------
    def _find(self, name: str) -> Path:
        """``name`` in the source folder, else in its ``.archives/`` (the first path when in neither)."""
        here = self.root / name
        fetched = self.root / ARCHIVES / name
        return fetched if not here.is_file() and fetched.is_file() else here

    def _h5(self, name: str) -> Path:
        """The ``.h5`` file ``name``, decompressing its ``.gz`` into the source folder once when only that exists."""
        path = self.root / name
        if path.is_file():
            return path
        packed = self._find(name + ".gz")
        if not packed.is_file():
            raise RawDataError(f"missing {path} (or {packed.name}); download it from Zenodo record 2546921")
        try:  # atomic: a failed run leaves no partial file behind
            with gzip.open(packed, "rb") as source, atomic_open(path) as target:
                shutil.copyfileobj(source, target, 1 << 22)
        except (OSError, EOFError, zlib.error) as exc:
            raise RawDataError(f"cannot decompress {packed} to {path} ({exc}): re-download it, or gunzip it "
                               "yourself when the folder is read-only") from exc
        log.info("%s: decompressed %s", self.task.name, packed)
        return path

    def _file(self, path: Path) -> Any:
        if path.name not in self._open:
            try:
                self._open[path.name] = _h5py().File(path, "r")
            except OSError as exc:
                raise RawDataError(f"cannot open {path} as HDF5 ({exc}); re-download it") from exc
        return self._open[path.name]

    def _labels(self, path: Path) -> np.ndarray:
        data = self._file(path).get("y")
        if data is None or data.ndim < 1 or int(np.prod(data.shape[1:], dtype=np.int64)) != 1:
            raise RawDataError(f"{path} lacks an N x 1 x 1 x 1 'y' dataset; re-download it")
        labels = np.asarray(data[...]).reshape(-1).astype(np.int64)
        bad = np.flatnonzero((labels < 0) | (labels > 1))
        if bad.size:
            raise RawDataError(f"{path}: label {labels[bad[0]]} of patch {bad[0]} is not 0 or 1; re-download it")
        return labels

    def _check_x(self, path: Path) -> int:
        data = self._file(path).get("x")
        if data is None or data.ndim != 4 or data.shape[1:] != (PATCH, PATCH, 3) or data.dtype != np.uint8:
            shape = None if data is None else (data.shape, data.dtype)
            raise RawDataError(f"{path} lacks an N x {PATCH} x {PATCH} x 3 uint8 'x' dataset (found {shape}); "
                               "re-download it")
        return int(data.shape[0])

    def _slides(self, path: Path, labels: np.ndarray) -> list[str] | None:
        """The source slide of each patch from a metadata CSV, or None when the CSV is absent."""
        if not path.is_file():
            return None
        with open(path, newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.reader(handle))
        if not rows or "wsi" not in rows[0]:
            raise RawDataError(f"{path} has no 'wsi' column; re-download it or delete it to group by patch")
        column = rows[0].index("wsi")
        slides = []
        for line, row in enumerate(rows[1:], start=2):
            if len(row) != len(rows[0]) or not row[column].strip():
                raise RawDataError(f"{path} line {line}: malformed row {row!r}; re-download the file")
            slides.append(row[column].strip())
        if len(slides) != len(labels):
            raise RawDataError(f"{path} has {len(slides)} rows for {len(labels)} patches; re-download it")
        return slides

    # -- pixels ---------------------------------------------------------------------------------------------
    def read(self, rel: str) -> np.ndarray:
        name, _, index = rel.partition("#")
        data = self._file(self.root / name)["x"]
        i = int(index)
        if not 0 <= i < data.shape[0]:
            raise RawDataError(f"patch {i} is outside {self.root / name}; the raw file changed since the scan")
        return np.ascontiguousarray(data[i])


def converter(task: Task, root: Path) -> Converter:
    """The converter of PatchCamelyon over ``root``."""
    return PatchCamelyon(task, root)
