"""Task metadata as data: schemas, one module per source dataset, pools."""

from dpbench.errors import RegistryError
from dpbench.tasks.models import Pool, Source, SplitCount, SplitSizes, Task
from dpbench.tasks.registry import all_tasks, get_pool, get_task, pool_tasks, pool_version, pools

__all__ = [
    "Pool", "RegistryError", "Source", "SplitCount", "SplitSizes", "Task", "all_tasks", "get_pool",
    "get_task", "pool_tasks", "pool_version", "pools",
]
