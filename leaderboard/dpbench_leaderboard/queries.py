"""Reading the store: boards, each model's current entry (its latest submission), one submission and its history."""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select

from dpbench_leaderboard.boards import BoardSpec, spec_of
from dpbench_leaderboard.db import Database
from dpbench_leaderboard.models import Board, Score, Submission


@dataclass(frozen=True)
class Entry:
    """One submission with its board numbers: (task, seed, metric, score) per cell."""

    id: str
    seq: int
    model_name: str
    owner: str
    status: str
    created_at: float
    card: dict[str, Any]
    provenance: dict[str, Any]
    report: dict[str, Any]
    scores: list[tuple[str, int, str, float, float]] = field(default_factory=list)  # + the reported score

    @property
    def loto(self) -> bool:
        return bool(self.card.get("unseen_tasks"))


def _entry(row: Submission, scores: list[Score]) -> Entry:
    return Entry(row.public_id, row.id, row.model_name, row.owner, row.status, row.created_at,
                 json.loads(row.card_json), json.loads(row.provenance_json), json.loads(row.report_json),
                 [(s.task, s.seed, s.metric, s.score, s.reported) for s in scores])


def list_boards(db: Database) -> list[tuple[int, BoardSpec, int, int]]:
    """(id, spec, current entries, submissions) of every stored board, newest first."""
    with db.read() as session:
        rows = session.scalars(select(Board).order_by(Board.id.desc())).all()
        counts = {int(b): int(n) for b, n in session.execute(
            select(Submission.board_id, func.count(Submission.id)).group_by(Submission.board_id))}
        distinct = func.count(func.distinct(Submission.model_name))
        models = {int(b): int(n) for b, n in session.execute(
            select(Submission.board_id, distinct).group_by(Submission.board_id))}
        return [(r.id, spec_of(r), models.get(r.id, 0), counts.get(r.id, 0)) for r in rows]


def siblings(db: Database, spec: BoardSpec) -> list[tuple[str, str]]:
    """(slug, protocol) of the other boards of the same pool version: the board's "protocol" filter."""
    return sorted((s.slug, s.protocol) for _, s, _, _ in list_boards(db)
                  if (s.pool, s.pool_version) == (spec.pool, spec.pool_version) and s.slug != spec.slug)


def find_board(db: Database, slug: str) -> tuple[int, BoardSpec] | None:
    """The board stored under ``slug``."""
    with db.read() as session:
        row = session.scalar(select(Board).where(Board.slug == slug))
        return None if row is None else (row.id, spec_of(row))


def head(db: Database, board_id: int) -> int:
    """The newest submission id of a board (0 when empty): a board view is fresh while this is unchanged."""
    with db.read() as session:
        return session.scalar(select(func.max(Submission.id)).where(Submission.board_id == board_id)) or 0


def current_entries(db: Database, board_id: int) -> list[Entry]:
    """Each model's latest submission on a board, with its scores, oldest first."""
    latest = (select(func.max(Submission.id).label("id")).where(Submission.board_id == board_id)
              .group_by(Submission.model_name).subquery())
    with db.read() as session:
        rows = session.scalars(select(Submission).join(latest, Submission.id == latest.c.id)
                               .order_by(Submission.id)).all()
        scores: dict[int, list[Score]] = {}
        for score in session.scalars(select(Score).join(latest, Score.submission_id == latest.c.id)
                                     .order_by(Score.id)):
            scores.setdefault(score.submission_id, []).append(score)
        return [_entry(r, scores.get(r.id, [])) for r in rows]


@dataclass(frozen=True)
class Detail:
    """One submission, its board, and every submission of the same model on that board (oldest first)."""

    entry: Entry
    board: BoardSpec
    history: list[dict[str, Any]]

    @property
    def superseded_by(self) -> str | None:
        later = [h["id"] for h in self.history if h["seq"] > self.entry.seq]
        return later[-1] if later else None


def submission(db: Database, public_id: str) -> Detail | None:
    """The submission with this public id, or None."""
    with db.read() as session:
        row = session.scalar(select(Submission).where(Submission.public_id == public_id))
        if row is None:
            return None
        board = session.get(Board, row.board_id)
        assert board is not None
        scores = list(session.scalars(select(Score).where(Score.submission_id == row.id).order_by(Score.id)))
        history = [{"id": h.public_id, "seq": h.id, "status": h.status, "created_at": h.created_at}
                   for h in session.scalars(select(Submission).where(
                       Submission.board_id == row.board_id, Submission.model_name == row.model_name)
                       .order_by(Submission.id))]
        return Detail(_entry(row, scores), spec_of(board), history)


def raw_results(db: Database, public_id: str) -> tuple[str, bytes] | None:
    """(owner, the submitted results.json bytes) of a submission."""
    with db.read() as session:
        row = session.execute(select(Submission.owner, Submission.results_gz)
                              .where(Submission.public_id == public_id)).first()
        return None if row is None else (row[0], gzip.decompress(row[1]))
