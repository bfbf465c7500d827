"""Deprecated alias of :mod:`dpbench.pool.read`, kept for one release (0.2): import from ``dpbench.pool`` instead."""

import warnings

from dpbench.pool.read import MultiTaskStream, shard_dataset, task_dataset

warnings.warn("dpbench.data moved to dpbench.pool.read (BuiltPool(root).dataset(task, split) for one split); "
              "the alias goes in the next release", DeprecationWarning, stacklevel=2)

__all__ = ["MultiTaskStream", "shard_dataset", "task_dataset"]
