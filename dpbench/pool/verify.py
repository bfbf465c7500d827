"""Checking a built or downloaded pool against its manifest: file hashes, split manifests, every sample."""

from __future__ import annotations

import contextlib
import io
import json
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from PIL import Image
from pydantic import ValidationError

from dpbench.errors import DpbenchError, ShardMismatch
from dpbench.io import atomic_write_json, sha256_file
from dpbench.pool.manifest import IMAGE_EXTS, PoolFolder, ShardEntry, TaskEntry, as_folder
from dpbench.pool.splits import SplitManifest, split_hash
from dpbench.pool.tarstream import iter_tar_samples
from dpbench.tasks.cards import CARD_FILE, card_pool_version, card_sha256, is_card_pool, stored_card


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
    fix = f"rebuild it: {rebuild_command(pool)} (only bad shards are rewritten)"
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
    return len(manifest.shards), problems + card_problems(pool)


def rebuild_command(pool: PoolFolder) -> str:
    """The command that rebuilds ``pool`` in place."""
    name = pool.manifest.pool
    if is_card_pool(name):
        return f"dpbench build --task CARD [--task CARD ...] --out {pool.root}"
    return f"dpbench build --pool {name} --out {pool.root}"


def card_problems(pool: PoolFolder) -> list[Problem]:
    """For a pool built from task cards (not a registry pool, with a ``card.json``): each task's card must be
    there, valid, and (with the split hashes) give the manifest's pool version, so that no card is edited after the
    build."""
    manifest = pool.manifest
    if not is_card_pool(manifest.pool) or not any((pool.root / t.name / CARD_FILE).is_file() for t in manifest.tasks):
        return []  # a registry pool, or a pool some other tool wrote
    fix = f"rebuild it from the cards: {rebuild_command(pool)}"
    shas: dict[str, str] = {}
    problems: list[Problem] = []
    for task in manifest.tasks:
        try:
            card = stored_card(pool.root / task.name)
        except DpbenchError:
            card = None
        if card is None or card.name != task.name:
            problems.append(Problem(f"{task.name}/{CARD_FILE}", "missing or not this task's card", fix))
        else:
            shas[task.name] = card_sha256(card)
    if not problems:
        version = card_pool_version(manifest.pool, shas, {t.name: t.split_sha256 for t in manifest.tasks})
        if version != manifest.pool_version:
            problems.append(Problem("manifest.json", f"pool version {manifest.pool_version} is not that of the "
                                    f"stored cards and splits ({version}): a card was edited after the build", fix))
    return problems


VERIFIED_CACHE = ".cache/verified.json"  # under the pool root: shards already hashed, keyed by their file identity


def _identity(path: Path) -> list[int]:
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino, stat.st_dev]


def check_files(pool: PoolFolder | Path, tasks: list[str] | None = None,
                splits: tuple[str, ...] | None = None) -> list[Problem]:
    """Check that every shard of ``tasks`` (all built tasks by default; only ``splits`` when given) is the file
    the manifest vouches for: its size and sha256. A shard whose size, mtime, ctime, inode and device are unchanged
    since it last matched is not hashed again (``.cache/verified.json`` under the pool, written when the folder is
    writable)."""
    pool = as_folder(pool)
    root, manifest = pool.root, pool.manifest
    cache_path = root / VERIFIED_CACHE
    try:
        known: dict[str, dict[str, object]] = json.loads(cache_path.read_text())
    except (OSError, ValueError):
        known = {}
    wanted = set(tasks) if tasks is not None else {t.name for t in manifest.tasks}
    fix = (f"run dpbench verify {root}, then rebuild the pool (dpbench build --out {root}) or download it again; "
           "dpbench evaluates only what the manifest vouches for")
    problems: list[Problem] = []
    hashed: dict[str, dict[str, object]] = {}
    for entry in manifest.shards:
        if entry.task not in wanted or (splits is not None and entry.split not in splits):
            continue
        path = root / entry.path
        try:
            identity = _identity(path)
        except OSError:
            problems.append(Problem(entry.path, "missing", fix))
            continue
        record: dict[str, object] = {"identity": identity, "sha256": entry.sha256}
        if known.get(entry.path) == record:
            continue
        what = file_problem(path, entry)
        if what:
            problems.append(Problem(entry.path, what, fix))
            known.pop(entry.path, None)
        else:
            hashed[entry.path] = record
    if hashed:
        with contextlib.suppress(OSError):  # a read-only pool is checked every time, never trusted blindly
            atomic_write_json(cache_path, {**known, **hashed})
    return problems


def require_verified(pool: PoolFolder | Path, tasks: list[str] | None = None,
                     splits: tuple[str, ...] | None = None) -> None:
    """:func:`check_files` (and, for a pool of task cards, :func:`card_problems`), raising one DpbenchError that
    names the first bad file, the count and the fix. ``splits``: verify only the shards of these splits (a
    validation-scored evaluation never opens the test shards, not even to hash them)."""
    pool = as_folder(pool)
    problems = check_files(pool, tasks, splits) + card_problems(pool)
    if problems:
        first = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        kind = "shard " if first.path.endswith(".tar") else ""
        raise DpbenchError(f"{kind}{first.path}: {first.what}{more}; {first.fix}")
