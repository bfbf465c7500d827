"""Building a user's task cards: the registry's split, shards, verification and manifest, in the cards' own pool.

Each card becomes a :class:`~dpbench.build.builder.TaskJob` whose samples come from its converter
(:func:`dpbench.convert.cards.card_source`) and whose split is refused when a class is absent from a split. The
pool is the cards' ``pool`` (or ``--pool``, or ``custom-<name>`` for one card); the build keeps each card as
``DIR/<task>/card.json`` and versions the pool by the cards and their splits, never as a registry pool.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable
from pathlib import Path

from dpbench import __version__
from dpbench.build.builder import (
    BuildOptions,
    BuildReport,
    Progress,
    TaskJob,
    TaskReport,
    previous_manifest,
    run_jobs,
)
from dpbench.convert.cards import card_source
from dpbench.errors import DpbenchError
from dpbench.io import atomic_write_json, ensure_writable
from dpbench.pool.manifest import MANIFEST, Manifest
from dpbench.pool.splits import SplitManifest
from dpbench.tasks.cards import (
    CARD_FILE,
    TaskCard,
    card_json,
    card_pool_version,
    card_sha256,
    card_task,
    check_unregistered,
    load_card,
    stored_card,
)
from dpbench.tasks.models import SPLITS, Task
from dpbench.tasks.registry import pools
from dpbench.tasks.samples import Sample


def check_classes_in_splits(task: Task, samples: list[Sample], split: SplitManifest) -> None:
    """Refuse a split that leaves a class out of a split: the probe could not learn it or the metric not score it.
    The message says how many groups the class has and the minimum (one per split)."""
    if not split.missing_classes:
        return
    name, missing = next((s, split.missing_classes[s]) for s in SPLITS if split.missing_classes.get(s))
    label = missing[0]
    cls = task.class_names[label]
    groups = len({s.group for s in samples if s.label == label})
    counts = split.counts()
    active = [s for s in SPLITS if counts[s][0] or task.sizes[s].images]  # sizes: the card's target fractions
    unit = task.split_unit
    drop = " or set split.fractions.val: 0 in the card (no validation split: fine-tuning is then skipped)"
    if groups < len(active):
        raise DpbenchError(
            f"task {task.name}: class {cls!r} has no images in the {name} split: its images come from {groups} "
            f"{unit}(s), and a split into {'/'.join(active)} needs at least {len(active)} {unit}s of every class (a "
            f"{unit} goes whole to one split); add {unit}s of class {cls!r}" + (drop if name == "val" else ""))
    raise DpbenchError(f"task {task.name}: class {cls!r} has no images in the {name} split (its {groups} {unit}s "
                       f"could not be spread over every split, or the split column leaves it out); add {unit}s of "
                       f"class {cls!r} or change the card's split")


def pool_of(cards: list[TaskCard], pool: str | None) -> str:
    """The pool the cards build into (see the module docstring); an error when they disagree."""
    stated = sorted({c.pool for c in cards if c.pool})
    if pool and stated and stated != [pool]:
        raise DpbenchError(f"the card(s) name pool {', '.join(stated)} but --pool says {pool}; make them agree")
    if len(stated) > 1:
        raise DpbenchError(f"the cards name different pools ({', '.join(stated)}): give them the same pool: to build "
                           "them together, or build each into its own --out")
    name = pool or (stated[0] if stated else None)
    if name is None:
        if len(cards) > 1:
            raise DpbenchError("several cards without a pool: name their common pool in each card (pool: mylab) or "
                               "with --pool NAME")
        name = cards[0].pool_name
    if not re.fullmatch(r"[a-z0-9][a-z0-9_\-]*", name):
        raise DpbenchError(f"pool name {name!r}: use lower-case letters, digits, _ and -")
    if name in pools():
        raise DpbenchError(f"pool name {name!r} is a dpbench registry pool; give your pool its own name")
    return name


def build_cards(paths: list[Path], root: Path, options: BuildOptions | None = None, pool: str | None = None,
                progress: Progress | None = None,
                on_task: Callable[[TaskReport], None] | None = None) -> BuildReport:
    """Build the task cards at ``paths`` into ``root`` (resumable, byte-identical on rerun) and write its manifest;
    tasks built there earlier from other cards of the same pool are kept."""
    options = options or BuildOptions()
    if options.shard_size < 1:
        raise DpbenchError("--shard-size must be at least 1")
    loaded = [(path, load_card(path)) for path in paths]
    cards = [card for _, card in loaded]
    names = [card.name for card in cards]
    if len(set(names)) != len(names):
        twice = ", ".join(sorted({n for n in names if names.count(n) > 1}))
        raise DpbenchError(f"two cards name the same task ({twice})"
                           "; give each task its own name")
    for card in cards:
        check_unregistered(card)
    name = pool_of(cards, pool)
    ensure_writable(root)
    started = time.perf_counter()
    old = previous_manifest(root, name)
    old_shards = {s.path: s for s in old.shards} if old else {}
    jobs = [TaskJob(card_task(card), functools.partial(card_source, card, path.resolve().parent),
                    check_classes_in_splits) for path, card in loaded]
    reports = run_jobs(root, jobs, options, old_shards, progress, on_task)
    for card in cards:
        atomic_write_json(root / card.name / CARD_FILE, card_json(card))
    manifest = _merge(name, root, old, [reports[n] for n in names])
    atomic_write_json(root / MANIFEST, manifest.model_dump(mode="json"))
    return BuildReport(manifest=manifest, tasks=[reports[n] for n in names], seconds=time.perf_counter() - started)


def _merge(pool: str, root: Path, old: Manifest | None, reports: list[TaskReport]) -> Manifest:
    """This run's tasks after the earlier tasks of the pool; the version hashes every task's stored card."""
    entries = {t.name: t for t in old.tasks} if old else {}
    shards = {t: [s for s in old.shards if s.task == t] for t in entries} if old else {}
    for report in reports:
        entries[report.entry.name] = report.entry
        shards[report.entry.name] = report.shards
    cards: dict[str, str] = {}
    for task in entries:
        card = stored_card(root / task)
        if card is None:
            raise DpbenchError(f"{root / task / CARD_FILE} is missing, so task {task} of this folder cannot be "
                               "versioned; rebuild it from its card (--task CARD) or build into another --out")
        cards[task] = card_sha256(card)
    version = card_pool_version(pool, cards, {n: e.split_sha256 for n, e in entries.items()})
    return Manifest(pool=pool, pool_version=version, synthetic=False, dpbench_version=__version__,
                    tasks=list(entries.values()), shards=[s for n in entries for s in shards[n]])
