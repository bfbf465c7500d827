"""The embedded ``synthetic`` pool: one procedurally generated mirror per paper task.

Each ``synthetic-<name>`` keeps its paper task's class count, class names, split unit, role and links;
its sizes are the counts the grouped splitter realises on the generator's plan, and its split hash is
pinned in ``synthetic_pins.json`` so that any change in generation or splitting is caught.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

from dpbench.splits import SampleRef, SplitManifest, grouped_split
from dpbench.synthetic.plan import plan_task
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


def load_pins() -> dict[str, str]:
    """Pinned split sha256 per synthetic task (empty if the pin file is absent)."""
    path = resources.files("dpbench.tasks").joinpath(PINS_FILE)
    if not path.is_file():
        return {}
    pins: dict[str, str] = json.loads(path.read_text())
    return pins


@cache
def synthetic_split(paper: Task) -> SplitManifest:
    """The grouped split of the synthetic mirror of ``paper`` (computed from the plan, no pixels)."""
    plan = plan_task(paper)
    refs = [SampleRef(k, g, lab) for k, g, lab in zip(plan.keys, plan.groups, plan.labels, strict=True)]
    return grouped_split(plan.name, plan.unit, refs, paper.sizes.fractions(), paper.n_classes)


def mirror(paper: Task, pins: dict[str, str]) -> Task:
    """The synthetic task that mirrors ``paper``."""
    split = synthetic_split(paper)
    counts = split.counts()
    sizes = SplitSizes(**{s: SplitCount(images=counts[s][0], groups=counts[s][1]) for s in SPLITS})
    name = f"synthetic-{paper.name}"
    return Task(
        name=name, abbreviation=f"syn-{paper.abbreviation}", source=SYNTHETIC_SOURCE, origin=paper.origin,
        organ=paper.organ, stain="H&E", n_classes=paper.n_classes, classes=paper.classes,
        metric=paper.metric, split_unit=paper.split_unit, sizes=sizes, role=paper.role,
        linked=tuple(f"synthetic-{n}" for n in paper.linked), patch_px=plan_task(paper).tile_px,
        um_per_px=None, synthetic=True, split_sha256=pins.get(name),
        preprocessing=(f"SYNTHETIC mirror of {paper.name}: same classes, split unit and links; "
                       "H&E-like tiles rendered from a seed with a per-group stain and scale shift."),
    )


def synthetic_tasks(real: tuple[Task, ...]) -> tuple[Task, ...]:
    """Mirrors of the paper's 22 tasks, in the same order."""
    pins = load_pins()
    return tuple(mirror(t, pins) for t in real if t.role in ("pretrain", "evaluate"))


def paper_task_of(task: Task) -> Task:
    """The paper task a synthetic task mirrors."""
    from dpbench.tasks.registry import get_task

    if not task.synthetic:
        raise ValueError(f"{task.name} is not synthetic")
    return get_task(task.name.removeprefix("synthetic-"))


def write_pins() -> dict[str, str]:
    """Recompute and store the pins (maintainers only: after an intended generator change)."""
    from dpbench.tasks.registry import paper_and_public_tasks

    pins = {f"synthetic-{t.name}": synthetic_split(t).sha256
            for t in paper_and_public_tasks() if t.role in ("pretrain", "evaluate")}
    target = resources.files("dpbench.tasks").joinpath(PINS_FILE)
    with resources.as_file(target) as path:
        path.write_text(json.dumps(pins, indent=2, sort_keys=True) + "\n")
    return pins


if __name__ == "__main__":
    print(f"wrote {len(write_pins())} pins")
