"""Strict schemas for task metadata: sources, tasks, pools.

Task metadata is data: every field has a closed vocabulary or a validator, and unknown
fields are refused (``extra="forbid"``), so a typo in a source module fails at import.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Availability = Literal["public", "registration", "private", "synthetic"]
Licence = Literal[
    "CC0-1.0",
    "CC-BY-4.0",
    "CC-BY-SA-4.0",
    "CC-BY-NC-4.0",
    "CC-BY-NC-SA-4.0",
    "CC-BY-NC-ND-4.0",
    "MIT",
    "research-only",
    "proprietary",
    "unknown",
]
Origin = Literal["CLF", "DET", "SEG"]
Organ = Literal[
    "breast",
    "colorectal",
    "lymph node",
    "thyroid",
    "lung",
    "kidney",
    "bone marrow",
    "prostate",
    "stomach",
    "multiple",
    "unspecified",
    "other",  # a user's task card names it in ``organ_other``
]
Stain = Literal["H&E", "IHC", "Diff-Quik", "MGG", "Masson's trichrome", "multiple", "other"]
Metric = Literal["roc_auc", "accuracy"]
SplitUnit = Literal["patient", "slide", "image", "region"]  # region: one annotated area of a slide
SplitName = Literal["train", "val", "test"]
Role = Literal["pretrain", "evaluate", "external", "extra"]

SPLITS: tuple[SplitName, ...] = ("train", "val", "test")
#: Licences under which derived patches may be re-hosted (given attribution).
REDISTRIBUTABLE: frozenset[str] = frozenset(
    {"CC0-1.0", "CC-BY-4.0", "CC-BY-SA-4.0", "CC-BY-NC-4.0", "CC-BY-NC-SA-4.0", "MIT"}
)

_STRICT = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class RawFile(BaseModel):
    """One file of a raw download: pinned URL(s) and, where known, its checksum and size."""

    model_config = _STRICT

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$", description="file name under the fetch folder")
    urls: tuple[str, ...] = Field(min_length=1, description="the official URL first, then mirrors")
    md5: str | None = Field(default=None, pattern=r"^[0-9a-f]{32}$")
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    bytes: int | None = Field(default=None, gt=0)
    extract: bool = Field(default=True, description="unpack the archive after download")

    @field_validator("urls")
    @classmethod
    def _secure(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for url in value:
            if not url.startswith(("https://", "http://")):
                raise ValueError(f"raw-file URL must be http(s): {url}")
        return value


class Source(BaseModel):
    """A raw dataset as published: where it lives, who may use it, how to cite it, how to get it."""

    model_config = _STRICT

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_]*$")
    title: str
    url: str
    availability: Availability
    licence: Licence
    citation: str = Field(description="BibTeX entry")
    notes: str = ""
    size: str = Field(default="", description="download size as published, e.g. '11.7 GB' ('' when unknown)")
    raw_dir: str = Field(default="", pattern=r"^([A-Za-z0-9_.\-]+)?$",
                         description="folder under `--raw DIR` that holds this source ('' = the source id)")
    downloads: tuple[RawFile, ...] = Field(default=(), description="files `dpbench sources fetch` may download")
    manual: str = Field(default="", description="how to obtain the data by hand, when it cannot be fetched")
    deviations: tuple[str, ...] = Field(default=(), description="where dpbench departs from the paper, and why")

    @property
    def folder(self) -> str:
        """Folder name of this source under a raw-data root."""
        return self.raw_dir or self.id

    @property
    def fetchable(self) -> bool:
        """Whether `dpbench sources fetch` may download it (public, with pinned files)."""
        return self.availability == "public" and bool(self.downloads)

    @field_validator("citation")
    @classmethod
    def _bibtex(cls, value: str) -> str:
        if not value.lstrip().startswith("@") or value.count("{") != value.count("}"):
            raise ValueError("citation must be one balanced BibTeX entry starting with '@'")
        return value

    @property
    def redistributable(self) -> bool:
        """Whether derived shards may be published (licence allows it and data is not private)."""
        return self.availability != "private" and self.licence in REDISTRIBUTABLE


class SplitCount(BaseModel):
    """Images and distinct groups (patients, slides or images) of one split."""

    model_config = _STRICT

    images: int = Field(ge=0)
    groups: int | None = Field(ge=0, description="None where the source does not publish it")

    @model_validator(mode="after")
    def _consistent(self) -> SplitCount:
        if self.groups is None:
            return self
        if (self.images == 0) != (self.groups == 0) or self.groups > self.images:
            raise ValueError(f"inconsistent split count {self.images} images / {self.groups} groups")
        return self


class SplitSizes(BaseModel):
    """Published train/val/test sizes of a task."""

    model_config = _STRICT

    train: SplitCount
    val: SplitCount
    test: SplitCount

    def __getitem__(self, split: str) -> SplitCount:
        value: SplitCount = getattr(self, split)
        return value

    @property
    def images(self) -> int:
        return self.train.images + self.val.images + self.test.images

    @property
    def groups(self) -> int | None:
        """Total groups, or None when a split's count is not published."""
        counts = [self.train.groups, self.val.groups, self.test.groups]
        return None if None in counts else sum(c or 0 for c in counts)

    def fractions(self) -> dict[SplitName, float]:
        """Image fraction per split, the target of the grouped splitter."""
        total = self.images
        return {name: self[name].images / total for name in SPLITS}


class Inconsistency(BaseModel):
    """A place where the paper contradicts itself, and what dpbench chose."""

    model_config = _STRICT

    field: str
    seen: tuple[str, ...] = Field(min_length=2)
    chosen: str
    why: str


class Task(BaseModel):
    """One classification task of the benchmark."""

    model_config = _STRICT

    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_\-]*$")
    abbreviation: str
    source: Source
    origin: Origin
    organ: Organ
    stain: Stain
    n_classes: int = Field(ge=2)
    classes: tuple[str, ...] | None = None
    metric: Metric
    split_unit: SplitUnit
    sizes: SplitSizes
    role: Role
    linked: tuple[str, ...] = ()
    patch_px: int | None = Field(default=None, ge=8)
    um_per_px: float | None = Field(default=None, gt=0)
    preprocessing: str = ""
    inconsistencies: tuple[Inconsistency, ...] = ()
    split_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    synthetic: bool = False

    @model_validator(mode="after")
    def _check(self) -> Task:
        if self.classes is not None:
            if len(self.classes) != self.n_classes:
                raise ValueError(f"{self.name}: {len(self.classes)} class names for {self.n_classes} classes")
            if len(set(self.classes)) != len(self.classes):
                raise ValueError(f"{self.name}: duplicate class names")
        expected: Metric = "roc_auc" if self.n_classes == 2 else "accuracy"
        if self.metric != expected:
            raise ValueError(f"{self.name}: metric must be {expected} for {self.n_classes} classes")
        if self.name in self.linked:
            raise ValueError(f"{self.name}: a task cannot be linked to itself")
        if self.synthetic != self.name.startswith("synthetic-"):
            raise ValueError(f"{self.name}: synthetic tasks, and only they, are named 'synthetic-<name>'")
        return self

    @property
    def class_names(self) -> tuple[str, ...]:
        """Published class names, or ``class0..classK`` where the paper gives none."""
        return self.classes or tuple(f"class{i}" for i in range(self.n_classes))

    @property
    def licence(self) -> Licence:
        return self.source.licence

    @property
    def availability(self) -> Availability:
        return self.source.availability

    @property
    def redistributable(self) -> bool:
        return self.source.redistributable


class Pool(BaseModel):
    """A named set of tasks; its version is derived from the tasks (see ``dpbench.tasks.pools``)."""

    model_config = _STRICT

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_\-]*$")
    description: str
    tasks: tuple[str, ...] = Field(min_length=1)
    synthetic: bool = False
    default_mirrors: tuple[str, ...] = ()

    @field_validator("tasks")
    @classmethod
    def _unique(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError("a pool lists each task once")
        return value
