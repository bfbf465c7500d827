"""LOTO protocol definitions (§IV-D): which sets of tasks are left out, one pre-training run per set and seed.

A protocol is data: its pool and its left-out sets, each set closed under the registry's links (linked tasks are
left out together, so no information leaks between them). Two kinds exist:

* derived, ``POOL-all`` for every pool: one set per linked group of the pool's tasks, i.e. 20 sets for the 22
  tasks of ``mormont2020`` (Breast1/Breast2 and CellInclusion/ProliferativePattern are pairs);
* named, in ``loto_protocols.json``: ``mormont2020-loto`` (the paper's 8 sets), its synthetic mirror, and the
  two-set ``synthetic-tiny`` of the tests and the demo.

Each protocol has a content hash (:meth:`LotoProtocol.sha256`) that sweeps, results and reports record.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from importlib import resources

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dpbench.errors import DpbenchError, RegistryError
from dpbench.tasks.registry import get_pool, get_task, pools
from dpbench_baselines.loto import linked_closure

PROTOCOLS_FILE = "loto_protocols.json"
_STRICT = ConfigDict(extra="forbid", frozen=True, strict=True)


class LotoProtocol(BaseModel):
    """A pool and its left-out sets (each a sorted tuple of task names, closed under the registry's links)."""

    model_config = _STRICT

    name: str
    pool: str
    description: str = ""
    sets: tuple[tuple[str, ...], ...] = Field(min_length=1)

    def sha256(self) -> str:
        """Short content hash of the pool and the sets (the description is not part of it)."""
        blob = json.dumps({"pool": self.pool, "sets": [list(s) for s in self.sets]}, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    def tasks(self) -> list[str]:
        """Every left-out task, in set order."""
        return [t for s in self.sets for t in s]

    def set_of(self, task: str) -> tuple[str, ...]:
        """The left-out set holding ``task``."""
        for chosen in self.sets:
            if task in chosen:
                return chosen
        raise DpbenchError(f"task {task} is in no left-out set of protocol {self.name}")

    def subset(self, picks: list[str]) -> LotoProtocol:
        """The protocol restricted to the sets named by ``picks``: a set index (0-based) or a task of the set."""
        chosen: list[tuple[str, ...]] = []
        for pick in picks:
            if pick.isdigit():
                if int(pick) >= len(self.sets):
                    raise DpbenchError(f"protocol {self.name} has {len(self.sets)} sets (0..{len(self.sets) - 1}); "
                                       f"--set {pick} is out of range")
                found = self.sets[int(pick)]
            else:
                try:
                    found = self.set_of(get_task(pick).name)
                except RegistryError as exc:
                    raise DpbenchError(str(exc).strip("'\"")) from None
            if found not in chosen:
                chosen.append(found)
        return self.model_copy(update={"sets": tuple(chosen)}) if chosen else self


def _check(protocol: LotoProtocol) -> LotoProtocol:
    """Every task in the pool, sets disjoint and closed under links; raises a DpbenchError naming the problem."""
    try:
        pool = get_pool(protocol.pool)
        seen: set[str] = set()
        for chosen in protocol.sets:
            for task in chosen:
                if task not in pool.tasks:
                    raise DpbenchError(f"protocol {protocol.name}: task {task} is not in pool {pool.name}")
                if task in seen:
                    raise DpbenchError(f"protocol {protocol.name}: task {task} is in two left-out sets")
                seen.add(task)
                missing = set(linked_closure(get_task(task))) - set(chosen)
                if missing:
                    raise DpbenchError(f"protocol {protocol.name}: {task} is left out without its linked task(s) "
                                       f"{', '.join(sorted(missing))}; leave them out together")
    except RegistryError as exc:
        raise DpbenchError(f"protocol {protocol.name}: {str(exc).strip(chr(39) + chr(34))}") from None
    return protocol


def derived_protocol(pool_name: str) -> LotoProtocol:
    """``POOL-all``: one left-out set per linked group of the pool's tasks, in the pool's task order."""
    try:
        pool = get_pool(pool_name)
    except RegistryError as exc:
        raise DpbenchError(str(exc).strip("'\"")) from None
    sets: list[tuple[str, ...]] = []
    for name in pool.tasks:
        group = tuple(t for t in linked_closure(get_task(name)) if t in pool.tasks)
        if group not in sets:
            sets.append(group)
    return LotoProtocol(name=f"{pool.name}-all", pool=pool.name, sets=tuple(sets),
                        description=f"Every task of pool {pool.name} left out once, linked tasks together.")


@cache
def named_protocols() -> dict[str, LotoProtocol]:
    """The protocols defined in ``loto_protocols.json``, checked against the registry."""
    text = resources.files("dpbench_baselines").joinpath(PROTOCOLS_FILE).read_text()
    try:
        raw = json.loads(text)["protocols"]
        found = [LotoProtocol.model_validate({**p, "sets": tuple(tuple(sorted(s)) for s in p["sets"])})
                 for p in raw]
    except (KeyError, TypeError, ValidationError) as exc:
        raise DpbenchError(f"{PROTOCOLS_FILE} is malformed: {exc}") from None
    return {p.name: _check(p) for p in found}


def all_protocols() -> dict[str, LotoProtocol]:
    """Named protocols, then ``POOL-all`` for every pool."""
    return {**named_protocols(), **{f"{p}-all": derived_protocol(p) for p in pools()}}


def get_protocol(name: str) -> LotoProtocol:
    """The protocol called ``name`` or one error line listing them."""
    known = all_protocols()
    if name not in known:
        raise DpbenchError(f"unknown LOTO protocol {name!r}; choose one of {', '.join(known)}")
    return known[name]
