"""Boards: one per benchmark version (pool, pool version, protocol, split hashes), and the served pool whose own
test labels the server re-scores submissions with."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from sqlalchemy import select

from dpbench.errors import DpbenchError, RegistryError
from dpbench.evaluation.rescore import test_labels
from dpbench.io import sha256_file
from dpbench.pool import BuiltPool
from dpbench.pool.manifest import MANIFEST, Manifest
from dpbench.pool.verify import require_verified, split_problem
from dpbench.tasks.registry import get_task
from dpbench_leaderboard.db import Database
from dpbench_leaderboard.models import Board

PROTOCOLS = ("linear", "finetune")


@dataclass(frozen=True)
class BoardTask:
    """What a board knows of one task: its metric and classes, registry facts and the split it was built with."""

    name: str
    metric: str
    classes: tuple[str, ...]
    organ: str
    role: str
    split_sha256: str
    test_size: int


@dataclass(frozen=True)
class BoardSpec:
    """A benchmark version: a board takes results of exactly this pool build and protocol."""

    slug: str
    pool: str
    pool_version: str
    protocol: str
    splits_sha256: str
    synthetic: bool
    tasks: tuple[BoardTask, ...]

    def task(self, name: str) -> BoardTask | None:
        return next((t for t in self.tasks if t.name == name), None)

    @property
    def title(self) -> str:
        return f"{self.pool} {self.pool_version} · {self.protocol} · splits {self.splits_sha256[:12]}"


def _task(manifest: Manifest, name: str) -> BoardTask:
    entry = manifest.task(name)
    try:
        registered = get_task(name)
        organ, role = str(registered.organ), str(registered.role)
    except RegistryError:
        organ, role = "unknown", "unknown"
    test = sum(s.count for s in manifest.shards_of(name, "test"))
    return BoardTask(name, entry.metric, tuple(entry.classes), organ, role, entry.split_sha256, test)


def splits_digest(tasks: tuple[BoardTask, ...]) -> str:
    """sha256 over the (task, split sha256) pairs: the split part of a benchmark version."""
    pairs = sorted((t.name, t.split_sha256) for t in tasks)
    return hashlib.sha256(json.dumps(pairs).encode()).hexdigest()


def board_specs(manifest: Manifest, protocols: tuple[str, ...] = PROTOCOLS) -> list[BoardSpec]:
    """The boards of a built pool, one per protocol."""
    tasks = tuple(_task(manifest, t.name) for t in manifest.tasks)
    digest = splits_digest(tasks)
    return [BoardSpec(f"{manifest.pool}-{manifest.pool_version}-{protocol}-{digest[:8]}", manifest.pool,
                      manifest.pool_version, protocol, digest, manifest.synthetic, tasks) for protocol in protocols]


def spec_of(row: Board) -> BoardSpec:
    """The spec stored in a board row."""
    tasks = tuple(BoardTask(**{**t, "classes": tuple(t["classes"])}) for t in json.loads(row.tasks_json))
    return BoardSpec(row.slug, row.pool, row.pool_version, row.protocol, row.splits_sha256, row.synthetic, tasks)


def ensure_boards(db: Database, specs: list[BoardSpec]) -> dict[str, int]:
    """Insert the boards not yet stored; returns slug → board id. A stored board never changes."""
    ids: dict[str, int] = {}
    with db.write() as session:
        for spec in specs:
            row = session.scalar(select(Board).where(Board.slug == spec.slug))
            if row is None:
                row = Board(slug=spec.slug, pool=spec.pool, pool_version=spec.pool_version, protocol=spec.protocol,
                            splits_sha256=spec.splits_sha256, synthetic=spec.synthetic, created_at=time.time(),
                            tasks_json=json.dumps([asdict(t) for t in spec.tasks]))
                session.add(row)
                session.flush()
            elif row.splits_sha256 != spec.splits_sha256:
                raise DpbenchError(f"board {spec.slug} is stored with other split hashes; the database belongs to "
                                   "another build of this pool")
            ids[spec.slug] = row.id
    return ids


@dataclass(frozen=True)
class ServedPool:
    """The verified pool a server holds: its boards and each task's test labels (sample key → label)."""

    root: Path
    boards: dict[str, BoardSpec]
    labels: dict[str, dict[str, int]]
    manifest_sha256: str = ""


def load_served_pool(root: Path, protocols: tuple[str, ...] = PROTOCOLS) -> ServedPool:
    """Verify the built pool at ``root`` (every shard's sha256, every split file) and read its test labels."""
    pool = BuiltPool(root)
    manifest = pool.manifest
    require_verified(pool)
    for task in manifest.tasks:
        problem = split_problem(root / task.name / "split.json", task)
        if problem:
            raise DpbenchError(f"{root / task.name / 'split.json'}: {problem}; rebuild the pool before serving it")
    unknown = sorted(set(protocols) - set(PROTOCOLS))
    if unknown or not protocols:
        raise DpbenchError(f"unknown protocol(s) {', '.join(unknown) or '(none)'}; use {', '.join(PROTOCOLS)}")
    labels = {t.name: test_labels(pool, t.name) for t in manifest.tasks}
    for task in manifest.tasks:
        if not labels[task.name]:
            raise DpbenchError(f"task {task.name} has no test samples in {root}; a board cannot score it")
    specs = board_specs(manifest, protocols)
    return ServedPool(root, {s.slug: s for s in specs}, labels, sha256_file(root / MANIFEST))
