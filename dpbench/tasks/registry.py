"""The task and pool registry: discovers one module per source and the synthetic mirror pool."""

from __future__ import annotations

import hashlib
import importlib
import json
import pkgutil
from functools import cache
from importlib import resources
from typing import Protocol, TypeVar

from dpbench.errors import RegistryError
from dpbench.tasks.models import Pool, Source, Task
from dpbench.tasks.synthetic import synthetic_tasks


@cache
def paper_and_public_tasks() -> tuple[Task, ...]:
    """Every task defined by a module of ``dpbench.tasks.sources``, in module then definition order."""
    from dpbench.tasks import sources

    tasks: list[Task] = []
    for info in sorted(pkgutil.iter_modules(sources.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{sources.__name__}.{info.name}")
        tasks.extend(module.TASKS)
    return tuple(tasks)


@cache
def all_tasks() -> dict[str, Task]:
    """Name → task for every registered task, real and synthetic; checks cross-task invariants."""
    real = paper_and_public_tasks()
    rank = {name: i for i, name in enumerate(MORMONT2020)}
    real = tuple(sorted(real, key=lambda t: (rank.get(t.name, len(rank)), t.name)))
    tasks = list(real) + list(synthetic_tasks(real))
    by_name: dict[str, Task] = {}
    for task in tasks:
        if task.name in by_name:
            raise RegistryError(f"task {task.name} is registered twice")
        by_name[task.name] = task
    for task in tasks:
        for other in task.linked:
            if other not in by_name or task.name not in by_name[other].linked:
                raise RegistryError(f"link {task.name} -> {other} must exist in both directions")
    return by_name


def get_task(name: str) -> Task:
    """The task called ``name`` (case-insensitive), or a RegistryError naming the close matches."""
    tasks = all_tasks()
    if name in tasks:
        return tasks[name]
    folded = {k.lower(): k for k in tasks}
    if name.lower() in folded:
        return tasks[folded[name.lower()]]
    import difflib

    close = difflib.get_close_matches(name, list(tasks), n=3)
    hint = f"did you mean {', '.join(close)}?" if close else "see `dpbench tasks` for the list"
    raise RegistryError(f"unknown task {name!r}: {hint}")


#: The paper's 22 tasks in the order of its final split table (supplementary A).
MORMONT2020 = (
    "Necrosis", "ProliferativePattern", "CellInclusion", "MouseLba", "HumanLba", "Lung", "Glomeruli",
    "Breast1", "Breast2", "BoneMarrow", "Janowczyk1", "Janowczyk2", "Janowczyk5", "Janowczyk6",
    "Janowczyk7", "MitosAtypia14", "WarwickCRC", "Camelyon16", "Tupac16Mitosis", "StromaLBP",
    "Bach18Micro", "UmcmColorectal",
)


@cache
def pools() -> dict[str, Pool]:
    """Every registered pool by name."""
    tasks = all_tasks().values()
    paper = MORMONT2020
    synthetic = tuple(f"synthetic-{name}" for name in paper)
    external = tuple(t.name for t in tasks if not t.synthetic and t.role == "external")
    defined = [
        Pool(name="mormont2020", tasks=paper,
             description="The 22 tasks of Mormont, Geurts & Marée (JBHI 2020): 882,800 images, 81 classes."),
        Pool(name="synthetic", tasks=synthetic, synthetic=True,
             description="SYNTHETIC embedded pool: one procedurally generated task per paper task."),
    ]
    if external:
        defined.append(Pool(name="external", tasks=external,
                            description="Tasks the paper kept aside for final evaluation (BreakHis)."))
    public2026 = tuple(t.name for t in tasks if not t.synthetic and t.role == "extra")
    if public2026:
        defined.append(Pool(name="public2026", tasks=public2026,
                            description="Modern public datasets (2018-2026) with official or patient-level "
                                        "splits, converted locally from their own downloads."))
    return {p.name: p for p in defined}


@cache
def raw_sources() -> dict[str, tuple[Source, tuple[Task, ...]]]:
    """Source id → the raw source and its registered (non-synthetic) tasks, sorted by id."""
    found: dict[str, tuple[Source, list[Task]]] = {}
    for task in paper_and_public_tasks():
        found.setdefault(task.source.id, (task.source, []))[1].append(task)
    return {k: (src, tuple(tasks)) for k, (src, tasks) in sorted(found.items())}


def get_source(source_id: str) -> Source:
    """The raw source called ``source_id``, or a RegistryError naming the close matches."""
    known = raw_sources()
    if source_id not in known:
        import difflib

        close = difflib.get_close_matches(source_id, list(known), n=3)
        hint = f"did you mean {', '.join(close)}?" if close else "see `dpbench sources list`"
        raise RegistryError(f"unknown source {source_id!r}: {hint}")
    return known[source_id][0]


def get_pool(name: str) -> Pool:
    """The pool called ``name``, or a RegistryError listing the pools."""
    known = pools()
    if name not in known:
        raise RegistryError(f"unknown pool {name!r}: choose one of {', '.join(sorted(known))}")
    return known[name]


def pool_tasks(pool: Pool, only: list[str] | None = None) -> list[Task]:
    """The pool's tasks, optionally restricted to ``only`` (names checked against the pool)."""
    tasks = [get_task(n) for n in pool.tasks]
    if not only:
        return tasks
    wanted = [get_task(n).name for n in only]
    outside = [n for n in wanted if n not in pool.tasks]
    if outside:
        raise RegistryError(f"task(s) {', '.join(outside)} not in pool {pool.name!r}; "
                            f"see `dpbench tasks --pool {pool.name}`")
    return [t for t in tasks if t.name in wanted]


def parse_licences(allow: list[str]) -> set[str]:
    """Licence names from repeatable/comma-separated options, checked against the closed vocabulary."""
    from typing import get_args

    from dpbench.tasks.models import Licence

    known = set(get_args(Licence))
    wanted = {a.strip() for item in allow for a in item.split(",") if a.strip()}
    unknown = sorted(wanted - known)
    if unknown:
        raise RegistryError(f"unknown licence(s) {', '.join(unknown)}: choose from {', '.join(sorted(known))}")
    return wanted


class _Licensed(Protocol):
    @property
    def licence(self) -> str: ...


_T = TypeVar("_T", bound=_Licensed)


def licence_filter(tasks: list[_T], allow: list[str] | None) -> list[_T]:
    """The tasks (registry tasks or manifest entries) whose licence is in ``allow`` (all of them when ``allow`` is
    empty)."""
    if not allow:
        return tasks
    wanted = parse_licences(allow)
    return [t for t in tasks if t.licence in wanted]


def pool_version(pool: Pool, split_hashes: dict[str, str | None] | None = None) -> str:
    """Short hash of the pool's task list, split manifests and metric definitions.

    ``split_hashes`` overrides the registry's pinned split hashes (a build passes the ones it made).
    """
    hashes = split_hashes or {}
    entries = []
    for task in (get_task(n) for n in pool.tasks):
        entries.append({
            "task": task.name, "metric": task.metric, "classes": list(task.class_names),
            "split": hashes.get(task.name, task.split_sha256),
        })
    blob = json.dumps({"pool": pool.name, "tasks": entries}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


PUBLISHED_FILE = "published_manifests.json"


@cache
def published_manifests() -> dict[str, dict[str, str]]:
    """Pool → pool version → sha256 of the ``manifest.json`` dpbench's maintainers published for it.

    The package is the trust root, as a lock file is: ``dpbench download`` accepts a mirror's manifest only when its
    sha256 is the one pinned here (a mirror cannot rewrite the benchmark, e.g. flip test labels and serve a
    self-consistent manifest). A pool version without a pin needs an explicit ``--trust-mirror``.
    """
    path = resources.files("dpbench.tasks").joinpath(PUBLISHED_FILE)
    pins: dict[str, dict[str, str]] = json.loads(path.read_text())
    return pins
