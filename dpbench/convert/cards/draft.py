"""``dpbench tasks init``: a first task card drafted from a folder or a table, for the user to edit.

The scan reads names and headers only: the class folders (or labels, or annotation classes), the groups, a split
column, the patch size and, for slides, the scan resolution. :func:`render_card` writes the card as commented YAML.
"""

from __future__ import annotations

import csv
import os
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

from dpbench.convert.annotations import read_regions
from dpbench.convert.base import IMAGE_EXT, raw_files, subfolders
from dpbench.convert.cards.slides import SLIDE_SUFFIXES, annotation_file
from dpbench.convert.cards.table import COLUMNS, PARQUET, table_rows
from dpbench.convert.imaging import image_size
from dpbench.errors import DpbenchError
from dpbench.tasks.models import Licence, Organ, Stain
from dpbench.tasks.registry import all_tasks

TABLE_SUFFIXES = (".csv", *PARQUET)
BACKGROUND_NAMES = frozenset({"background", "glass", "bg", "empty", "non-tissue"})


@dataclass
class Draft:
    """A card's fields as scanned, and what the user should check."""

    fields: dict[str, Any]
    notes: list[str] = field(default_factory=list)


def task_name(text: str) -> str:
    """A valid task name from a folder or file name, never a registry task's."""
    name = re.sub(r"[^A-Za-z0-9_\-]+", "-", text).strip("-_") or "MyTask"
    name = name if name[0].isalpha() else f"Task-{name}"
    return f"{name}-own" if name.lower() in {n.lower() for n in all_tasks()} else name


def draft_card(target: Path, card: Path, name: str | None = None) -> Draft:
    """The draft card of the data at ``target`` (a class-folder tree, a slide folder or a CSV/Parquet table), whose
    ``data.path`` is written relative to the folder of ``card``."""
    if target.is_file() and target.suffix.lower() in TABLE_SUFFIXES:
        draft = _table(target)
    elif target.is_dir() and any(annotation_file(p.parent, p) for p in _slides(target)):
        draft = _slides_draft(target)
    elif target.is_dir() and subfolders(target):
        draft = _folders(target)
    else:
        raise DpbenchError(f"cannot tell what {target} holds: give a folder of class folders (DATA/<class>/<group>/"
                           "<image>), a folder of slides with their .geojson or .xml annotations, or a .csv or "
                           ".parquet table (path,label,group[,split])")
    relative = Path(os.path.relpath(target.resolve(), card.resolve().parent)).as_posix()
    draft.fields = {"name": name or task_name(target.stem if target.is_file() else target.resolve().name),
                    **draft.fields}
    draft.fields["data"] = {"kind": draft.fields["data"]["kind"], "path": relative,
                            **{k: v for k, v in draft.fields["data"].items() if k != "kind"}}
    return draft


def _groups_note(per_class: dict[str, set[str]], unit: str, notes: list[str]) -> None:
    for cls, groups in per_class.items():
        notes.append(f"class {cls}: {len(groups)} {unit}(s)")
    few = [c for c, g in per_class.items() if len(g) < 3]
    if few:
        notes.append(f"WARNING: class(es) {', '.join(few)} have fewer than 3 {unit}s; a train/val/test split needs at "
                     f"least 3 {unit}s of every class (2 with split.fractions.val: 0)")


def _folders(root: Path) -> Draft:
    per_class: dict[str, set[str]] = defaultdict(set)
    sides: Counter[tuple[int, int]] = Counter()
    direct = nested = 0
    for folder in subfolders(root):
        images = [p for p in raw_files(folder) if p.suffix.lower() in IMAGE_EXT]
        for path in images:
            parts = path.relative_to(folder).parts
            direct, nested = direct + (len(parts) == 1), nested + (len(parts) > 1)
            per_class[folder.name].add(parts[0] if len(parts) > 1 else path.name)
        for path in images[:20]:
            sides[image_size(path)] += 1
    by_folder = nested >= direct
    notes: list[str] = []
    if direct and nested:
        notes.append(f"WARNING: {direct} image(s) lie directly in class folders and {nested} in sub-folders: move "
                     "each image into its group's sub-folder (DATA/<class>/<group>/)")
    unit = "slide" if by_folder else "image"
    _groups_note(per_class, "group sub-folder" if by_folder else "image", notes)
    if by_folder:
        notes.append("the sub-folders under each class are taken as slides: set split_unit: patient if they are "
                     "patients")
    side = next(iter(sides)) if len(sides) == 1 else None
    return Draft(_common(sorted(per_class), unit, patch_px=side[0] if side and side[0] == side[1] else None,
                         data={"kind": "folders", "group": "folder" if by_folder else "image"}), notes)


def _header(path: Path) -> list[str]:
    if path.suffix.lower() in PARQUET:
        import pandas as pd

        return [str(c) for c in pd.read_parquet(path).columns]
    with open(path, newline="", encoding="utf-8-sig") as handle:
        return [c.strip() for c in next(csv.reader(handle), [])]


def _table(path: Path) -> Draft:
    per_class: dict[str, set[str]] = defaultdict(set)
    for _, row in table_rows(path, COLUMNS):
        per_class[row["label"]].add(row["group"])
    per_class.pop("", None)
    notes: list[str] = []
    _groups_note(per_class, "group", notes)
    split = {"column": "split"} if "split" in _header(path) else None
    if split:
        notes.append("the table's split column prescribes train/val/test (empty cells are split by the fractions)")
    return Draft(_common(sorted(per_class), "patient", split=split, data={"kind": "table"}), notes)


def _slides(root: Path) -> list[Path]:
    return [p for p in raw_files(root) if p.suffix.lower() in SLIDE_SUFFIXES]


def _slides_draft(root: Path) -> Draft:
    from dpbench.convert.slides import open_slide, slide_mpp

    per_class: dict[str, set[str]] = defaultdict(set)
    mpps: list[float] = []
    for path in _slides(root):
        note = annotation_file(path.parent, path)
        if note is None:
            continue
        for region in read_regions(note)[0]:
            per_class[region.label].add(path.name)
        slide = open_slide(path)
        mpps.append(slide_mpp(slide) or 0.5)
        slide.close()
    n_slides = len({s for groups in per_class.values() for s in groups})
    notes: list[str] = []
    _groups_note(per_class, "slide", notes)
    data: dict[str, Any] = {"kind": "slides", "group": "slide" if n_slides >= 3 else "annotation",
                            "min_coverage": 0.5, "min_tissue": 0.5,
                            "background": sorted(c for c in per_class if c.lower() in BACKGROUND_NAMES)}
    if data["group"] == "annotation":
        notes.append("fewer than 3 slides: patches are grouped by annotated region (data.group: annotation), so one "
                     "slide reaches several splits; annotate more slides for a slide-level split")
    um = max(0.5, round(max(mpps), 3)) if mpps else 0.5
    return Draft(_common(sorted(per_class), "slide" if data["group"] == "slide" else "region", um_per_px=um,
                         patch_px=224, data=data), notes)


def _common(classes: list[str], unit: str, *, patch_px: int | None = None, um_per_px: float | None = None,
            split: dict[str, Any] | None = None, data: dict[str, Any]) -> dict[str, Any]:
    return {"pool": None, "description": "", "classes": classes, "split_unit": unit,
            "split": {"fractions": {"train": 0.6, "val": 0.2, "test": 0.2}, **(split or {})},
            "licence": "proprietary", "availability": "private", "citation": "", "organ": "unspecified",
            "stain": "H&E", "um_per_px": um_per_px, "patch_px": patch_px, "data": data}


_COMMENTS = {
    "name": "task name: letters, digits, _ and - (never a dpbench registry task's name)",
    "pool": "your pool's name (lower case); cards built together share it. Empty: custom-<name>",
    "description": "one line: what the task is",
    "classes": "class names in label order (label 0 first): class folders, table labels or annotation classes",
    "split_unit": "what one group is: patient, slide, region (an annotated area) or image; a group goes whole to "
                  "one split",
    "split": "target image fractions per split (val may be 0); column: a table column prescribing the split",
    "licence": f"one of: {', '.join(get_args(Licence))}",
    "availability": "public, registration or private",
    "citation": "BibTeX entry of your data, if published",
    "organ": f"one of: {', '.join(get_args(Organ))} (other: also set organ_other: <organ>)",
    "stain": f"one of: {', '.join(get_args(Stain))} (other: also set stain_other: <stain>)",
    "um_per_px": "microns per pixel of the patches (slides: patches are cut at this resolution)",
    "patch_px": "patch side in pixels (slides: the side of the patches cut)",
    "data": "where the images are (path relative to this card): kind folders, table or slides",
}


def render_card(fields: dict[str, Any]) -> str:
    """The card as YAML, each field under a comment saying what it takes (``None`` fields are left out)."""
    import yaml

    lines = ["# dpbench task card: edit, then build with dpbench build --task THIS_FILE --out DIR",
             "# (fields and data forms: docs/own-data.md)"]
    for key, value in fields.items():
        if value is None or value == "":
            lines.append(f"# {key}:  ({_COMMENTS.get(key, '')})")
            continue
        if key in _COMMENTS:
            lines.append(f"# {_COMMENTS[key]}")
        if isinstance(value, dict):
            text = yaml.safe_dump({key: value}, sort_keys=False, allow_unicode=True, default_flow_style=False)
        else:
            text = f"{key}: " + yaml.safe_dump(value, allow_unicode=True, default_flow_style=True, width=1000)
        lines.append(text.removesuffix("\n...\n").rstrip())
    return "\n".join(lines) + "\n"
