"""Janowczyk use case 6 (IDC): the original 50x50 px breast H&E patches, labelled by folder and file name.

Raw layout (``IDC_regular_ps50_idx5.zip`` extracted under ``<raw>/janowczyk_idc/``, either directly or in an
``IDC_regular_ps50_idx5/`` folder, which is then the only one read)::

    <patient>/0/<patient>_idx5_x<X>_y<Y>_class0.png     IDC- patches
    <patient>/1/<patient>_idx5_x<X>_y<Y>_class1.png     IDC+ patches
    cases_train.txt, cases_val.txt, cases_test.txt      optional: the author's case lists, one patient a line

The patches are kept whole and unchanged. The label is the class folder and must agree with the file name's
``class<C>`` and the file name's patient with its folder: any disagreement, or a name of another form, stops
the conversion with an error naming the file. The group is the patient folder (279 folders, although the
source describes 162 slides).

Official split: the three case lists of the tutorial's code (``DL tutorial Code/6-idc/`` in
``choosehappy/public``: 84 train, 29 val, 49 test patients) are used when they are in the source folder, or
in its ``.archives/`` where ``dpbench sources fetch`` leaves them (all three, or an error). Listed patients
are pinned to their list's split. The lists name only 162 of the 279 folders; the others are pinned to
``train`` (a logged count), so the published val and test sets stay exactly as listed and no data are
dropped. This gives 201/29/49 patients where the paper reports 230/29/20 (its split was not published).
Without the lists the builder's grouped patient split is used (a logged note). Listed patients with no
folder are logged and counted.

Choices the paper leaves open: patches at slide borders are smaller than 50 px in the real data; they are
kept as they are (the paper's 277,524 counts them) rather than padded or dropped, so readers must resize or
pad. Non-PNG files and folders that are not numeric patient ids are skipped and counted.

Checked against the real lists: ``DL tutorial Code/6-idc/cases_train.txt``, ``cases_val.txt`` and
``cases_test.txt`` of GitHub ``choosehappy/public`` (the tests pin a tree of those 162 patients with them).
Assumptions: the 117 unlisted folders and the patch names of the archive (no public listing found; the names
follow the tutorial's ``<patient>_idx5_x<X>_y<Y>_class<C>.png``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

from dpbench.convert.base import ARCHIVES, Converter, subfolders
from dpbench.errors import RawDataError
from dpbench.tasks.models import SPLITS, SplitName, Task
from dpbench.tasks.samples import Sample

SOURCE_IDS = ("janowczyk_idc",)
ARCHIVE_DIR = "IDC_regular_ps50_idx5"
CASE_LIST = "cases_{}.txt"
_NAME = re.compile(r"^(\d+)_idx5_x(\d+)_y(\d+)_class(\d)\.png$")
#: The patient id in a patch path (its folder and its name carry it; they must agree).
PATIENT = re.compile(r"(?:^|/)(?P<id>\d+)_idx5_")
_CLASSES = ("0", "1")
log = logging.getLogger("dpbench.convert")


def read_case_list(path: Path) -> list[str]:
    """Patient ids of a case list (one per line; blank lines ignored), checked to be numeric."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise RawDataError(f"cannot read case list {path} ({exc}); download it again") from exc
    ids = []
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if not text:
            continue
        if not text.isdigit():
            raise RawDataError(f"{path}, line {number}: {text!r} is not a patient id (one number a line "
                               "expected); download the case list again")
        ids.append(text)
    return ids


class JanowczykIdc(Converter):
    """Folder-per-patient, folder-per-class patches; patient groups; official case lists when present."""

    group_id = PATIENT

    def base(self) -> Path:
        """The folder holding the patient folders."""
        nested = self.root / ARCHIVE_DIR
        return nested if nested.is_dir() else self.root

    def official(self) -> dict[str, SplitName] | None:
        """Patient id -> split from the three case lists, or None when none is present."""
        folders = (self.root, self.base(), self.root / ARCHIVES)
        places = {s: [d / CASE_LIST.format(s) for d in folders] for s in SPLITS}
        found = {s: next((p for p in paths if p.is_file()), None) for s, paths in places.items()}
        if not any(found.values()):
            return None
        absent = [places[s][0].name for s in SPLITS if found[s] is None]
        if absent:
            raise RawDataError(f"{self.root}: case list(s) {', '.join(absent)} missing beside the others; put all "
                               "three cases_*.txt of the tutorial's 6-idc folder there, or none")
        out: dict[str, SplitName] = {}
        for split in SPLITS:
            path = found[split]
            assert path is not None
            for pid in read_case_list(path):
                if out.setdefault(pid, split) != split:
                    raise RawDataError(f"{path}: patient {pid} is also in cases_{out[pid]}.txt; a patient can be "
                                       "in one case list only")
        return out

    def scan(self) -> Iterator[Sample]:
        cases = self.official()
        base = self.base()
        seen: set[str] = set()
        for folder in subfolders(base):  # not the case lists, a README...
            if not folder.name.isdigit():
                self.skip("folder name is not a patient id", folder)
                continue
            seen.add(folder.name)
            yield from self._patient(folder, cases)
        if cases is None:
            log.warning("%s: no case lists (cases_train/val/test.txt) in %s: the grouped patient split is used "
                        "instead of the tutorial's official one", self.task.name, self.root)
            return
        extra = sorted(seen - set(cases))
        if extra:
            log.warning("%s: %d patient folder(s) are in none of the case lists and go to train",
                        self.task.name, len(extra))
        absent = sorted(set(cases) - seen)
        if absent:
            log.warning("%s: %d listed patient(s) have no folder in %s: %s", self.task.name, len(absent), base,
                        ", ".join(absent[:10]) + (" ..." if len(absent) > 10 else ""))

    def _patient(self, folder: Path, cases: dict[str, SplitName] | None) -> Iterator[Sample]:
        pid = folder.name
        split: SplitName | None = None if cases is None else cases.get(pid, "train")
        for sub in sorted(p for p in folder.iterdir() if not p.name.startswith(".")):
            if not sub.is_dir():
                self.skip("file outside a class folder", sub)
                continue
            if sub.name not in _CLASSES:
                raise RawDataError(f"unknown class folder {sub}: a patient folder holds only 0 (IDC-) and "
                                   "1 (IDC+)")
            label = int(sub.name)
            for path in sorted(p for p in sub.iterdir() if not p.name.startswith(".")):
                if path.suffix.lower() != ".png" or not path.is_file():
                    self.skip("not a PNG patch", path)
                    continue
                match = _NAME.match(path.name)
                if not match:
                    raise RawDataError(f"{path}: expected a name '<patient>_idx5_x<X>_y<Y>_class<C>.png'; "
                                       "remove or rename the file")
                if match.group(1) != pid:
                    raise RawDataError(f"{path}: the file name's patient {match.group(1)} is not its folder's "
                                       f"({pid}); re-extract the archive")
                if match.group(4) != sub.name:
                    raise RawDataError(f"{path}: the file name says class {match.group(4)} but it is in folder "
                                       f"{sub.name}; re-extract the archive (no label is guessed)")
                yield Sample(key=path.stem, group=pid, label=label, source=self.rel(path),
                             um_per_px=self.task.um_per_px, split=split)


def converter(task: Task, root: Path) -> Converter:
    """The converter of JanowczykIdc over ``root``."""
    return JanowczykIdc(task, root)
