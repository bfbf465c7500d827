"""The synthetic pool's pins: each mirror task's split hash, split sizes and tile size, computed from the generator's
plan (no pixels) and stored as data in ``dpbench/tasks/synthetic_pins.json`` so the registry never computes a split.

Maintainers rerun ``python -m dpbench.synthetic.pins`` after an intended generator or splitter change; the test
suite recomputes every pin and fails when the stored ones drift.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from dpbench.pool.splits import SampleRef, SplitManifest, grouped_split
from dpbench.synthetic.plan import plan_task
from dpbench.tasks.models import SPLITS, Task
from dpbench.tasks.registry import paper_and_public_tasks
from dpbench.tasks.synthetic import PINS_FILE, mirrored


@cache
def synthetic_split(paper: Task) -> SplitManifest:
    """The grouped split of the synthetic mirror of ``paper`` (computed from the plan, no pixels)."""
    plan = plan_task(paper)
    refs = [SampleRef(k, g, lab) for k, g, lab in zip(plan.keys, plan.groups, plan.labels, strict=True)]
    return grouped_split(plan.name, plan.unit, refs, paper.sizes.fractions(), paper.n_classes)


def compute_pin(paper: Task) -> dict[str, Any]:
    """The pin of ``paper``'s mirror: split sha256, (images, groups) per split, tile size in pixels."""
    split = synthetic_split(paper)
    counts = split.counts()
    return {"split_sha256": split.sha256, "patch_px": plan_task(paper).tile_px,
            "sizes": {s: list(counts[s]) for s in SPLITS}}


def compute_pins() -> dict[str, dict[str, Any]]:
    """Every mirror task's pin, recomputed."""
    return {f"synthetic-{t.name}": compute_pin(t) for t in mirrored(paper_and_public_tasks())}


def write_pins() -> dict[str, dict[str, Any]]:
    """Recompute and store the pins (maintainers only: after an intended generator change)."""
    pins = compute_pins()
    target = resources.files("dpbench.tasks").joinpath(PINS_FILE)
    with resources.as_file(target) as path:
        path.write_text(json.dumps(pins, indent=2, sort_keys=True) + "\n")
    return pins


if __name__ == "__main__":
    print(f"wrote {len(write_pins())} pins")
