"""Private ULiège Cytomine tasks: an image-folder export, or a Cytomine annotation-crop dump, per task.

Ten tasks of the paper (Necrosis, ProliferativePattern, CellInclusion, MouseLba, HumanLba, Lung, Breast1,
Breast2, Glomeruli, BoneMarrow) come from data that are not public. A lab that holds them rebuilds them with
``dpbench build --pool mormont2020 --raw DIR``; each task has its own folder, even where two tasks share a
source (ProliferativePattern and CellInclusion; Breast1 and Breast2).

**Where a task folder is looked for.** Under ``DIR``, then ``DIR/private/``, then ``DIR/<source id>/``,
then ``DIR/private/<source id>/``, a folder named after the task (``Necrosis``) or after the authors'
internal name (``ulg_lbtd2_chimio_necrose``; ``cells_no_aug`` = CellInclusion, ``patterns_no_aug`` =
ProliferativePattern, ``glomeruli_no_aug``, ``ulg_breast`` = Breast1, ``ulg_breast2`` = Breast2,
``ulg_lbtd_lba`` = MouseLba, ``ulg_lbtd_tissus`` = Lung, ``ulb_anapath_lba`` = HumanLba, ``ulg_bonemarrow``
= BoneMarrow); names are compared case-insensitively. Two such folders for one task are an error (keep one).
When none exists, a source that has a single task also accepts ``DIR/<source id>/`` (or
``DIR/private/<source id>/``) as the task folder itself.

**Form 1, image-folder export** (the authors' own converted layout)::

    <task>/<class>/<group>_<name>.<ext>
    <task>/<train|val|test>/<class>/<group>_<name>.<ext>

The group (slide, or patient for Breast1/2) is the file name up to its first ``_``. With the split level,
every image is pinned to that split: the authors' split is reproduced exactly, and a group found in two
split folders is reported as leakage. Split folders next to class folders are an error.

**Form 2, Cytomine annotation crops**, recognised by a ``terms.json`` or ``terms.csv`` in the task folder
(term id → term name), as written by the Cytomine Python client's crop dump with a pattern such as
``{term}/{image}_{id}.png``::

    <task>/terms.json                      term id -> term name
    <task>/images.csv                      optional: image id -> group (slide or patient), optional split
    <task>/[<train|val|test>/]<term id>/<image id>_<annotation id>.<ext>

The group is the image (slide) id unless ``images.csv`` gives one, and then every image must be listed; its
optional ``split`` column pins images like split folders do (the two must agree). The client copies an
annotation that carries several terms into each term folder: the copies are merged into one sample when
their terms name one class, and the annotation is skipped (counted, "terms of different classes") when they
do not. Crops in a term-less folder (``None``, ``null``) are skipped (counted, "annotation without a term").
Breast1 and Breast2 are patches cut from polygon annotations and labelled by a segmentation rule, so a crop
dump of their annotations would be a different task: for them only the image-folder export is accepted.

**Class folders and terms → labels.** In this order: an optional ``classes.json`` in the task folder maps
each class folder, term name or term id to a class name, a label (0..K-1) or ``null`` (left out, counted);
it must list every folder present. Otherwise, when the registry knows the class names, folder or term names
are matched to them (case-insensitively; ``-``, spaces and ``_`` alike) and an unknown one is an error.
Otherwise (MouseLba, HumanLba, Lung, BoneMarrow: names not published) the distinct names, sorted as
Python sorts strings (case-sensitive, as torchvision's ``ImageFolder`` that the authors' loader builds on
does, so the labels follow their class indices), give labels 0..K-1; their number must equal the task's
class count, and the mapping is logged as a warning to check. The raw path (``source`` in each sample's
JSON) keeps the folder the label came from.

Images are kept whole: each is the crop of one annotated object (Breast1/2 exports are patches already);
JPEG, TIFF and BMP inputs are decoded and stored as PNG. Files in nested folders, hidden files and files
that are not images are skipped with a counted reason; a file name without ``_`` is an error. Sample keys
are ``<class folder>-<file stem>`` (image-folder form) or ``<image>_<annotation>`` (crop dump), with any
character other than letters, digits, ``_`` and ``-`` replaced by ``-``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from dpbench.convert.base import IMAGE_EXT, Converter, key_safe
from dpbench.convert.cytomine import (
    CLASSES_FILE,
    IMAGES_FILE,
    NO_TERM,
    TERMS_FILES,
    ImageInfo,
    norm,
    read_class_map,
    read_images,
    read_terms,
    terms_file,
)
from dpbench.errors import RawDataError
from dpbench.tasks.models import SPLITS, SplitName, Task
from dpbench.tasks.samples import Sample

log = logging.getLogger("dpbench.convert")

SOURCE_IDS = ("cytomine_necrosis", "cytomine_thyroid", "cytomine_mouse_lba", "cytomine_human_lba",
              "cytomine_lung", "cytomine_breast", "glomeruli", "bone_marrow")
#: The authors' internal folder (and model head) names of the private tasks.
INTERNAL_NAMES: dict[str, str] = {
    "CellInclusion": "cells_no_aug",
    "ProliferativePattern": "patterns_no_aug",
    "Glomeruli": "glomeruli_no_aug",
    "Necrosis": "ulg_lbtd2_chimio_necrose",
    "Breast1": "ulg_breast",
    "Breast2": "ulg_breast2",
    "MouseLba": "ulg_lbtd_lba",
    "Lung": "ulg_lbtd_tissus",
    "HumanLba": "ulb_anapath_lba",
    "BoneMarrow": "ulg_bonemarrow",
}
_METADATA = frozenset({*TERMS_FILES, IMAGES_FILE, CLASSES_FILE})


def _dirs_named(parent: Path, names: set[str]) -> list[Path]:
    if not parent.is_dir():
        return []
    return sorted(p for p in parent.iterdir() if p.is_dir() and p.name.lower() in names)


def locate(task: Task, raw: Path) -> Path | None:
    """The task's folder under ``raw`` (see the module docstring for the search order), or None."""
    from dpbench.tasks.registry import paper_and_public_tasks

    names = {task.name.lower(), INTERNAL_NAMES.get(task.name, task.name).lower()}
    source = {task.source.folder.lower()}
    parents = [raw, raw / "private", *_dirs_named(raw, source), *_dirs_named(raw / "private", source)]
    found: list[Path] = []
    for parent in parents:
        for path in _dirs_named(parent, names):
            if all(path.resolve() != seen.resolve() for seen in found):
                found.append(path)
    if len(found) > 1:
        raise RawDataError(f"task {task.name}: raw data found twice, in {found[0]} and {found[1]}; keep one")
    if found:
        return found[0]
    single = sum(t.source.id == task.source.id for t in paper_and_public_tasks()) == 1
    if single:
        whole = [*_dirs_named(raw, source), *_dirs_named(raw / "private", source)]
        return whole[0] if whole else None
    return None


@dataclass(frozen=True)
class _Crop:
    """One image file of the export: the split folder above it, its class/term folder, its path."""

    split: SplitName | None
    folder: str
    path: Path

    @property
    def prefix(self) -> str:
        return self.path.stem.split("_", 1)[0]


def _key(*parts: str) -> str:
    return key_safe("-".join(parts))


class PrivateExport(Converter):
    """A private task's image-folder export or Cytomine crop dump (the form is detected from its files)."""

    def __init__(self, task: Task, root: Path) -> None:
        super().__init__(task, root)
        self.terms_path = terms_file(root)
        self.form = "cytomine" if self.terms_path else "image-folder"
        self.labels: dict[str, int | None] = {}  # class folder (or term id) → label; None = left out

    def scan(self) -> Iterator[Sample]:
        folders = self._class_folders()
        crops = self._crops(folders)
        if self.terms_path is not None and self.task.origin == "SEG":
            raise RawDataError(f"{self.terms_path}: {self.task.name} is made of {self.task.patch_px} px patches "
                               "labelled from polygon annotations, not of annotation crops; supply the patch export "
                               "(<class>/<patient>_<name>.png) instead of a crop dump")
        if self.terms_path is not None:
            yield from self._cytomine(folders, crops, read_terms(self.terms_path))
        else:
            yield from self._image_folders(folders, crops)

    # -- layout -------------------------------------------------------------------------------------------
    def _subfolders(self, parent: Path) -> list[Path]:
        """Visible sub-folders of ``parent``; other entries (but the metadata files) are skipped, counted."""
        folders = []
        for path in sorted(parent.iterdir()):
            if path.name.startswith("."):
                self.skip("hidden file", path)
            elif path.is_dir():
                folders.append(path)
            elif parent != self.root or path.name.lower() not in _METADATA:
                self.skip("file outside the class folders", path)
        return folders

    def _class_folders(self) -> list[tuple[SplitName | None, Path]]:
        folders = self._subfolders(self.root)
        splits = [p for p in folders if p.name.lower() in SPLITS]
        if not splits:
            return [(None, p) for p in folders]
        if mixed := next((p for p in folders if p not in splits), None):
            raise RawDataError(f"{mixed} is a class folder next to split folders ({', '.join(p.name for p in splits)})"
                               "; put every class folder under train/, val/ or test/, or drop the split level")
        out: list[tuple[SplitName | None, Path]] = []
        for split_dir in splits:
            split = next(s for s in SPLITS if s == split_dir.name.lower())
            out += [(split, path) for path in self._subfolders(split_dir)]
        return out

    def _crops(self, folders: list[tuple[SplitName | None, Path]]) -> list[_Crop]:
        crops: list[_Crop] = []
        for split, folder in folders:
            for path in sorted(folder.iterdir()):
                if path.name.startswith("."):
                    self.skip("hidden file", path)
                elif path.is_dir():
                    self.skip("nested folder inside a class folder", path)
                elif path.suffix.lower() not in IMAGE_EXT:
                    self.skip("not an image file", path)
                elif "_" not in path.stem or path.stem.startswith("_"):
                    pattern = "<image>_<annotation>" if self.form == "cytomine" else "<group>_<name>"
                    raise RawDataError(f"{path}: the file name has no group prefix; name files {pattern}"
                                       f"{path.suffix} (the group is the part before the first '_')")
                else:
                    crops.append(_Crop(split, folder.name, path))
        return crops

    # -- labels -------------------------------------------------------------------------------------------
    def _assign(self, named: dict[str, tuple[str, Path]], what: str) -> dict[str, int | None]:
        """Label of each folder; ``named`` maps a folder name to (its class or term name, its path)."""
        classes = self.task.class_names
        override = self.root / CLASSES_FILE
        labels: dict[str, int | None] = {}
        if override.is_file():
            mapping = read_class_map(override, classes)
            for folder, (name, path) in sorted(named.items()):
                hit = next((norm(k) for k in (folder, name) if norm(k) in mapping), None)
                if hit is None:
                    raise RawDataError(f"{path}: {what} {name!r} is not in {override}; map it to a class name, "
                                       "a label, or null to leave it out")
                labels[folder] = mapping[hit]
        elif self.task.classes is not None:
            index = {norm(c): i for i, c in enumerate(classes)}
            for folder, (name, path) in sorted(named.items()):
                if norm(name) not in index:
                    raise RawDataError(f"{path}: unknown {what} {name!r} for {self.task.name}; expected one of "
                                       f"{', '.join(classes)} (or map it in {CLASSES_FILE})")
                labels[folder] = index[norm(name)]
        else:
            spelled: dict[str, str] = {}  # normalised name → its first spelling in code-point order
            for name, _ in sorted(named.values()):
                spelled.setdefault(norm(name), name)
            distinct = sorted(spelled.values())
            if len(distinct) != self.task.n_classes:
                raise RawDataError(f"{self.root}: {len(distinct)} {what}s ({', '.join(distinct)}) but "
                                   f"{self.task.name} has {self.task.n_classes} classes; add or remove folders, "
                                   f"or map them in {CLASSES_FILE}")
            labels = {folder: distinct.index(spelled[norm(name)]) for folder, (name, _) in sorted(named.items())}
            log.warning("%s: class names are not published; labels from the sorted %s names: %s", self.task.name,
                        what, ", ".join(f"{n}={i}" for i, n in enumerate(distinct)))
        self.labels = labels
        return labels

    def _pin(self, pins: dict[str, tuple[SplitName, Path]], group: str, split: SplitName | None,
             path: Path) -> None:
        """Record ``group``'s official split; a group in two splits is leakage."""
        if split is None:
            return
        first = pins.setdefault(group, (split, path))
        if first[0] != split:
            raise RawDataError(f"{self.task.name}: group {group!r} is in both {first[0]} ({first[1]}) and "
                               f"{split} ({path}); a slide or patient must sit in one split only")

    # -- forms ----------------------------------------------------------------------------------------------
    def _image_folders(self, folders: list[tuple[SplitName | None, Path]], crops: list[_Crop]) -> Iterator[Sample]:
        named = {path.name: (path.name, path) for _, path in folders}
        labels = self._assign(named, "class folder")
        pins: dict[str, tuple[SplitName, Path]] = {}
        for crop in crops:
            label = labels[crop.folder]
            if label is None:
                self.skip(f"class folder left out by {CLASSES_FILE}", crop.path)
                continue
            self._pin(pins, crop.prefix, crop.split, crop.path)
            yield Sample(key=_key(norm(crop.folder), crop.path.stem), group=crop.prefix, label=label,
                         source=self.rel(crop.path), um_per_px=self.task.um_per_px, split=crop.split)

    def _cytomine(self, folders: list[tuple[SplitName | None, Path]], crops: list[_Crop],
                  terms: dict[str, str]) -> Iterator[Sample]:
        named: dict[str, tuple[str, Path]] = {}
        for _, path in folders:
            if path.name.lower() in NO_TERM:
                continue
            if path.name not in terms:
                raise RawDataError(f"{path}: term id {path.name} is not in {self.terms_path}; export the "
                                   "project's terms again")
            named[path.name] = (terms[path.name], path)
        labels = self._assign(named, "term")
        images = read_images(self.root / IMAGES_FILE) if (self.root / IMAGES_FILE).is_file() else None
        copies: dict[str, list[_Crop]] = {}
        for crop in crops:
            if crop.folder.lower() in NO_TERM:
                self.skip("annotation without a term", crop.path)
            else:
                copies.setdefault(crop.path.stem, []).append(crop)
        pins: dict[str, tuple[SplitName, Path]] = {}
        for stem, same in sorted(copies.items()):
            if len({c.split for c in same}) > 1:
                raise RawDataError(f"{same[0].path} and {same[-1].path}: one annotation in two split folders")
            found = {label for c in same if (label := labels[c.folder]) is not None}
            if not found:
                self.skip(f"annotation whose terms are left out by {CLASSES_FILE}", same[0].path)
                continue
            if len(found) > 1:
                self.skip("annotation with terms of different classes", same[0].path)
                continue
            first = next(c for c in same if labels[c.folder] is not None)
            for extra in same:
                if extra is not first:
                    self.skip("extra copy of an annotation with several terms", extra.path)
            info = self._image_info(images, first)
            split = self._split_of(first, info)
            self._pin(pins, info.group, split, first.path)
            yield Sample(key=_key(stem), group=info.group, label=found.pop(), source=self.rel(first.path),
                         um_per_px=self.task.um_per_px, split=split)

    def _image_info(self, images: dict[str, ImageInfo] | None, crop: _Crop) -> ImageInfo:
        if images is None:
            return ImageInfo(crop.prefix, None)
        if crop.prefix not in images:
            raise RawDataError(f"{self.root / IMAGES_FILE}: image {crop.prefix} (of {crop.path}) is not listed; "
                               "add a row for it (every image needs its group)")
        return images[crop.prefix]

    def _split_of(self, crop: _Crop, info: ImageInfo) -> SplitName | None:
        if crop.split and info.split and crop.split != info.split:
            raise RawDataError(f"{crop.path} sits in {crop.split}/ but {self.root / IMAGES_FILE} puts image "
                               f"{crop.prefix} in {info.split}; make them agree")
        return crop.split or info.split


def converter(task: Task, root: Path) -> Converter:
    """The converter of a private task over its folder ``root``."""
    return PrivateExport(task, root)
