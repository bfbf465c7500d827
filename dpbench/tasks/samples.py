"""What a converter or generator hands to the shard builder: samples and their image bytes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from dpbench.tasks.models import SplitName, Task


@dataclass(frozen=True)
class Sample:
    """One labelled image of a task, before it is written to a shard."""

    key: str
    group: str
    label: int
    source: str
    coords: tuple[int, int, int, int] | None = None  # x, y, width, height in the source image
    um_per_px: float | None = None
    split: SplitName | None = None  # an official split the source prescribes (e.g. a published test set)


class TaskSource(Protocol):
    """Provides a task's samples and, lazily, their encoded images."""

    task: Task
    image_ext: str  # webdataset extension of the image entry, e.g. "png" or "jpg"

    @property
    def skipped(self) -> Mapping[str, int]:
        """Raw items left out, by reason (known once :meth:`samples` has run)."""
        ...

    def samples(self) -> list[Sample]:
        """Every sample of the task (metadata only, cheap)."""
        ...

    def prepare(self, batch: list[Sample]) -> None:
        """Get ready to encode the images of ``batch`` (called with each shard's samples before they are
        asked for; a converter decodes each raw file once here). May do nothing."""
        ...

    def image(self, sample: Sample) -> bytes:
        """The encoded image of ``sample``."""
        ...
