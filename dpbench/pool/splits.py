"""Deterministic grouped train/val/test splits.

Groups (patients, slides or images) are assigned whole to one split so that image counts approach the
task's published fractions, per class, with every class present in every split where the data allow.
Only ``hashlib`` orders ties, so the result is the same on every machine and Python version.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

from dpbench.tasks.models import SPLITS, SplitName, SplitUnit


@dataclass(frozen=True)
class SampleRef:
    """What the splitter needs to know about a sample."""

    key: str
    group: str
    label: int
    fixed: SplitName | None = None  # a split prescribed by the source (official lists, published test sets)


class SplitManifest(BaseModel):
    """Group → split and sample key → split for one task, with a content hash."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    task: str
    unit: SplitUnit
    seed: int
    groups: dict[str, SplitName]
    samples: dict[str, SplitName]
    missing_classes: dict[SplitName, list[int]]
    sha256: str

    def counts(self) -> dict[SplitName, tuple[int, int]]:
        """(images, groups) per split."""
        images = {s: 0 for s in SPLITS}
        groups = {s: 0 for s in SPLITS}
        for split in self.samples.values():
            images[split] += 1
        for split in self.groups.values():
            groups[split] += 1
        return {s: (images[s], groups[s]) for s in SPLITS}


def split_hash(task: str, unit: str, groups: Mapping[str, str], samples: Mapping[str, str]) -> str:
    """sha256 of the canonical JSON of a split (the seed is not part of it: only the outcome is)."""
    payload = {"task": task, "unit": unit, "groups": dict(sorted(groups.items())),
               "samples": dict(sorted(samples.items()))}
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def _tiebreak(seed: int, group: str) -> str:
    return hashlib.sha256(f"{seed}:{group}".encode()).hexdigest()


def grouped_split(
    task: str,
    unit: SplitUnit,
    samples: Iterable[SampleRef],
    fractions: Mapping[SplitName, float],
    n_classes: int,
    seed: int = 0,
) -> SplitManifest:
    """Assign every group to one split, approaching ``fractions`` of images per class.

    Groups whose samples carry a ``fixed`` split go there first, and a split named by any fixed sample is
    closed to the other groups (a published test set stays exactly as published). Then two phases: each
    open split receives, for each class it lacks, the smallest unassigned group holding that class (train
    first, then test, then val); then the remaining groups, largest first, go to the open split whose
    per-class image deficit they reduce most.
    """
    refs = list(samples)
    if not refs:
        raise ValueError(f"task {task}: no samples to split")
    sample_group: dict[str, str] = {}
    per_group: dict[str, list[int]] = {}
    fixed: dict[str, SplitName] = {}
    for ref in refs:
        if ref.fixed is not None and fixed.setdefault(ref.group, ref.fixed) != ref.fixed:
            raise ValueError(f"task {task}: group {ref.group!r} is prescribed to both "
                             f"{fixed[ref.group]} and {ref.fixed}")
        if ref.key in sample_group:
            raise ValueError(f"task {task}: duplicate sample key {ref.key!r}")
        if not 0 <= ref.label < n_classes:
            raise ValueError(f"task {task}: label {ref.label} of {ref.key!r} outside 0..{n_classes - 1}")
        sample_group[ref.key] = ref.group
        per_group.setdefault(ref.group, [0] * n_classes)[ref.label] += 1

    active = [s for s in SPLITS if fractions.get(s, 0.0) > 0]
    total_per_class = [sum(c[k] for c in per_group.values()) for k in range(n_classes)]
    norm = sum(fractions[s] for s in active)
    target = {s: [fractions[s] / norm * total_per_class[k] for k in range(n_classes)] for s in active}
    current = {s: [0] * n_classes for s in active}
    assigned: dict[str, SplitName] = {}

    def place(group: str, split: SplitName) -> None:
        assigned[group] = split
        for k, n in enumerate(per_group[group]):
            current[split][k] += n

    # Largest first; ties broken by a seeded hash, never by input order.
    order = sorted(per_group, key=lambda g: (-sum(per_group[g]), _tiebreak(seed, g)))
    for group in order:
        if group in fixed:
            if fixed[group] not in target:
                raise ValueError(f"task {task}: group {group!r} is prescribed to {fixed[group]}, "
                                 "a split the task does not have")
            place(group, fixed[group])
    closed = set(fixed.values())
    active = [s for s in active if s not in closed]
    if not active and len(assigned) < len(per_group):
        raise ValueError(f"task {task}: every split is prescribed by the source but some groups are not")
    coverage_order = [s for s in ("train", "test", "val") if s in active]
    for k in range(n_classes):
        for split in coverage_order:
            if current[split][k] > 0:
                continue
            candidates = [g for g in reversed(order) if g not in assigned and per_group[g][k] > 0]
            if candidates:
                place(candidates[0], split)

    for group in order:
        if group in assigned:
            continue
        counts = per_group[group]

        def gain(split: SplitName, counts: list[int] = counts) -> float:
            return sum(n * (target[split][k] - current[split][k]) for k, n in enumerate(counts) if n)

        best = max(active, key=lambda s: (gain(s), -active.index(s)))
        place(group, best)

    sample_split = {key: assigned[group] for key, group in sample_group.items()}
    missing = {s: [k for k in range(n_classes) if current[s][k] == 0 and total_per_class[k]] for s in current}
    digest = split_hash(task, unit, assigned, sample_split)
    return SplitManifest(
        task=task, unit=unit, seed=seed, groups=dict(sorted(assigned.items())),
        samples=dict(sorted(sample_split.items())), missing_classes={s: v for s, v in missing.items() if v},
        sha256=digest,
    )
