"""A board's standings, computed by the project's scorer (:mod:`dpbench.ranking`): average rank (Eq. 2) with its
bootstrap interval, Borda points, the per-task table (mean ± std over seeds, per-task rank), Friedman and the
Nemenyi critical-difference groups. Entries lacking a selected task are listed apart with their coverage, not
ranked (the official board ranks complete results only); filtering tasks recomputes everything, intervals too."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from dpbench.errors import DpbenchError
from dpbench.ranking import (
    bootstrap_ranks,
    borda,
    cd_groups,
    final_order,
    friedman,
    make_table,
    nemenyi_cd,
    per_task_ranks,
)
from dpbench.ranking.table import METRICS
from dpbench_leaderboard.boards import BoardSpec, BoardTask
from dpbench_leaderboard.queries import Entry

ALPHA = 0.05
SORTS = ("rank", "name", "date")


@dataclass(frozen=True)
class Filters:
    """Which tasks the standings cover and how the rows are ordered (``task:NAME`` sorts by that task's mean)."""

    tasks: tuple[str, ...] = ()
    organ: str = ""
    role: str = ""
    sort: str = "rank"

    def selected(self, spec: BoardSpec) -> list[BoardTask]:
        """The board's tasks these filters keep; unknown task names or sort keys raise DpbenchError."""
        unknown = [t for t in self.tasks if spec.task(t) is None]
        if unknown:
            raise DpbenchError(f"unknown task {unknown[0]!r} on board {spec.slug}")
        sort_task = self.sort.removeprefix("task:") if self.sort.startswith("task:") else None
        if self.sort not in SORTS and (sort_task is None or spec.task(sort_task) is None):
            raise DpbenchError(f"unknown sort {self.sort[:60]!r}: use rank, name, date or task:TASK")
        return [t for t in spec.tasks if (not self.tasks or t.name in self.tasks)
                and (not self.organ or t.organ == self.organ) and (not self.role or t.role == self.role)]


@dataclass(frozen=True)
class Cell:
    """One entry on one task: mean ± std over its n seeds, and its rank among the ranked entries."""

    mean: float
    std: float
    n: int
    rank: float | None = None


@dataclass(eq=False)
class Row:
    """One entry of the standings."""

    entry: Entry
    cells: dict[str, Cell]
    coverage: float
    position: int | None = None
    tied: bool = False
    avg_rank: float | None = None
    borda: float | None = None
    rank_low: int | None = None
    rank_high: int | None = None
    p_first: float | None = None
    top_group: bool = False


@dataclass
class View:
    """The standings of one board under some filters."""

    spec: BoardSpec
    head: int
    filters: Filters
    tasks: list[BoardTask]
    rows: list[Row]
    partial: list[Row]
    bootstrap: int
    friedman: dict[str, float] | None = None
    nemenyi: dict[str, Any] | None = None
    avg_common: dict[str, float] = field(default_factory=dict)  # entry id → average rank over the common tasks
    notes: list[str] = field(default_factory=list)


def _cells(entry: Entry, tasks: list[str]) -> dict[str, Cell]:
    values: dict[str, list[float]] = {}
    for task, _seed, _metric, score, _reported in entry.scores:
        if task in tasks:
            values.setdefault(task, []).append(score)
    out = {}
    for task, xs in values.items():
        mean = float(np.mean(xs))
        std = float(np.std(xs, ddof=1)) if len(xs) > 1 else 0.0
        out[task] = Cell(mean, std, len(xs))
    return out


def compute(spec: BoardSpec, head: int, entries: list[Entry], filters: Filters, n_boot: int, seed: int = 0) -> View:
    """The standings of ``entries`` on the tasks ``filters`` select."""
    tasks = filters.selected(spec)
    names = [t.name for t in tasks]
    rows = [Row(e, _cells(e, names), 0.0) for e in entries]
    for row in rows:
        row.coverage = len(row.cells) / len(names) if names else 0.0
    ranked = [r for r in rows if names and len(r.cells) == len(names)]
    partial = [r for r in rows if not (names and len(r.cells) == len(names))]
    view = View(spec, head, filters, tasks, ranked, partial, n_boot)
    if not names:
        view.notes.append("no task matches these filters")
    elif len(ranked) == 1:
        ranked[0].position, ranked[0].avg_rank, ranked[0].borda = 1, 1.0, 0.0
        ranked[0].cells = {t: Cell(c.mean, c.std, c.n, 1.0) for t, c in ranked[0].cells.items()}
    elif len(ranked) >= 2:
        _rank(view, n_boot, seed)
    _order(view)
    return view


def _rank(view: View, n_boot: int, seed: int) -> None:
    names = [t.name for t in view.tasks]
    frame = pd.DataFrame([{"method": r.entry.id, "task": task, "seed": s, "score": score, "metric": metric}
                          for r in view.rows for task, s, metric, score, _ in r.entry.scores if task in names])
    try:
        table = make_table(frame)
    except DpbenchError as exc:  # rows written before a check existed: show them unranked, say why
        view.notes.append(f"not ranked: {exc}")
        return
    ranks = per_task_ranks(table)
    avg, position = final_order(ranks, "avg-rank", "error")
    points = borda(ranks)
    boot = bootstrap_ranks(table, n_boot, seed) if n_boot else None
    counts = position.value_counts()
    for row in view.rows:
        key = row.entry.id
        row.position, row.avg_rank, row.borda = int(position[key]), float(avg[key]), float(points[key])
        row.tied = bool(counts[position[key]] > 1)
        row.cells = {t: Cell(c.mean, c.std, c.n, float(ranks.at[t, key])) for t, c in row.cells.items()}
        if boot is not None:
            row.rank_low, row.rank_high = int(boot.rank_low[key]), int(boot.rank_high[key])
            row.p_first, row.top_group = float(boot.p_first[key]), key in boot.top_group
    view.avg_common = {str(k): float(v) for k, v in avg.items()}
    if len(names) >= 2:
        fr = friedman(ranks)
        cd = nemenyi_cd(fr.k, fr.n_tasks, ALPHA)
        view.friedman = {"chi2": fr.chi2, "p_chi2": fr.p_chi2, "iman_davenport": fr.iman_davenport,
                         "p_iman_davenport": fr.p_iman_davenport, "k": fr.k, "n_tasks": fr.n_tasks}
        view.nemenyi = {"alpha": ALPHA, "cd": cd, "groups": cd_groups(avg, cd)}
    else:
        view.notes.append("one task selected: no significance test or critical-difference diagram")


def _order(view: View) -> None:
    sort = view.filters.sort
    if sort == "name":
        key: Any = lambda r: (r.entry.model_name.lower(), r.entry.seq)  # noqa: E731
    elif sort == "date":
        key = lambda r: (-r.entry.seq,)  # noqa: E731
    elif sort.startswith("task:"):
        task = sort.removeprefix("task:")
        metric = next(t.metric for t in view.spec.tasks if t.name == task)
        sign = -1.0 if METRICS[metric].higher_is_better else 1.0
        key = lambda r: (sign * r.cells[task].mean if task in r.cells else math.inf, r.entry.seq)  # noqa: E731
    else:
        key = lambda r: (r.position if r.position is not None else math.inf, r.entry.model_name.lower())  # noqa: E731
    view.rows.sort(key=key)
    view.partial.sort(key=lambda r: (-r.coverage, r.entry.model_name.lower()))


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else round(value, 6)


def row_json(row: Row) -> dict[str, Any]:
    """One row as the JSON API and the static export give it."""
    entry, prov = row.entry, row.entry.provenance
    return {
        "rank": row.position, "tied": row.tied, "id": entry.id, "model_name": entry.model_name, "owner": entry.owner,
        "status": entry.status, "loto": entry.loto, "avg_rank": _finite(row.avg_rank), "borda": _finite(row.borda),
        "rank_low": row.rank_low, "rank_high": row.rank_high, "p_first": _finite(row.p_first),
        "top_group": row.top_group, "coverage": round(row.coverage, 6), "created_at": entry.created_at,
        "weights_sha256": prov.get("weights_sha256"), "encoder": prov.get("encoder"),
        "code_url": entry.card.get("code_url"), "pretraining_data": entry.card.get("pretraining_data") or None,
        "unseen_tasks": entry.card.get("unseen_tasks"),
        "tasks": {t: {"mean": _finite(c.mean), "std": _finite(c.std), "n": c.n, "rank": _finite(c.rank)}
                  for t, c in row.cells.items()},
    }


def view_json(view: View) -> dict[str, Any]:
    """The standings as JSON: board, settings, ranked rows, partial rows and the significance tests."""
    spec = view.spec
    return {
        "board": {"slug": spec.slug, "pool": spec.pool, "pool_version": spec.pool_version,
                  "protocol": spec.protocol, "splits_sha256": spec.splits_sha256, "synthetic": spec.synthetic},
        "filters": {"tasks": list(view.filters.tasks), "organ": view.filters.organ, "role": view.filters.role,
                    "sort": view.filters.sort},
        "settings": {"aggregate": "average rank over the selected tasks (lower is better)", "missing": "entries "
                     "lacking a selected task are not ranked (see partial)", "bootstrap": view.bootstrap,
                     "level": 0.95, "alpha": ALPHA},
        "tasks": [{"name": t.name, "metric": t.metric, "organ": t.organ, "role": t.role, "test_size": t.test_size,
                   "split_sha256": t.split_sha256} for t in view.tasks],
        "rows": [row_json(r) for r in view.rows], "partial": [row_json(r) for r in view.partial],
        "friedman": {k: _finite(float(v)) for k, v in view.friedman.items()} if view.friedman else None,
        "nemenyi": view.nemenyi and {**view.nemenyi, "cd": _finite(view.nemenyi["cd"]), "groups": [
            [next(r.entry.model_name for r in view.rows if r.entry.id == m) for m in g]
            for g in view.nemenyi["groups"]]},
        "notes": view.notes, "head": view.head,
    }


def _csv_cell(value: object) -> object:
    """Neutralise spreadsheet formulas: a text cell starting with = + - @ gets a leading quote."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def view_csv(view: View) -> str:
    """One line per entry (ranked first, then partial): rank, interval, Borda and mean/std per task."""
    records = []
    for row in [*view.rows, *view.partial]:
        data = row_json(row)
        record: dict[str, object] = {k: data[k] for k in ("rank", "tied", "model_name", "id", "status", "avg_rank",
                                                           "borda", "rank_low", "rank_high", "p_first", "top_group",
                                                           "coverage", "weights_sha256")}
        for task in view.tasks:
            cell = data["tasks"].get(task.name, {})
            record[f"{task.name}_mean"], record[f"{task.name}_std"] = cell.get("mean"), cell.get("std")
        records.append({k: _csv_cell(v) for k, v in record.items()})
    columns = ["rank", "tied", "model_name", "id", "status", "avg_rank", "borda", "rank_low", "rank_high", "p_first",
               "top_group", "coverage", "weights_sha256"]
    columns += [f"{t.name}_{s}" for t in view.tasks for s in ("mean", "std")]
    return str(pd.DataFrame(records, columns=columns).to_csv(index=False))
