"""Checking a built or downloaded pool against its manifest: file hashes, split manifests, every sample."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from PIL import Image
from pydantic import ValidationError

from dpbench.errors import ShardMismatch
from dpbench.io import sha256_file
from dpbench.pool.manifest import IMAGE_EXTS, PoolFolder, ShardEntry, TaskEntry, as_folder
from dpbench.pool.splits import SplitManifest, split_hash
from dpbench.pool.tarstream import iter_tar_samples


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


@dataclass(frozen=True)
class Problem:
    """A bad shard, what is wrong with it, and how to fix it."""

    path: str
    what: str
    fix: str


def verify_pool(pool: PoolFolder | Path, decode: bool = True,
                on_shard: Callable[[str], None] | None = None) -> tuple[int, list[Problem]]:
    """(shards checked, problems) for the built ``pool``; an empty list means all is well."""
    pool = as_folder(pool)
    root, manifest = pool.root, pool.manifest
    classes = {t.name: len(t.classes) for t in manifest.tasks}
    fix = f"rebuild it: dpbench build --pool {manifest.pool} --out {root} (only bad shards are rewritten)"
    problems: list[Problem] = []
    for entry in manifest.shards:
        what = check_shard(root, entry, classes[entry.task], decode=decode)
        if what:
            problems.append(Problem(entry.path, what, fix))
        if on_shard:
            on_shard(entry.path)
    for task in manifest.tasks:
        what = split_problem(root / task.name / "split.json", task)
        if what:
            problems.append(Problem(f"{task.name}/split.json", what, fix))
    return len(manifest.shards), problems
