"""Building a pool: split each task by its groups, write its shards (resumably, in parallel), record the manifest."""

from dpbench.build.builder import (
    BuildOptions,
    BuildReport,
    TaskReport,
    build_pool,
    build_task,
    plan_build,
    raw_problem,
    split_task,
    target_fractions,
    task_source,
)

__all__ = [
    "BuildOptions", "BuildReport", "TaskReport", "build_pool", "build_task", "plan_build", "raw_problem",
    "split_task", "target_fractions", "task_source",
]
