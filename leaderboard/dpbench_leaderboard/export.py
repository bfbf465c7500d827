"""``dpbench leaderboard export DIR``: the same boards as a static site (HTML, JSON, CSV, CD diagrams).

Layout: ``index.html``, ``static/``, and per board ``boards/SLUG/{index.html,board.json,board.csv,cd.png}`` plus
``boards/SLUG/submissions/ID.html`` for every submission. File names come from board slugs and submission ids
(both validated, never from a model name), so nothing can be written outside DIR.
"""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path

from sqlalchemy import select

from dpbench.io import atomic_write_bytes
from dpbench_leaderboard.config import Settings
from dpbench_leaderboard.db import Database
from dpbench_leaderboard.models import Submission
from dpbench_leaderboard.queries import list_boards, submission
from dpbench_leaderboard.render import ASSETS, Links, Pages
from dpbench_leaderboard.standings import Filters, view_csv, view_json
from dpbench_leaderboard.views import Views


def _write(out: Path, relative: str, data: bytes, written: list[Path]) -> None:
    path = (out / relative).resolve()
    if not path.is_relative_to(out.resolve()):  # a second guard: slugs and ids are validated already
        raise ValueError(f"refusing to write {relative!r} outside {out}")
    atomic_write_bytes(path, data)
    written.append(path)


def export_site(db: Database, out: Path, settings: Settings, accepting: set[str] | None = None) -> list[Path]:
    """Write every stored board under ``out``; returns the files written. ``accepting``: the boards open for
    submissions (None: unknown, as when exporting from the database alone)."""
    views = Views(db, settings.bootstrap, settings.bootstrap_seed, settings.cd_top)
    pages = Pages()
    written: list[Path] = []
    out.mkdir(parents=True, exist_ok=True)
    for asset in ASSETS:
        _write(out, f"static/{asset}", (files("dpbench_leaderboard") / "static" / asset).read_bytes(), written)
    boards = list_boards(db)
    rows = [{"slug": s.slug, "pool": s.pool, "pool_version": s.pool_version, "protocol": s.protocol,
             "synthetic": s.synthetic, "tasks": len(s.tasks), "entries": e, "submissions": n} for _, s, e, n in boards]
    home = Links(static=True)
    _write(out, "index.html", pages.index(home, rows, accepting).encode(), written)
    for board_id, spec, _entries, _count in boards:
        base = f"boards/{spec.slug}"
        view = views.view(board_id, spec, Filters())
        image = views.diagram(board_id, spec, Filters())
        if image is not None:
            _write(out, f"{base}/cd.png", image, written)
        organs, roles = sorted({t.organ for t in spec.tasks}), sorted({t.role for t in spec.tasks})
        others = sorted((s.slug, s.protocol) for _, s, _, _ in boards
                        if (s.pool, s.pool_version) == (spec.pool, spec.pool_version) and s.slug != spec.slug)
        html = pages.board(home.at(2), view, organs, roles, image is not None, live=False, siblings=others)
        _write(out, f"{base}/index.html", html.encode(), written)
        _write(out, f"{base}/board.json", (json.dumps(view_json(view), indent=1) + "\n").encode(), written)
        _write(out, f"{base}/board.csv", view_csv(view).encode(), written)
        with db.read() as session:
            ids = list(session.scalars(select(Submission.public_id).where(Submission.board_id == board_id)
                                       .order_by(Submission.id)))
        for public_id in ids:
            detail = submission(db, public_id)
            if detail is not None:
                page = pages.submission(home.at(3), detail)
                _write(out, f"{base}/submissions/{public_id}.html", page.encode(), written)
    return written
