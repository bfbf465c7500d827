"""Check a built or downloaded pool against its manifest, shard by shard."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dpbench.shards import load_manifest, split_problem


@dataclass(frozen=True)
class Problem:
    """A bad shard, what is wrong with it, and how to fix it."""

    path: str
    what: str
    fix: str


def verify_pool(root: Path, decode: bool = True,
                on_shard: Callable[[str], None] | None = None) -> tuple[int, list[Problem]]:
    """(shards checked, problems) for the pool in ``root``; an empty list means all is well."""
    from dpbench.shards import check_shard

    manifest = load_manifest(root)
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
