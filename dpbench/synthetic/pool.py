"""Task sources for the synthetic pool: render planned samples into PNG tiles."""

from __future__ import annotations

import io
from functools import cached_property

import numpy as np
from PIL import Image

from dpbench.synthetic.plan import SyntheticPlan, plan_task, stable_int
from dpbench.synthetic.render import ClassStyle, GroupStyle, class_styles, group_style, render_tile
from dpbench.tasks.models import Task
from dpbench.tasks.registry import get_task
from dpbench.tasks.samples import Sample
from dpbench.tasks.synthetic import paper_name_of

#: Nominal resolution of the synthetic tiles (they mimic 20x tiles; it is not a measurement).
NOMINAL_UM_PER_PX = 0.5


class SyntheticSource:
    """A ``TaskSource`` that renders the synthetic mirror of a paper task."""

    image_ext = "png"

    def __init__(self, task: Task) -> None:
        self.task = task
        self.plan: SyntheticPlan = plan_task(get_task(paper_name_of(task)))
        self.skipped: dict[str, int] = {}  # a generator leaves nothing out

    @cached_property
    def _styles(self) -> list[ClassStyle]:
        rng = np.random.default_rng(stable_int(self.plan.seed, "classes", self.plan.name))
        return class_styles(self.plan.n_classes, self.plan.separation, rng)

    @cached_property
    def _groups(self) -> dict[str, GroupStyle]:
        # Seeded by family and group id only: linked tasks share their patients' appearance.
        return {
            g: group_style(np.random.default_rng(stable_int(self.plan.seed, "group", self.plan.family, g)))
            for g in sorted(set(self.plan.sources))
        }

    def samples(self) -> list[Sample]:
        """Planned samples; the source URI says they are synthetic."""
        plan = self.plan
        return [
            Sample(key=k, group=g, label=lab, source=f"synthetic://{plan.name}/{src}/{k}",
                   coords=(0, 0, plan.tile_px, plan.tile_px), um_per_px=NOMINAL_UM_PER_PX)
            for k, g, src, lab in zip(plan.keys, plan.groups, plan.sources, plan.labels, strict=True)
        ]

    def render(self, index: int) -> np.ndarray:
        """The RGB tile of sample ``index`` (deterministic, independent of rendering order)."""
        plan = self.plan
        rng = np.random.default_rng(stable_int(plan.seed, "tile", plan.name, plan.keys[index]))
        return render_tile(self._styles[plan.labels[index]], self._groups[plan.sources[index]],
                           plan.tile_px, rng)

    def prepare(self, batch: list[Sample]) -> None:
        """Nothing to prepare: each tile is rendered on its own."""

    def image(self, sample: Sample) -> bytes:
        """PNG bytes of ``sample``."""
        index = self._index[sample.key]
        buffer = io.BytesIO()
        Image.fromarray(self.render(index)).save(buffer, format="PNG", optimize=False, compress_level=6)
        return buffer.getvalue()

    @cached_property
    def _index(self) -> dict[str, int]:
        return {k: i for i, k in enumerate(self.plan.keys)}
