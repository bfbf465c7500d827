"""Everything that reads or writes a built pool folder: manifest models, grouped splits, shard writing and
reading (webdataset, with a fast tar-member reader), verification, the leakage audit, and :class:`BuiltPool`."""

from dpbench.pool.built import BuiltPool, as_pool
from dpbench.pool.manifest import MANIFEST, Manifest, PoolFolder, ShardEntry, TaskEntry, load_manifest

__all__ = ["MANIFEST", "BuiltPool", "Manifest", "PoolFolder", "ShardEntry", "TaskEntry", "as_pool", "load_manifest"]
