"""Webdataset shards: deterministic, resumable writing, the pool manifest, and verification.

Layout of a built pool::

    DIR/manifest.json                 pool, version, per-task entries, per-shard sha256/count/bytes
    DIR/<task>/split.json             the task's split manifest (group → split, key → split, sha256)
    DIR/<task>/<split>-00000.tar      webdataset shards: <key>.png|jpg, <key>.cls, <key>.json
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tarfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any, Literal

import webdataset as wds
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from dpbench.errors import DpbenchError
from dpbench.io import TMP_MARK, sha256_file
from dpbench.splits import SplitManifest, split_hash
from dpbench.tarstream import iter_members
from dpbench.tasks.models import SplitName, SplitUnit

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


def shuffle_order(keys: Iterable[str], seed: int | str) -> list[str]:
    """Keys in a seeded pseudo-random order (sorted by the sha256 of ``"<seed>:<key>"``), so shards mix classes
    and groups reproducibly."""
    return sorted(keys, key=lambda k: hashlib.sha256(f"{seed}:{k}".encode()).hexdigest())


def tar_keys(path: Path) -> list[str]:
    """Sample keys of a shard in file order (raises tarfile.TarError/OSError on a broken file)."""
    keys: list[str] = []
    for name, _ref in iter_members(str(path), lazy_over=0):  # headers only
        key = name.split(".", 1)[0]
        if not keys or keys[-1] != key:
            keys.append(key)
    return keys


def write_shards(
    root: Path,
    task: str,
    split: str,
    chunks: list[list[str]],
    todo: list[int],
    make_sample: Callable[[str], dict[str, Any]],
    on_sample: Callable[[], None] = lambda: None,
    before_chunk: Callable[[list[str]], None] | None = None,
) -> None:
    """Write shard ``i`` of ``chunks`` for every ``i`` in ``todo`` with webdataset's ShardWriter.

    ``before_chunk`` (if given) gets ``chunks[i]`` just before shard ``i`` is written, e.g. to decode the
    shard's raw files in one batch. Each shard goes to a temporary file that is fsynced and renamed into place
    only when complete, so a killed build never leaves a half-written shard under a final name.
    """
    pattern = str(root / shard_pattern(task, split))
    runs: list[list[int]] = []
    for index in sorted(todo):
        if runs and runs[-1][-1] == index - 1:
            runs[-1].append(index)
        else:
            runs.append([index])
    for run in runs:
        open_files: dict[str, IO[bytes]] = {}

        def opener(fname: str, files: dict[str, IO[bytes]] = open_files) -> IO[bytes]:
            files[fname] = open(f"{fname}{TMP_MARK}{os.getpid()}", "wb")  # noqa: SIM115
            return files[fname]

        def commit(fname: str, files: dict[str, IO[bytes]] = open_files) -> None:
            handle = files.pop(fname)
            handle.flush()
            os.fsync(handle.fileno())
            handle.close()
            os.replace(handle.name, fname)

        size = len(chunks[run[0]])
        writer = wds.ShardWriter(pattern, maxcount=size, maxsize=float("inf"), start_shard=run[0],
                                 opener=opener, post=commit, verbose=0, encoder=False, mtime=0)
        try:
            for index in run:
                if before_chunk is not None:
                    before_chunk(chunks[index])
                for key in chunks[index]:
                    writer.write(make_sample(key))
                    on_sample()
            writer.close()
        except BaseException:  # interrupted mid-shard: drop the temporary file, final names stay clean
            if open_files and writer.tarstream is not None:
                writer.tarstream.close()  # ends the tar stream inside the temporary file only
            for handle in open_files.values():
                handle.close()
                os.unlink(handle.name)
            raise


def encode_sample(key: str, image: bytes, ext: str, label: int, record: dict[str, Any]) -> dict[str, Any]:
    """The webdataset dict of one sample, every entry already bytes (deterministic encoding)."""
    return {
        "__key__": key,
        ext: image,
        "cls": str(label).encode(),
        "json": json.dumps(record, sort_keys=True, separators=(",", ":")).encode(),
    }


def iter_tar_samples(path: Path) -> Iterator[tuple[str, dict[str, bytes]]]:
    """(key, {extension: bytes}) for each sample of a shard, in file order."""
    current: str | None = None
    parts: dict[str, bytes] = {}
    for name, data in iter_members(str(path)):
        key, _, ext = name.partition(".")
        if current is not None and key != current:
            yield current, parts
            parts = {}
        current = key
        assert isinstance(data, bytes)  # no lazy_over: every member is read
        parts[ext] = data
    if current is not None:
        yield current, parts


def file_problem(path: Path, entry: ShardEntry) -> str | None:
    """None if the file has the manifest's size and sha256, else what differs."""
    if not path.is_file():
        return "missing"
    size = path.stat().st_size
    if size != entry.bytes:
        return f"size {size} bytes, manifest says {entry.bytes} (truncated or replaced)"
    if sha256_file(path) != entry.sha256:
        return "sha256 differs from the manifest (corrupted)"
    return None


def split_problem(path: Path, entry: TaskEntry) -> str | None:
    """None if ``split.json`` is intact and is the split the manifest records, else what is wrong."""
    if not path.is_file():
        return "missing"
    try:
        split = SplitManifest.model_validate_json(path.read_bytes())
    except (ValidationError, ValueError):
        return "not a valid split manifest"
    if split_hash(split.task, split.unit, split.groups, split.samples) != split.sha256:
        return "content does not match its own sha256 (corrupted)"
    if split.sha256 != entry.split_sha256:
        return "sha256 differs from the manifest's split_sha256"
    return None


class ShardMismatch(Exception):
    """What :func:`checked_samples` found wrong: a sample without its entries (``kind`` "entries"), a label out
    of range ("label"), both naming the sample ``key`` with ``what`` describing it, or a sample ``count``
    differing from the manifest's ("count")."""

    def __init__(self, kind: Literal["entries", "label", "count"], key: str = "", what: str = "",
                 count: int = 0) -> None:
        super().__init__(kind, key, what, count)
        self.kind = kind
        self.key = key
        self.what = what
        self.count = count


def checked_samples(path: Path, expected: int, n_classes: int) -> Iterator[tuple[str, str, int, dict[str, bytes]]]:
    """(key, image extension, label, {extension: bytes}) of each sample of a shard, in file order, checked:
    raises :class:`ShardMismatch` at a sample lacking an image, cls or json entry, at a label outside
    ``0..n_classes - 1``, or after the last sample when there are not ``expected`` of them (tar and decoding
    errors propagate as they are)."""
    count = 0
    for key, parts in iter_tar_samples(path):
        count += 1
        image_ext = next((e for e in IMAGE_EXTS if e in parts), None)
        if image_ext is None or "cls" not in parts or "json" not in parts:
            raise ShardMismatch("entries", key, "lacks an image, cls or json entry")
        label = int(parts["cls"])
        if not 0 <= label < n_classes:
            raise ShardMismatch("label", key, f"has label {label} outside 0..{n_classes - 1}")
        yield key, image_ext, label, parts
    if count != expected:
        raise ShardMismatch("count", count=count)


def check_shard(root: Path, entry: ShardEntry, n_classes: int, decode: bool = True) -> str | None:
    """None if the shard matches its manifest entry, else what is wrong with it."""
    path = root / entry.path
    problem = file_problem(path, entry)
    if problem:
        return problem
    try:
        for _key, image_ext, _label, parts in checked_samples(path, entry.count, n_classes):
            if decode:
                with Image.open(io.BytesIO(parts[image_ext])) as image:
                    image.load()
    except ShardMismatch as bad:
        if bad.kind == "count":
            return f"{bad.count} samples, manifest says {entry.count}"
        return f"sample {bad.key} {bad.what}"
    except (tarfile.TarError, OSError, ValueError) as exc:
        return f"unreadable ({exc.__class__.__name__}: {exc})"
    return None
