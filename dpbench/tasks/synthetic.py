"""The embedded ``synthetic`` pool: one procedurally generated mirror per paper task, as pure data.

Each ``synthetic-<name>`` keeps its paper task's class count, class names, split unit, role and links. Its split
sizes, split hash and tile size are pinned in ``synthetic_pins.json`` (written by :mod:`dpbench.synthetic.pins`
from the generator's plan), so the registry reads data and never computes a split at import.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from dpbench.errors import RegistryError
from dpbench.tasks.models import SPLITS, Source, SplitCount, SplitSizes, Task

SYNTHETIC_SOURCE = Source(
    id="dpbench_synthetic",
    title="dpbench embedded pool (SYNTHETIC, procedurally generated H&E-like tiles)",
    url="https://github.com/dpbench/dpbench",
    availability="synthetic",
    licence="CC0-1.0",
    citation=(
        "@misc{dpbench_synthetic,\n  title = {dpbench embedded synthetic pool},\n"
        "  note = {Procedurally generated; not real patient data},\n  year = {2026}\n}"
    ),
    notes="Generated at build time from a seed; no image is real. Never report these scores as real.",
)

PINS_FILE = "synthetic_pins.json"
PREFIX = "synthetic-"


@cache
def load_pins() -> dict[str, dict[str, Any]]:
    """The pinned split sha256, split sizes and tile size per synthetic task."""
    path = resources.files("dpbench.tasks").joinpath(PINS_FILE)
    pins: dict[str, dict[str, Any]] = json.loads(path.read_text())
    return pins


def mirrored(real: tuple[Task, ...]) -> list[Task]:
    """The paper tasks that get a synthetic mirror (the pre-training and evaluation roles), in order."""
    return [t for t in real if t.role in ("pretrain", "evaluate")]


def mirror(paper: Task, pin: dict[str, Any]) -> Task:
    """The synthetic task that mirrors ``paper``, sized by its ``pin``."""
    sizes = SplitSizes(**{s: SplitCount(images=pin["sizes"][s][0], groups=pin["sizes"][s][1]) for s in SPLITS})
    return Task(
        name=f"{PREFIX}{paper.name}", abbreviation=f"syn-{paper.abbreviation}", source=SYNTHETIC_SOURCE,
        origin=paper.origin, organ=paper.organ, stain="H&E", n_classes=paper.n_classes, classes=paper.classes,
        metric=paper.metric, split_unit=paper.split_unit, sizes=sizes, role=paper.role,
        linked=tuple(f"{PREFIX}{n}" for n in paper.linked), patch_px=pin["patch_px"],
        um_per_px=None, synthetic=True, split_sha256=pin["split_sha256"],
        preprocessing=(f"SYNTHETIC mirror of {paper.name}: same classes, split unit and links; "
                       "H&E-like tiles rendered from a seed with a per-group stain and scale shift."),
    )


def synthetic_tasks(real: tuple[Task, ...]) -> tuple[Task, ...]:
    """Mirrors of the paper's 22 tasks, in the same order."""
    pins = load_pins()
    missing = [f"{PREFIX}{t.name}" for t in mirrored(real) if f"{PREFIX}{t.name}" not in pins]
    if missing:
        raise RegistryError(f"no pin for {', '.join(missing)} in {PINS_FILE}; run python -m dpbench.synthetic.pins")
    return tuple(mirror(t, pins[f"{PREFIX}{t.name}"]) for t in mirrored(real))


def paper_name_of(task: Task) -> str:
    """The name of the paper task a synthetic task mirrors."""
    if not task.synthetic:
        raise ValueError(f"{task.name} is not synthetic")
    return task.name.removeprefix(PREFIX)
