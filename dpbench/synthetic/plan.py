"""Plan of a synthetic task: its groups, their class priors, every sample's label and render seed.

Planning is cheap (no pixels), so the registry can split a synthetic task without rendering it.
All randomness flows from ``numpy.random.default_rng`` seeded with integers derived by sha256.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache

import numpy as np

from dpbench.tasks.models import SplitUnit, Task

POOL_SEED = 2020
TILE_PX = 64


def stable_int(*parts: object) -> int:
    """A 63-bit integer from the sha256 of ``parts`` (platform- and run-independent)."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


@dataclass(frozen=True)
class SyntheticPlan:
    """Everything needed to generate one synthetic task deterministically."""

    name: str
    n_classes: int
    unit: SplitUnit
    family: str
    seed: int
    separation: float
    tile_px: int
    keys: tuple[str, ...]
    groups: tuple[str, ...]  # split group of each sample (the sample key for image-unit tasks)
    sources: tuple[str, ...]  # latent patient/slide whose stain and scale the sample carries
    labels: tuple[int, ...]


def _sizes(paper: Task) -> tuple[int, int]:
    """(images, latent groups): the paper's sizes shrunk so the whole pool builds in seconds."""
    images = max(round(110 * (paper.sizes.images / 882) ** 0.25), 36 * paper.n_classes)
    groups = min(max(round((paper.sizes.groups or paper.sizes.images) ** 0.6), 10), images // 8)
    return images, groups


@cache
def plan_task(paper: Task, seed: int = POOL_SEED, tile_px: int = TILE_PX) -> SyntheticPlan:
    """Plan the synthetic mirror of a paper task.

    Linked tasks (e.g. Breast1/Breast2) share a family: the same patients with the same stain, as
    the real tasks share slides. Each latent group has a skewed class prior, so that an image-level
    split leaks the group's appearance into the test set while a group-level split does not.
    """
    name = f"synthetic-{paper.name}"
    family = sorted((paper.name, *paper.linked))[0]
    rng = np.random.default_rng(stable_int(seed, "task", paper.name))
    n_images, n_groups = _sizes(paper)
    separation = float(0.25 + 0.75 * rng.random())
    group_ids = [f"{family[:3].lower()}{stable_int(seed, family, g) % 10**6:06d}" for g in range(n_groups)]
    weights = rng.gamma(2.0, 1.0, n_groups)
    per_group = np.maximum(2, np.floor(weights / weights.sum() * n_images)).astype(int)
    keys: list[str] = []
    groups: list[str] = []
    sources: list[str] = []
    labels: list[int] = []
    for g, count in enumerate(per_group):
        prior = 0.35 / paper.n_classes + 0.65 * rng.dirichlet(np.full(paper.n_classes, 0.6))
        drawn = rng.choice(paper.n_classes, size=int(count), p=prior / prior.sum())
        for label in drawn:
            key = f"{group_ids[g]}_{len(keys):05d}"
            keys.append(key)
            groups.append(key if paper.split_unit == "image" else group_ids[g])
            sources.append(group_ids[g])
            labels.append(int(label))
    return SyntheticPlan(
        name=name, n_classes=paper.n_classes, unit=paper.split_unit, family=family, seed=seed,
        separation=separation, tile_px=tile_px, keys=tuple(keys), groups=tuple(groups),
        sources=tuple(sources), labels=tuple(labels),
    )
