"""The pool manifest: what a built pool holds, shard by shard, as strict pydantic models.

Layout of a built pool::

    DIR/manifest.json                 pool, version, per-task entries, per-shard sha256/count/bytes
    DIR/<task>/split.json             the task's split manifest (group → split, key → split, sha256)
    DIR/<task>/<split>-00000.tar      webdataset shards: <key>.png|jpg, <key>.cls, <key>.json
"""

from __future__ import annotations

import re
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from dpbench.errors import DpbenchError
from dpbench.tasks.models import SPLITS, SplitName, SplitUnit

MANIFEST = "manifest.json"
FORMAT_VERSION = 1
IMAGE_EXTS = ("png", "jpg", "jpeg", "tif", "tiff", "webp")

_STRICT = ConfigDict(extra="forbid", frozen=True)
TASK_NAME = r"^[A-Za-z][A-Za-z0-9_\-]*$"


class ShardEntry(BaseModel):
    """One shard file of the pool (its path is checked: a manifest can never point outside the pool)."""

    model_config = _STRICT

    path: str
    task: str = Field(pattern=TASK_NAME)
    split: SplitName
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    count: int = Field(ge=0)
    bytes: int = Field(ge=0)

    @model_validator(mode="after")
    def _safe_path(self) -> ShardEntry:
        if not re.fullmatch(rf"{re.escape(self.task)}/{self.split}-\d{{5}}\.tar", self.path):
            raise ValueError(f"shard path {self.path!r} is not <task>/<split>-NNNNN.tar of task {self.task}")
        return self


class SplitEntry(BaseModel):
    model_config = _STRICT

    images: int
    groups: int


class TaskEntry(BaseModel):
    """What the manifest records of one built task."""

    model_config = _STRICT

    name: str = Field(pattern=TASK_NAME)
    classes: list[str]
    metric: Literal["roc_auc", "accuracy"]
    split_unit: SplitUnit
    split_sha256: str
    splits: dict[SplitName, SplitEntry]
    missing_classes: dict[SplitName, list[int]]
    licence: str
    redistributable: bool
    synthetic: bool

    @property
    def n_classes(self) -> int:
        """Number of classes (what evaluation needs without the registry)."""
        return len(self.classes)


class Manifest(BaseModel):
    """``DIR/manifest.json``: the pool as built."""

    model_config = _STRICT

    format: int = FORMAT_VERSION
    pool: str
    pool_version: str
    synthetic: bool
    dpbench_version: str
    tasks: list[TaskEntry]
    shards: list[ShardEntry]

    def task(self, name: str) -> TaskEntry:
        for entry in self.tasks:
            if entry.name == name:
                return entry
        built = ", ".join(t.name for t in self.tasks)
        raise DpbenchError(f"task {name!r} is not in this build (built: {built}); build it with --tasks")

    def shards_of(self, task: str, split: str) -> list[ShardEntry]:
        return [s for s in self.shards if s.task == task and s.split == split]


def load_manifest(root: Path) -> Manifest:
    """Read ``root/manifest.json`` or raise one clear error saying how to get one."""
    path = root / MANIFEST
    if not path.is_file():
        raise DpbenchError(f"no {MANIFEST} in {root}: build the pool there first (dpbench build --out {root})")
    try:
        return Manifest.model_validate_json(path.read_bytes())
    except (ValidationError, ValueError) as exc:
        raise DpbenchError(f"{path} is not a valid dpbench manifest ({exc.__class__.__name__}); "
                           f"rebuild with dpbench build --out {root}") from exc


def existing_manifest(root: Path) -> Manifest | None:
    """The manifest already in ``root``, or None when there is none or it cannot be read (it gets replaced)."""
    if not (root / MANIFEST).is_file():
        return None
    try:
        return load_manifest(root)
    except DpbenchError:
        return None


def shard_pattern(task: str, split: str) -> str:
    """Relative path pattern of a task split's shards (``%05d`` is the shard index)."""
    return f"{task}/{split}-%05d.tar"




class PoolFolder:
    """A built pool folder and its manifest, read (and validated) on first use and then kept, so every stage of
    one run sees the same manifest. :class:`dpbench.pool.BuiltPool` adds the readers and the verifier."""

    def __init__(self, root: Path | str, manifest: Manifest | None = None) -> None:
        self.root = Path(root)
        if manifest is not None:
            self.__dict__["manifest"] = manifest

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.root)!r})"

    @cached_property
    def manifest(self) -> Manifest:
        """The validated ``manifest.json`` (one clear error naming the fix when it is absent or invalid)."""
        return load_manifest(self.root)

    @property
    def task_names(self) -> list[str]:
        """Names of the built tasks, in manifest order."""
        return [t.name for t in self.manifest.tasks]

    def task(self, name: str) -> TaskEntry:
        """The manifest entry of a built task (one clear error listing the built tasks otherwise)."""
        return self.manifest.task(name)

    def shards(self, task: str, split: str) -> list[Path]:
        """Paths of a task split's shards, in manifest order."""
        if split not in SPLITS:
            raise DpbenchError(f"unknown split {split!r}: use one of {', '.join(SPLITS)}")
        self.task(task)
        return [self.root / s.path for s in self.manifest.shards_of(task, split)]


def as_folder(pool: PoolFolder | Path | str) -> PoolFolder:
    """``pool`` itself, or a :class:`PoolFolder` over the folder it names."""
    return pool if isinstance(pool, PoolFolder) else PoolFolder(pool)
