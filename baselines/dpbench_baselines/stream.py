"""Resumable multi-task batches: :class:`MultiTaskStream`'s exact draws, at a position that can be saved.

How resuming stays exact: a draw is (1) a task from ``np.random.default_rng(seed)`` and (2) the next sample of that
task's current epoch, an epoch being a pass over the task's shards shuffled from a seed derived from (stream seed,
task, epoch), exactly as ``MultiTaskStream._cycle`` does. The position is therefore the task-choice generator's
state plus, per task, (epoch, samples consumed in it): a few numbers, saved with every checkpoint. Resuming
restores the generator and, per task, reopens the saved epoch and skips the consumed samples *undecoded* (tar
reads only, at most one epoch per task). Images are decoded and augmented later, each with its own seed derived
from (seed, draw number), so the augmentation of draw d does not depend on where the run was interrupted nor on
how many loader workers there are.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from dpbench.errors import DpbenchError
from dpbench.pool.built import BuiltPool
from dpbench.pool.read import MultiTaskStream, decode_sample, epoch_seed, raw_shard_dataset
from dpbench.pool.tarstream import resolve

Draw = tuple[int, dict[str, Any], int]  # (task index, raw webdataset sample, draw number)
#: Members larger than this (the images) are drawn unread and read by the loader worker that decodes them.
LAZY_OVER = 4096
StreamState = dict[str, Any]


class ResumableStream(MultiTaskStream):
    """A :class:`MultiTaskStream` (same draws for the same seed) whose position is :meth:`state`.

    Unlike the parent, iterating continues from the current position instead of restarting.
    """

    def __init__(self, pool: BuiltPool | Path, tasks: list[str], split: str = "train", seed: int = 0,
                 buffer: int = 1000, transform: Callable[[Any], Any] | None = None,
                 state: StreamState | None = None) -> None:
        super().__init__(pool, tasks, split, transform, seed, buffer)
        self._rng = np.random.default_rng(seed)
        self._positions = [[0, 0] for _ in self.tasks]
        self._draws = 0
        self._open: list[Iterator[dict[str, Any]] | None] = [None] * len(self.tasks)
        if state is not None:
            self.load_state(state)

    def state(self) -> StreamState:
        """The position: JSON-able, small."""
        return {"rng": self._rng.bit_generator.state, "positions": [list(p) for p in self._positions],
                "draws": self._draws, "tasks": list(self.tasks), "seed": self.seed}

    def load_state(self, state: StreamState) -> None:
        """Continue from a :meth:`state` of a stream over the same tasks and seed."""
        if state.get("tasks") != self.tasks or state.get("seed") != self.seed:
            raise DpbenchError("the saved data-stream position belongs to other tasks or another seed; resume with "
                               "the original settings or start a new run in another --out folder")
        self._rng.bit_generator.state = state["rng"]
        self._positions = [[int(e), int(o)] for e, o in state["positions"]]
        self._draws = int(state["draws"])
        self._open = [None] * len(self.tasks)

    def _epoch(self, index: int, epoch: int) -> Iterator[dict[str, Any]]:
        """Undecoded samples of one task epoch, in ``MultiTaskStream._cycle``'s order (same seeds, same pipeline).

        Every shard in every process: under torchrun each process draws from its own seeded stream.
        """
        return iter(raw_shard_dataset(self._urls[index], self.buffer, epoch_seed(self.seed, index, epoch),
                                      every_process=True, lazy_over=LAZY_OVER))

    def draw(self) -> Draw:
        """The next (task index, raw sample, draw number)."""
        index = int(self._rng.integers(len(self.tasks)))
        for _ in range(2):
            if self._open[index] is None:
                epoch, offset = self._positions[index]
                self._open[index] = itertools.islice(self._epoch(index, epoch), offset, None)
            opened = self._open[index]
            assert opened is not None
            sample = next(opened, None)
            if sample is not None:
                self._positions[index][1] += 1
                self._draws += 1
                return index, sample, self._draws - 1
            self._positions[index] = [self._positions[index][0] + 1, 0]
            self._open[index] = None
        raise DpbenchError(f"task {self.tasks[index]} has no {self.split} samples in {self.root}; "
                           "run dpbench verify on the pool")

    def __iter__(self) -> Iterator[tuple[int, Any, int]]:
        while True:
            index, sample, _ = self.draw()
            image, label, _meta = decode_sample(resolve(sample), self.transform)
            yield index, image, label


def augment_seed(seed: int, draw: int) -> int:
    """The seed of draw ``draw``'s augmentation."""
    return int(np.random.SeedSequence([seed, draw]).generate_state(1, dtype=np.uint64)[0])


class _Prepare(Dataset[Any]):
    """Decodes and augments one draw (in a loader worker or the main process); passes the position through."""

    def __init__(self, transform: Callable[[Any], torch.Tensor], seed: int) -> None:
        self.transform, self.seed = transform, seed

    def __getitem__(self, item: Any) -> Any:
        if isinstance(item, dict):  # the stream position after the batch
            return item
        index, sample, draw = item
        image, label, _meta = decode_sample(resolve(sample))
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(augment_seed(self.seed, draw))  # CPU only: cheap
            return self.transform(image), index, label


def _collate(rows: list[Any]) -> dict[str, Any]:
    items, state = rows[:-1], rows[-1]
    return {"images": torch.stack([r[0] for r in items]), "tasks": torch.tensor([r[1] for r in items]),
            "labels": torch.tensor([r[2] for r in items]), "state": state}


def _batches(stream: ResumableStream, batch_size: int) -> Iterator[list[Any]]:
    while True:
        draws: list[Any] = [stream.draw() for _ in range(batch_size)]
        yield [*draws, stream.state()]


def batch_loader(stream: ResumableStream, batch_size: int, transform: Callable[[Any], torch.Tensor], seed: int,
                 workers: int = 0, pin_memory: bool = False) -> DataLoader[Any]:
    """Endless batches ``{"images", "tasks", "labels", "state"}``; ``state`` is the stream position after the batch.

    Draws happen in this process (cheap: no decoding); ``workers`` processes decode and augment.
    """
    if batch_size < 1:
        raise DpbenchError(f"batch size must be >= 1, got {batch_size}")
    return DataLoader(_Prepare(transform, seed), batch_sampler=_batches(stream, batch_size), num_workers=workers,
                      collate_fn=_collate, pin_memory=pin_memory, generator=torch.Generator().manual_seed(seed),
                      persistent_workers=False)
