"""From scanned images to findings: shared groups, exact and near duplicates, class balance."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from dpbench.pool.audit.index import near_pairs
from dpbench.pool.audit.scan import ImageTable
from dpbench.tasks.models import SPLITS

#: A perceptual hash shared by more distinct pixel contents than this is uninformative (flat background,
#: blank glass: every such image hashes alike), so it is left out of near-duplicate pairing instead of
#: producing a quadratic number of meaningless pairs; the images concerned are counted in the report.
MAX_CLUSTERS_PER_HASH = 32


@dataclass(frozen=True)
class ImageRef:
    """One image as reported: where it is and who it belongs to."""

    task: str
    split: str
    key: str
    group: str

    def to_json(self) -> dict[str, str]:
        return {"task": self.task, "split": self.split, "key": self.key, "group": self.group}

    def __str__(self) -> str:
        return f"{self.split}:{self.key}"


@dataclass(frozen=True)
class SharedGroup:
    """A group (patient/slide) of a task found in more than one split."""

    task: str
    group: str
    keys: dict[str, list[str]]  # split → sample keys

    def to_json(self) -> dict[str, Any]:
        return {"task": self.task, "group": self.group, "splits": sorted(self.keys, key=SPLITS.index),
                "keys": self.keys}


@dataclass(frozen=True)
class Duplicate:
    """Images ``a`` and ``b`` with identical pixels (``distance`` None) or close perceptual hashes.

    An exact duplicate lists all copies in ``a`` (``b`` empty); a near duplicate pairs two sets of
    pixel-identical images. ``cross_split``: tasks in which copies sit in different splits.
    """

    a: tuple[ImageRef, ...]
    b: tuple[ImageRef, ...]
    distance: int | None
    cross_split: tuple[str, ...]
    cross_task: bool

    @property
    def exact(self) -> bool:
        return self.distance is None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"cross_split": list(self.cross_split), "cross_task": self.cross_task}
        if self.exact:
            out["images"] = [r.to_json() for r in self.a]
        else:
            out.update(distance=self.distance, a=[r.to_json() for r in self.a], b=[r.to_json() for r in self.b])
        return out


@dataclass
class Findings:
    """Everything the audit found; ``leaks``/``failed`` decide the exit code."""

    images: int
    threshold: int
    balance: dict[str, dict[str, dict[str, Any]]]
    shared_groups: list[SharedGroup] = field(default_factory=list)
    exact: list[Duplicate] = field(default_factory=list)
    near: list[Duplicate] = field(default_factory=list)
    uninformative: int = 0  # images whose perceptual hash is too common to compare (see MAX_CLUSTERS_PER_HASH)

    def counts(self) -> dict[str, int]:
        return {
            "shared_groups": len(self.shared_groups),
            "exact_cross_split": sum(1 for d in self.exact if d.cross_split),
            "exact_cross_task": sum(1 for d in self.exact if d.cross_task),
            "near_cross_split": sum(1 for d in self.near if d.cross_split),
            "near_cross_task": sum(1 for d in self.near if d.cross_task),
        }

    def failed(self, strict: bool) -> bool:
        c = self.counts()
        leak = c["shared_groups"] + c["exact_cross_split"] + c["near_cross_split"] > 0
        return leak or (strict and c["exact_cross_task"] + c["near_cross_task"] > 0)


def _refs(table: ImageTable, members: NDArray[np.int64]) -> tuple[ImageRef, ...]:
    refs = (ImageRef(table.tasks[table.task[i]], SPLITS[table.split[i]], table.keys[i], table.groups[i])
            for i in members.tolist())
    return tuple(sorted(refs, key=lambda r: (r.task, SPLITS.index(r.split), r.key)))


def _scope(a: tuple[ImageRef, ...], b: tuple[ImageRef, ...]) -> tuple[tuple[str, ...], bool]:
    """(tasks with copies in different splits, whether copies span tasks) across ``a`` × ``b``."""
    cross_split = {x.task for x in a for y in b if x.task == y.task and x.split != y.split}
    cross_task = any(x.task != y.task for x in a for y in b)
    return tuple(sorted(cross_split)), cross_task


def shared_groups(table: ImageTable) -> list[SharedGroup]:
    """Groups whose images sit in more than one split of a task."""
    where: dict[tuple[int, str], dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for task, split, group, key in zip(table.task.tolist(), table.split.tolist(), table.groups, table.keys,
                                       strict=True):
        where[(task, group)][SPLITS[split]].append(key)
    found = [SharedGroup(table.tasks[task], group,
                         {s: sorted(splits[s]) for s in sorted(splits, key=SPLITS.index)})
             for (task, group), splits in where.items() if len(splits) > 1]
    return sorted(found, key=lambda g: (g.task, g.group))


def balance(table: ImageTable, classes: dict[str, list[str]]) -> dict[str, dict[str, dict[str, Any]]]:
    """task → split → images, groups, per-class counts and the classes with no image."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for t, task in enumerate(table.tasks):
        names = classes[task]
        out[task] = {}
        for s, split in enumerate(SPLITS):
            mask = (table.task == t) & (table.split == s)
            counts = np.bincount(table.label[mask], minlength=len(names)).tolist()
            groups = {table.groups[i] for i in np.flatnonzero(mask).tolist()}
            out[task][split] = {"images": int(mask.sum()), "groups": len(groups),
                                "classes": dict(zip(names, counts, strict=True)),
                                "missing": [n for n, c in zip(names, counts, strict=True) if c == 0]}
    return out


@dataclass
class _Clusters:
    """Images grouped by pixel digest: cluster ``c`` is ``order[bounds[c]:bounds[c + 1]]``."""

    order: NDArray[np.int64]
    bounds: NDArray[np.int64]
    cell: NDArray[np.int64]  # the one (task, split) cell of a cluster, -1 if it spans several
    phash: NDArray[np.uint64]

    def members(self, cluster: int) -> NDArray[np.int64]:
        return self.order[self.bounds[cluster]:self.bounds[cluster + 1]]


def _clusters(table: ImageTable) -> _Clusters:
    if not len(table):
        empty = np.zeros(0, dtype=np.int64)
        return _Clusters(empty, np.zeros(1, dtype=np.int64), empty, np.zeros(0, dtype=np.uint64))
    _, inverse = np.unique(table.digest, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    order = np.argsort(inverse, kind="stable")
    bounds = np.flatnonzero(np.r_[True, np.diff(inverse[order]) != 0, True])
    cells = (table.task * len(SPLITS) + table.split)[order]
    low = np.minimum.reduceat(cells, bounds[:-1])
    high = np.maximum.reduceat(cells, bounds[:-1])
    return _Clusters(order, bounds, np.where(low == high, low, -1), table.phash[order[bounds[:-1]]])


def exact_duplicates(table: ImageTable, clusters: _Clusters) -> list[Duplicate]:
    """Pixel-identical images in more than one (task, split) cell."""
    found = []
    for c in np.flatnonzero(clusters.cell < 0).tolist():
        refs = _refs(table, clusters.members(c))
        cross_split, cross_task = _scope(refs, refs)
        found.append(Duplicate(refs, (), None, cross_split, cross_task))
    return found


def near_duplicates(table: ImageTable, clusters: _Clusters, threshold: int) -> tuple[list[Duplicate], int]:
    """Pairs of distinct-pixel clusters within ``threshold`` bits whose copies sit in different cells, and the
    number of images left out because their hash is uninformative."""
    values, of_cluster = np.unique(clusters.phash, return_inverse=True)
    of_cluster = of_cluster.reshape(-1)
    order = np.argsort(of_cluster, kind="stable")
    starts = np.searchsorted(of_cluster[order], np.arange(values.size + 1))
    # A hash value's cell: the one cell all its clusters share, else -1.
    low = np.full(values.size, np.iinfo(np.int64).max, dtype=np.int64)
    high = np.full(values.size, -1, dtype=np.int64)
    np.minimum.at(low, of_cluster, clusters.cell)
    np.maximum.at(high, of_cluster, clusters.cell)
    value_cell = np.where(low == high, low, -1)
    crowded = np.diff(starts) > MAX_CLUSTERS_PER_HASH
    sizes = np.diff(clusters.bounds)
    uninformative = int(sizes[np.isin(of_cluster, np.flatnonzero(crowded))].sum())
    i, j, d = near_pairs(values, threshold)
    relevant = ((value_cell[i] != value_cell[j]) | (value_cell[i] < 0)) & ~crowded[i] & ~crowded[j]
    shared = np.flatnonzero((np.diff(starts) > 1) & (value_cell < 0) & ~crowded)  # one hash, several contents
    pairs = [*zip(i[relevant].tolist(), j[relevant].tolist(), d[relevant].tolist(), strict=True),
             *((v, v, 0) for v in shared.tolist())]
    by_value = {v: order[starts[v]:starts[v + 1]].tolist() for va, vb, _ in pairs for v in (va, vb)}
    found = []
    for va, vb, distance in pairs:
        for ca in by_value[va]:
            for cb in by_value[vb]:
                if (va == vb and cb <= ca) or (clusters.cell[ca] == clusters.cell[cb] >= 0):
                    continue
                a, b = _refs(table, clusters.members(ca)), _refs(table, clusters.members(cb))
                cross_split, cross_task = _scope(a, b)
                if cross_split or cross_task:
                    if (a[0].task, SPLITS.index(a[0].split)) > (b[0].task, SPLITS.index(b[0].split)):
                        a, b = b, a
                    found.append(Duplicate(a, b, distance, cross_split, cross_task))
    return sorted(found, key=lambda d: (d.distance or 0, d.a[0].task, d.a[0].key, d.b[0].key)), uninformative


def find_leaks(table: ImageTable, classes: dict[str, list[str]], threshold: int) -> Findings:
    """Audit the scanned images: shared groups, exact and near duplicates, class balance."""
    clusters = _clusters(table)
    exact = sorted(exact_duplicates(table, clusters), key=lambda d: (d.a[0].task, d.a[0].key))
    near, uninformative = near_duplicates(table, clusters, threshold)
    return Findings(images=len(table), threshold=threshold, balance=balance(table, classes),
                    shared_groups=shared_groups(table), exact=exact, near=near, uninformative=uninformative)
