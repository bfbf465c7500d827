"""Computed standings kept while the board is unchanged, and the critical-difference diagram of a view.

A view is keyed by (board, newest submission id, filters): a new submission changes the key, so a stale view is
never served; computing is serialised so a burst of page views after a submission computes it once.
"""

from __future__ import annotations

import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from dpbench.ranking import average_rank, cd_groups, make_table, nemenyi_cd, per_task_ranks
from dpbench_leaderboard.boards import BoardSpec
from dpbench_leaderboard.db import Database
from dpbench_leaderboard.queries import current_entries, head
from dpbench_leaderboard.standings import ALPHA, Filters, View, compute

PLOT_LOCK = threading.Lock()  # pyplot keeps global state: one figure at a time


def _label(name: str) -> str:
    return name.replace("$", r"\$")  # matplotlib would read $...$ as mathtext


def cd_png(view: View, top: int = 20) -> bytes | None:
    """The critical-difference diagram of ``view`` as PNG bytes (its best ``top`` entries, re-ranked among
    themselves when there are more), or None when the view has no significance test."""
    if view.nemenyi is None or len(view.rows) < 2:
        return None
    best = sorted(view.rows, key=lambda r: (r.position or 0, r.entry.model_name))[:top]
    names = {r.entry.id: _label(r.entry.model_name) for r in best}
    title = f"Nemenyi CD (α={ALPHA}, {len(view.tasks)} tasks)"
    if len(view.rows) > top:
        tasks = [t.name for t in view.tasks]
        frame = pd.DataFrame([{"method": names[r.entry.id], "task": t, "seed": s, "score": v, "metric": m}
                              for r in best for t, s, m, v, _ in r.entry.scores if t in tasks])
        avg = average_rank(per_task_ranks(make_table(frame)))
        cd = nemenyi_cd(len(best), len(tasks), ALPHA)
        groups = cd_groups(avg, cd)
        title += f", best {top} of {len(view.rows)} re-ranked among themselves"
    else:
        avg = pd.Series({names[k]: v for k, v in view.avg_common.items()})
        cd = float(view.nemenyi["cd"])
        groups = [[names[m] for m in g] for g in view.nemenyi["groups"]]
    from dpbench.ranking.plot import cd_diagram

    with PLOT_LOCK, tempfile.TemporaryDirectory(prefix="dpbench-cd-") as folder:
        path = Path(folder) / "cd.png"
        cd_diagram(avg, cd, groups, path, title)
        return path.read_bytes()


class Views:
    """A bounded cache of computed views and diagrams for one database."""

    def __init__(self, db: Database, n_boot: int, seed: int = 0, cd_top: int = 20, size: int = 256) -> None:
        self.db, self.n_boot, self.seed, self.cd_top, self.size = db, n_boot, seed, cd_top, size
        self._cache: OrderedDict[tuple[object, ...], object] = OrderedDict()
        self._lock = threading.Lock()
        self._compute = threading.Lock()
        self._dirty: dict[int, BoardSpec] = {}
        self._wake = threading.Event()
        self._closed = False
        self._warmer: threading.Thread | None = None

    def touch(self, board_id: int, spec: BoardSpec, quiet: float = 0.5) -> None:
        """A board changed: recompute its full standings in the background once no write came for ``quiet``
        seconds, so that the next page view finds them ready."""
        with self._lock:
            self._dirty[board_id] = spec
            if self._warmer is None and not self._closed:
                self._warmer = threading.Thread(target=self._warm, args=(quiet,), name="dpbench-board-warmer",
                                                daemon=True)
                self._warmer.start()
        self._wake.set()

    def _warm(self, quiet: float) -> None:
        while not self._closed:
            if not self._wake.wait(timeout=1.0):
                continue
            self._wake.clear()
            if self._wake.wait(timeout=quiet):  # another write came: wait for a quiet moment
                continue
            with self._lock:
                dirty, self._dirty = self._dirty, {}
            for board_id, spec in dirty.items():
                if self._closed:
                    return
                try:
                    self.view(board_id, spec, Filters())
                except Exception:  # a page view computes it again and reports any error
                    continue

    def close(self) -> None:
        """Stop the background warmer (bounded wait)."""
        self._closed = True
        self._wake.set()
        if self._warmer is not None:
            self._warmer.join(timeout=10)

    def _get(self, key: tuple[object, ...]) -> object | None:
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        return None

    def _put(self, key: tuple[object, ...], value: object) -> None:
        with self._lock:
            self._cache[key] = value
            while len(self._cache) > self.size:
                self._cache.popitem(last=False)

    def view(self, board_id: int, spec: BoardSpec, filters: Filters) -> View:
        """The standings of a board under ``filters``, computed at most once per board state."""
        filters.selected(spec)  # refuse bad filters before any work
        newest = head(self.db, board_id)
        key = ("view", board_id, newest, filters)
        found = self._get(key)
        if isinstance(found, View):
            return found
        with self._compute:
            found = self._get(key)
            if isinstance(found, View):
                return found
            entries = current_entries(self.db, board_id)
            view = compute(spec, newest, entries, filters, self.n_boot, self.seed)
            self._put(key, view)
            return view

    def rendered(self, kind: str, view: View, make: Callable[[], bytes], *extra: object) -> bytes:
        """``make()`` (a page, JSON or CSV of ``view``), computed once per board state and ``kind``."""
        key = (kind, view.spec.slug, view.head, view.filters, *extra)
        found = self._get(key)
        if isinstance(found, bytes):
            return found
        data = make()
        self._put(key, data)
        return data

    def diagram(self, board_id: int, spec: BoardSpec, filters: Filters) -> bytes | None:
        """The view's critical-difference diagram (PNG), cached like the view."""
        view = self.view(board_id, spec, filters)
        key = ("png", board_id, view.head, filters)
        found = self._get(key)
        if isinstance(found, bytes):
            return found
        image = cd_png(view, self.cd_top)
        if image is not None:
            self._put(key, image)
        return image
