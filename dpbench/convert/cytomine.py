"""Readers for the metadata files that accompany a Cytomine crop dump (term names, image groups, class maps).

* ``terms.json``: ``{"<term id>": "<term name>", ...}``, or the list of term objects a client call such as
  ``TermCollection().fetch_with_filter("project", id)`` serialises (``[{"id": 12, "name": "Necrosis"}, ...]``).
* ``terms.csv``: a header row with ``id`` and ``name`` columns (any other columns are ignored).
* ``images.csv``: a header row with an ``image`` column (the Cytomine image-instance id, ``id`` is accepted
  too), a group column (the first of ``group``, ``patient``, ``slide``) and optionally ``split``
  (``train``, ``val``, ``test`` or empty).
* ``classes.json``: ``{"<folder, term name or term id>": "<class name>" | <label> | null, ...}``.

Every malformed file raises :class:`RawDataError` naming it and what to fix.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dpbench.errors import RawDataError
from dpbench.tasks.models import SPLITS, SplitName

TERMS_FILES = ("terms.json", "terms.csv")
IMAGES_FILE = "images.csv"
CLASSES_FILE = "classes.json"
#: Folder names a crop dump gives annotations that carry no term.
NO_TERM = frozenset({"", "none", "null", "no_term", "noterm"})


def norm(name: str) -> str:
    """A folder, term or class name compared case-insensitively, with ``-``, spaces and ``_`` alike."""
    return re.sub(r"[\s\-_]+", "_", name.strip().lower())


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RawDataError(f"cannot read {path} ({exc}); write it as UTF-8 JSON") from exc


def _load_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            rows = list(reader)
            header = [h.strip().lower() for h in reader.fieldnames or []]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise RawDataError(f"cannot read {path} ({exc}); write it as UTF-8 CSV with a header row") from exc
    clean = [{(k or "").strip().lower(): (v or "").strip() for k, v in row.items() if k is not None} for row in rows]
    return header, clean


def terms_file(folder: Path) -> Path | None:
    """The term-name file of a crop dump in ``folder`` (``terms.json`` first), or None."""
    for name in TERMS_FILES:
        if (folder / name).is_file():
            return folder / name
    return None


def read_terms(path: Path) -> dict[str, str]:
    """Term id (as text) → term name from ``terms.json`` or ``terms.csv``."""
    pairs: list[tuple[object, object]] = []
    if path.suffix == ".json":
        data = _load_json(path)
        if isinstance(data, dict):
            pairs = list(data.items())
        elif isinstance(data, list) and all(isinstance(d, dict) and "id" in d and "name" in d for d in data):
            pairs = [(d["id"], d["name"]) for d in data]
        else:
            raise RawDataError(f"{path} must map term id to term name, or list objects with 'id' and 'name'")
    else:
        header, rows = _load_csv(path)
        if "id" not in header or "name" not in header:
            raise RawDataError(f"{path} needs a header row with 'id' and 'name' columns (found {header})")
        pairs = [(r["id"], r["name"]) for r in rows]
    terms: dict[str, str] = {}
    for ident, name in pairs:
        key = str(ident).strip()
        if not key or not isinstance(name, str) or not name.strip():
            raise RawDataError(f"{path}: term {ident!r} has no name; every term needs an id and a name")
        if terms.setdefault(key, name.strip()) != name.strip():
            raise RawDataError(f"{path}: term id {key} is listed twice with different names")
    return terms


@dataclass(frozen=True)
class ImageInfo:
    """What ``images.csv`` says about one Cytomine image: its group and, optionally, its official split."""

    group: str
    split: SplitName | None


def read_images(path: Path) -> dict[str, ImageInfo]:
    """Image id → group (slide or patient) and optional split, from ``images.csv``."""
    header, rows = _load_csv(path)
    image_col = next((c for c in ("image", "id") if c in header), None)
    group_col = next((c for c in ("group", "patient", "slide") if c in header), None)
    if image_col is None or group_col is None:
        raise RawDataError(f"{path} needs a header row with an 'image' column and a 'group' (or 'patient', "
                           f"'slide') column (found {header})")
    images: dict[str, ImageInfo] = {}
    for line, row in enumerate(rows, start=2):
        image, group, split = row.get(image_col, ""), row.get(group_col, ""), row.get("split", "").lower()
        if not image or not group:
            raise RawDataError(f"{path}, line {line}: empty image or group; fill both")
        if split and split not in SPLITS:
            raise RawDataError(f"{path}, line {line}: split {split!r} is not one of train, val, test (or empty)")
        info = ImageInfo(group, next((s for s in SPLITS if s == split), None))
        if images.setdefault(image, info) != info:
            raise RawDataError(f"{path}: image {image} is listed twice with different values")
    return images


def read_class_map(path: Path, class_names: tuple[str, ...]) -> dict[str, int | None]:
    """Normalised folder/term name or term id → label (None: leave out) from ``classes.json``."""
    data = _load_json(path)
    if not isinstance(data, dict):
        raise RawDataError(f"{path} must be a JSON object mapping folder or term names to class names")
    index = {norm(c): i for i, c in enumerate(class_names)}
    mapping: dict[str, int | None] = {}
    for key, value in data.items():
        label: int | None
        if value is None:
            label = None
        elif isinstance(value, bool) or not isinstance(value, int | str):
            raise RawDataError(f"{path}: {key!r} must map to a class name, a label or null (got {value!r})")
        elif isinstance(value, int):
            if not 0 <= value < len(class_names):
                raise RawDataError(f"{path}: label {value} of {key!r} is outside 0..{len(class_names) - 1}")
            label = value
        elif norm(value) in index:
            label = index[norm(value)]
        else:
            raise RawDataError(f"{path}: {key!r} maps to unknown class {value!r}; use one of "
                               f"{', '.join(class_names)}, a label, or null")
        if mapping.setdefault(norm(key), label) != label:
            raise RawDataError(f"{path}: {key!r} is mapped twice (names are compared case-insensitively)")
    return mapping
