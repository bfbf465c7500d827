"""Leave-one-task-out (LOTO) protocols: which tasks train a model when one task is held out.

The paper keeps linked tasks together: holding out Breast1 also holds out Breast2 (same slides and
annotations), and CellInclusion goes with ProliferativePattern (same thyroid slides).
"""

from __future__ import annotations

from dataclasses import dataclass

from dpbench.tasks.models import Pool, Task
from dpbench.tasks.registry import get_task


@dataclass(frozen=True)
class LotoFold:
    """One fold: the evaluated task, everything held out with it, and the training tasks."""

    target: str
    held_out: tuple[str, ...]
    train: tuple[str, ...]


def linked_closure(task: Task) -> tuple[str, ...]:
    """The task and every task transitively linked to it, sorted."""
    seen = {task.name}
    frontier = [task]
    while frontier:
        for name in frontier.pop().linked:
            if name not in seen:
                seen.add(name)
                frontier.append(get_task(name))
    return tuple(sorted(seen))


def loto_folds(pool: Pool, targets: list[str] | None = None) -> list[LotoFold]:
    """A fold per target task (default: the pool's ``evaluate`` tasks), linked tasks held out together."""
    tasks = [get_task(n) for n in pool.tasks]
    chosen = [get_task(n) for n in targets] if targets else [t for t in tasks if t.role == "evaluate"]
    folds = []
    for target in chosen:
        held = linked_closure(target)
        folds.append(LotoFold(target.name, held, tuple(t.name for t in tasks if t.name not in held)))
    return folds


def left_out_sets(pool: Pool, targets: list[str] | None = None) -> dict[tuple[str, ...], list[LotoFold]]:
    """The distinct left-out sets of :func:`loto_folds` (the paper's 8 for its 10 evaluation tasks), each with the
    folds it serves: one pre-training run per set scores every task in it."""
    sets: dict[tuple[str, ...], list[LotoFold]] = {}
    for fold in loto_folds(pool, targets):
        sets.setdefault(fold.held_out, []).append(fold)
    return sets
