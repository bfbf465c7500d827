"""``BuiltPool``: a built pool folder with its manifest, readers and verifier, handed around as one object."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from dpbench.pool.hf import hf_dataset
from dpbench.pool.manifest import PoolFolder
from dpbench.pool.read import ShardPipeline, Transform, task_dataset
from dpbench.pool.verify import Problem, verify_pool

if TYPE_CHECKING:
    from datasets import Dataset, IterableDataset


class BuiltPool(PoolFolder):
    """A folder that ``dpbench build`` or ``dpbench download`` wrote: ``manifest.json``, split files, shards.

    ``BuiltPool(root).manifest`` is read once; ``.shards(task, split)`` lists shard paths, ``.dataset(task, split)``
    reads samples, ``.hf_dataset(task, split)`` opens them as a Hugging Face dataset, ``.verify()`` checks every
    shard against the manifest. Pass ``manifest`` when already loaded.
    """

    def dataset(self, task: str, split: str, transform: Transform | None = None, shuffle: int = 0,
                seed: int = 0) -> ShardPipeline:
        """Samples of one task split as ``(image, label, metadata)`` (see :func:`dpbench.pool.read.task_dataset`)."""
        return task_dataset(self, task, split, transform, shuffle, seed)

    def hf_dataset(self, task: str, split: str, *, streaming: bool = False,
                   cache_dir: Path | None = None) -> Dataset | IterableDataset:
        """One task split as a Hugging Face ``datasets`` dataset (see :func:`dpbench.pool.hf.hf_dataset`)."""
        return hf_dataset(self, task, split, streaming=streaming, cache_dir=cache_dir)

    def verify(self, decode: bool = True, on_shard: Callable[[str], None] | None = None) -> list[Problem]:
        """Every problem found checking the shards and split files against the manifest (empty: all is well)."""
        return verify_pool(self, decode=decode, on_shard=on_shard)[1]


def as_pool(pool: PoolFolder | Path | str) -> BuiltPool:
    """``pool`` itself when it is a :class:`BuiltPool`, else a :class:`BuiltPool` over the same folder (and the
    manifest already loaded, if any)."""
    if isinstance(pool, BuiltPool):
        return pool
    if isinstance(pool, PoolFolder):
        return BuiltPool(pool.root, pool.__dict__.get("manifest"))
    return BuiltPool(pool)
