"""Task cards: a user's own task as data (YAML or JSON), checked by the same strict rules as the registry.

A card names the task, its classes, metric, split and licence, and says where its data are: a class-folder tree,
a table (CSV or Parquet: ``path,label,group[,split]``) or annotated whole slides (QuPath GeoJSON or ASAP XML).
:func:`card_task` turns it into a registry :class:`~dpbench.tasks.models.Task`, so a card task is split, built and
evaluated like a registry task, under its own name, in its own pool (``custom-<name>`` unless the card names one),
whose version hashes the cards and their splits. A built pool keeps each card as ``DIR/<task>/card.json``.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from dpbench.errors import DpbenchError
from dpbench.io import canonical_json
from dpbench.tasks.models import (
    SPLITS,
    Licence,
    Metric,
    Organ,
    Source,
    SplitCount,
    SplitName,
    SplitSizes,
    SplitUnit,
    Stain,
    Task,
)

CARD_FILE = "card.json"  # a built pool keeps each task's card as DIR/<task>/card.json
CARD_SUFFIXES = (".yaml", ".yml", ".json")
DEFAULT_FRACTIONS: dict[SplitName, float] = {"train": 0.6, "val": 0.2, "test": 0.2}
_STRICT = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)
_DOCS = "see docs/own-data.md"


class FolderData(BaseModel):
    """A class-folder tree: ``PATH/<class>/<group>/.../<image>`` (``group: folder``, the sub-folder is the slide or
    patient), or ``PATH/<class>/<image>`` with each image its own group (``group: image``)."""

    model_config = _STRICT

    kind: Literal["folders"]
    path: str = "."
    group: Literal["folder", "image"] = "folder"


class TableData(BaseModel):
    """A CSV or Parquet table with columns ``path`` (relative to the table), ``label``, ``group`` and, when the
    card's ``split.column`` names one, a split column (``train``, ``val``, ``test`` or empty)."""

    model_config = _STRICT

    kind: Literal["table"]
    path: str


class SlideData(BaseModel):
    """Whole slides OpenSlide reads, each with an annotation file beside it (or under ``annotations``):
    ``<slide>.geojson`` (QuPath) or ``<slide>.xml`` (ASAP). Patches of ``patch_px`` at the card's ``um_per_px`` are
    cut where one class's polygons cover ``min_coverage`` of them and tissue covers ``min_tissue`` (classes listed
    in ``background`` are exempt from the tissue check)."""

    model_config = _STRICT

    kind: Literal["slides"]
    path: str = "."
    annotations: str | None = None
    group: Literal["slide", "annotation"] = "slide"
    slides_table: str | None = Field(default=None, description="CSV slide,group[,split]: e.g. the patient per slide")
    min_coverage: float = Field(default=0.5, gt=0, le=1)
    min_tissue: float = Field(default=0.5, ge=0, le=1)
    background: tuple[str, ...] = ()
    stride_px: int | None = Field(default=None, ge=1, description="at the card's um_per_px; default patch_px")
    max_per_class: int | None = Field(default=None, ge=1, description="patches per class and slide (seeded draw)")
    slide_um_per_px: float | None = Field(default=None, gt=0, description="for slides that do not record it")


CardData = Annotated[FolderData | TableData | SlideData, Field(discriminator="kind")]


class SplitSpec(BaseModel):
    """Target image fractions of the grouped splitter, and the table column that prescribes a split, if any
    (rows left empty there are split by the fractions)."""

    model_config = _STRICT

    fractions: dict[SplitName, float] = Field(default_factory=lambda: dict(DEFAULT_FRACTIONS))
    column: str | None = None

    @field_validator("fractions")
    @classmethod
    def _fractions(cls, value: dict[SplitName, float]) -> dict[SplitName, float]:
        full = {s: float(value.get(s, 0.0)) for s in SPLITS}
        if any(v < 0 for v in full.values()) or full["train"] <= 0 or full["test"] <= 0:
            raise ValueError("split fractions must be >= 0 with train and test above 0 (val may be 0)")
        return full


class TaskCard(BaseModel):
    """One user task: what it is, how it is scored and split, and where its data are."""

    model_config = _STRICT

    format: Literal[1] = 1
    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_\-]*$")
    pool: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9_\-]*$")
    description: str = ""
    classes: tuple[str, ...] = Field(min_length=2)
    metric: Metric
    split_unit: SplitUnit
    split: SplitSpec = Field(default_factory=SplitSpec)
    licence: Licence = "proprietary"
    availability: Literal["public", "registration", "private"] = "private"
    citation: str = ""
    url: str = ""
    organ: Organ = "unspecified"
    organ_other: str = ""
    stain: Stain
    stain_other: str = ""
    um_per_px: float | None = Field(default=None, gt=0)
    patch_px: int | None = Field(default=None, ge=8)
    data: CardData

    @model_validator(mode="before")
    @classmethod
    def _default_metric(cls, value: Any) -> Any:
        if isinstance(value, dict) and "metric" not in value and isinstance(value.get("classes"), list | tuple):
            value = {**value, "metric": "roc_auc" if len(value["classes"]) == 2 else "accuracy"}
        return value

    @model_validator(mode="after")
    def _check(self) -> TaskCard:
        if self.name.lower().startswith("synthetic-"):
            raise ValueError("name: synthetic-<name> is reserved for dpbench's generated tasks; choose another name")
        if len(set(self.classes)) != len(self.classes) or not all(self.classes):
            raise ValueError("classes must be distinct, non-empty names")
        expected = "roc_auc" if len(self.classes) == 2 else "accuracy"
        if self.metric != expected:
            raise ValueError(f"metric must be {expected} for {len(self.classes)} classes (dpbench's rule)")
        for field, value, other in (("organ", self.organ, self.organ_other), ("stain", self.stain, self.stain_other)):
            if (value == "other") != bool(other):
                raise ValueError(f"{field}: other goes with {field}_other: <what it is> (and only with it)")
        cite = self.citation
        if cite and (not cite.startswith("@") or cite.count("{") != cite.count("}")):
            raise ValueError("citation must be one balanced BibTeX entry starting with '@'")
        self._check_data()
        return self

    def _check_data(self) -> None:
        data = self.data
        if self.split.column and not (isinstance(data, TableData) or getattr(data, "slides_table", None)):
            raise ValueError("split.column needs table data (or data.slides_table for slides)")
        if isinstance(data, FolderData) and data.group == "image" and self.split_unit != "image":
            raise ValueError("data.group: image makes each image its own group: set split_unit: image")
        if isinstance(data, SlideData):
            if self.um_per_px is None or self.patch_px is None:
                raise ValueError("slides are cut at the card's um_per_px and patch_px: give both")
            unknown = [c for c in data.background if c not in self.classes]
            if unknown:
                raise ValueError(f"data.background names {', '.join(unknown)}, not in classes")
            if data.group == "annotation" and self.split_unit != "region":
                raise ValueError("data.group: annotation groups patches by annotated region: set split_unit: region")
            if data.group == "slide" and self.split_unit not in ("slide", "patient"):
                raise ValueError("slides are grouped by slide (or by data.slides_table): set split_unit to slide or "
                                 "patient")

    @property
    def pool_name(self) -> str:
        """The pool this card builds into: its ``pool`` field, else ``custom-<name>`` in lower case."""
        return self.pool or f"custom-{self.name.lower()}"


def card_json(card: TaskCard) -> dict[str, Any]:
    """The card as JSON data (every field, defaults filled in): what a built pool stores."""
    dumped: dict[str, Any] = card.model_dump(mode="json")
    return dumped


def card_sha256(card: TaskCard) -> str:
    """sha256 of the card's canonical JSON (formatting, comments and key order of the file do not count)."""
    return hashlib.sha256(canonical_json(card_json(card))).hexdigest()


def _message(path: Path, exc: ValidationError) -> str:
    errors = exc.errors()
    first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])  # a typo explains the rest
    kinds: dict[str, type[BaseModel]] = {"folders": FolderData, "table": TableData, "slides": SlideData}
    loc = [str(p) for p in first["loc"] if not str(p).startswith(("function-", "tagged-union"))]
    model: type[BaseModel] = TaskCard
    if loc[:1] == ["data"] and len(loc) > 2 and loc[1] in kinds:
        model, loc = kinds[loc[1]], ["data", *loc[2:]]  # the union's tag is not a field
    elif loc[:1] == ["split"]:
        model = SplitSpec
    where = ".".join(loc)
    if first["type"] == "extra_forbidden":
        known = list(model.model_fields) if len(loc) <= 2 else []
        close = difflib.get_close_matches(loc[-1], known, n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        return f"{path}: unknown field {where!r}{hint} ({_DOCS})"
    what = first["msg"].removeprefix("Value error, ")
    if where in ("organ", "stain"):
        what += f" (not listed: use {where}: other with {where}_other: <yours>)"
    more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
    return f"{path}: {where + ': ' if where else ''}{what}{more}; fix the card ({_DOCS})"


def parse_card(data: Any, where: Path) -> TaskCard:
    """A card from already-loaded YAML/JSON data (``where`` names it in errors)."""
    if not isinstance(data, dict):
        raise DpbenchError(f"{where}: a task card is a mapping of fields (name, classes, ...), not "
                           f"{type(data).__name__}; {_DOCS}")
    try:
        return TaskCard.model_validate(data)
    except ValidationError as exc:
        raise DpbenchError(_message(where, exc)) from None


def load_card(path: Path) -> TaskCard:
    """Read and validate a task card (``.yaml``/``.yml`` or ``.json``); one clear error naming the fix otherwise."""
    if path.is_dir():
        found = sorted(p for p in path.iterdir() if p.suffix.lower() in CARD_SUFFIXES and p.is_file())
        if len(found) != 1:
            raise DpbenchError(f"{path} is a folder holding {len(found)} card files; pass the card file itself "
                               "(write one with: dpbench tasks init DATA)")
        path = found[0]
    if not path.is_file():
        raise DpbenchError(f"task card {path} not found; write one with: dpbench tasks init DATA")
    try:
        text = path.read_text(encoding="utf-8")
        if path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise DpbenchError(f"cannot read task card {path} ({exc.__class__.__name__}: {exc}); fix its syntax") from None
    except Exception as exc:  # yaml.YAMLError
        first = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        raise DpbenchError(f"task card {path} is not valid YAML ({first}); fix its syntax") from None
    return parse_card(data, path)


def check_unregistered(card: TaskCard) -> None:
    """Refuse a card whose task or pool name is a registry task or pool: a user task never poses as a paper task."""
    from dpbench.tasks.registry import all_tasks, pools

    if card.name.lower() in {n.lower() for n in all_tasks()}:
        raise DpbenchError(f"task name {card.name!r} is a dpbench registry task; give your task its own name")
    if card.pool_name in pools():
        raise DpbenchError(f"pool name {card.pool_name!r} is a dpbench registry pool; give your pool its own name")


def _source(card: TaskCard) -> Source:
    ident = "card_" + re.sub(r"[^a-z0-9]+", "_", card.name.lower()).strip("_")
    citation = card.citation or f"@misc{{{ident},\n  title = {{{card.name} (a dpbench task card)}}\n}}"
    return Source(id=ident, title=card.description or f"{card.name} (task card)", url=card.url,
                  availability=card.availability, licence=card.licence, citation=citation)


def card_task(card: TaskCard) -> Task:
    """The card as a registry-shaped task. Its ``sizes`` are the card's target fractions per 10,000 images (what
    the grouped splitter aims at), not counts: the counts are known once the data are scanned."""
    sizes = SplitSizes(**{s: SplitCount(images=round(card.split.fractions[s] * 10_000), groups=None) for s in SPLITS})
    data = card.data
    form = {"folders": "a class-folder tree", "table": "a table of path, label, group",
            "slides": "patches cut from annotated slides"}[data.kind]
    try:
        return Task(name=card.name, abbreviation=card.name, source=_source(card), origin="CLF", organ=card.organ,
                    stain=card.stain, n_classes=len(card.classes), classes=card.classes, metric=card.metric,
                    split_unit=card.split_unit, sizes=sizes, role="evaluate", patch_px=card.patch_px,
                    um_per_px=card.um_per_px, preprocessing=f"task card: {form}")
    except ValidationError as exc:  # the card's own checks should have caught it first
        raise DpbenchError(f"task card {card.name}: {exc.errors()[0]['msg']}; fix the card ({_DOCS})") from None


def card_pool_version(pool: str, cards: dict[str, str], split_hashes: dict[str, str]) -> str:
    """Short hash of a card pool: its name and, per task in order, the card's sha256 and the split's sha256."""
    entries = [{"task": name, "card": sha, "split": split_hashes[name]} for name, sha in cards.items()]
    blob = json.dumps({"pool": pool, "cards": entries}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def is_card_pool(pool: str) -> bool:
    """Whether a built pool's name is not a registry pool's (so its tasks come from task cards)."""
    from dpbench.tasks.registry import pools

    return pool not in pools()


def stored_card(task_folder: Path) -> TaskCard | None:
    """The card a built pool keeps in ``DIR/<task>/card.json``, or None when there is none."""
    path = task_folder / CARD_FILE
    if not path.is_file():
        return None
    return load_card(path)
