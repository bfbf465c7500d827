"""Leakage audit of a built pool: shared groups, exact and near duplicates across splits and tasks.

``audit_pool`` scans the shards listed in ``manifest.json`` once (pixel digest + perceptual hash per
image) and returns an ``AuditReport``; ``report_json`` is what ``dpbench audit`` writes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dpbench.errors import DpbenchError
from dpbench.pool.audit.findings import Duplicate, Findings, ImageRef, SharedGroup, find_leaks
from dpbench.pool.audit.index import MAX_THRESHOLD, near_pairs
from dpbench.pool.audit.scan import scan_pool
from dpbench.pool.built import BuiltPool, as_pool
from dpbench.pool.manifest import Manifest

__all__ = ["MAX_THRESHOLD", "AuditReport", "Duplicate", "ImageRef", "SharedGroup", "audit_pool", "near_pairs",
           "select_tasks"]

DEFAULT_THRESHOLD = 4


@dataclass
class AuditReport:
    """An audited pool: what was checked and what was found."""

    root: Path
    manifest: Manifest
    tasks: list[str]
    findings: Findings
    seconds: float

    def failed(self, strict: bool = False) -> bool:
        """Leakage across splits (or, with ``strict``, also across tasks)."""
        return self.findings.failed(strict)

    def to_json(self, strict: bool = False) -> dict[str, Any]:
        f = self.findings
        return {
            "pool": self.manifest.pool, "pool_version": self.manifest.pool_version, "root": str(self.root),
            "tasks": self.tasks, "images": f.images, "threshold": f.threshold, "strict": strict,
            "seconds": round(self.seconds, 3), "passed": not self.failed(strict), "summary": f.counts(),
            "uninformative_hashes": f.uninformative,
            "balance": f.balance, "shared_groups": [g.to_json() for g in f.shared_groups],
            "exact_duplicates": [d.to_json() for d in f.exact], "near_duplicates": [d.to_json() for d in f.near],
        }


def select_tasks(manifest: Manifest, names: list[str] | None) -> list[str]:
    """The manifest's tasks, or the named ones (comma-separated lists allowed) in manifest order."""
    if not names:
        return [t.name for t in manifest.tasks]
    wanted = {n.strip() for name in names for n in name.split(",") if n.strip()}
    for name in sorted(wanted):
        manifest.task(name)  # raises a DpbenchError naming the built tasks
    return [t.name for t in manifest.tasks if t.name in wanted]


def audit_pool(pool: BuiltPool | Path, tasks: list[str] | None = None, threshold: int = DEFAULT_THRESHOLD,
               workers: int = 1, on_shard: Callable[[int], None] | None = None) -> AuditReport:
    """Audit the built ``pool`` (all its tasks unless ``tasks``); raises DpbenchError on bad input."""
    pool = as_pool(pool)
    root = pool.root
    if not 0 <= threshold <= MAX_THRESHOLD:
        raise DpbenchError(f"--threshold {threshold} is out of range: use 0..{MAX_THRESHOLD} bits of 64")
    if workers < 1:
        raise DpbenchError("--workers must be at least 1")
    if not root.is_dir():
        raise DpbenchError(f"{root} is not a folder: point dpbench audit at a built pool")
    started = time.perf_counter()
    manifest = pool.manifest
    chosen = select_tasks(manifest, tasks)
    table = scan_pool(root, manifest, chosen, workers, on_shard)
    classes = {t.name: list(t.classes) for t in manifest.tasks}
    findings = find_leaks(table, classes, threshold)
    return AuditReport(root, manifest, chosen, findings, time.perf_counter() - started)
