"""The service behind the HTTP routes: boards it accepts, the submission pipeline, and the board lookups."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError

from dpbench_leaderboard.boards import BoardSpec, ServedPool, ensure_boards
from dpbench_leaderboard.checks import Rejection, check_submission
from dpbench_leaderboard.config import Settings
from dpbench_leaderboard.db import Database
from dpbench_leaderboard.queries import find_board
from dpbench_leaderboard.render import Pages
from dpbench_leaderboard.schemas import SLUG_RE, SubmissionIn
from dpbench_leaderboard.standings import Filters
from dpbench_leaderboard.store import Attempt, Outcome, find_replay, record
from dpbench_leaderboard.tokens import Identity
from dpbench_leaderboard.views import Views

KEY_RE = re.compile(r"[\x21-\x7e]{1,200}")  # visible ASCII
ID_RE = re.compile(r"[0-9a-f]{16}")


def one_line(exc: ValidationError) -> str:
    """The first validation problem as one line: where, and what is wrong."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "body"
    extra = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{where}: {first['msg'].removeprefix('Value error, ')}{extra}"[:500]


@dataclass
class Service:
    """One running leaderboard: the database, the verified pool it scores with (None: read-only) and its caches."""

    db: Database
    served: ServedPool | None
    settings: Settings
    views: Views = field(init=False)
    pages: Pages = field(init=False)
    board_ids: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        s = self.settings
        self.views = Views(self.db, s.bootstrap, s.bootstrap_seed, s.cd_top)
        self.pages = Pages()
        self.board_ids = ensure_boards(self.db, list(self.served.boards.values())) if self.served else {}

    @property
    def accepting(self) -> set[str]:
        return set(self.board_ids)

    def board(self, slug: str) -> tuple[int, BoardSpec]:
        """The stored board ``slug`` (Rejection 404 when unknown)."""
        found = find_board(self.db, slug) if re.fullmatch(SLUG_RE, slug) else None
        if found is None:
            raise Rejection(404, "unknown_board", f"no board {slug[:80]!r}; see /api/v1/boards")
        return found

    def submit(self, identity: Identity, key: str | None, body: bytes) -> Outcome:
        """The whole submission pipeline after authentication: replay, parse, check, re-score, store."""
        if key is None or not KEY_RE.fullmatch(key):
            raise Rejection(400, "idempotency_key", "send an Idempotency-Key header (1-200 visible ASCII characters, "
                            "e.g. a UUID) so that a retried request is not stored twice")
        request_sha = hashlib.sha256(body).hexdigest()
        ttl = self.settings.idempotency_ttl_s
        replay = find_replay(self.db, identity.owner, key, request_sha, ttl)
        if replay is not None:
            return replay
        try:
            submission = SubmissionIn.model_validate_json(body)
        except ValidationError as exc:
            raise Rejection(422, "invalid", one_line(exc)) from None
        spec = self.served.boards.get(submission.board) if self.served else None
        if spec is None:
            _, stored = self.board(submission.board)
            current = ", ".join(sorted(self.accepting)) or "none"
            raise Rejection(409, "frozen_board", f"board {stored.slug} is frozen (benchmark version {stored.pool} "
                            f"{stored.pool_version}); it takes no submissions. Open boards: {current}")
        attempt = Attempt(identity, self.board_ids[spec.slug], spec, submission.card,
                          submission.results.model_dump_json().encode(), key, request_sha)
        assert self.served is not None
        checked = check_submission(self.served, spec, submission.card, submission.results)
        try:
            outcome = record(self.db, attempt, checked, ttl)
        except IntegrityError:  # a race the write lock should prevent; the unique constraints decided it
            outcome = record(self.db, attempt, checked, ttl)
        if outcome.status == 201:
            self.views.touch(attempt.board_id, spec)
        return outcome

    def close(self) -> None:
        """Stop background work and close the database's connections."""
        self.views.close()
        self.db.dispose()

    def filters(self, spec: BoardSpec, task: list[str], organ: str, role: str, sort: str) -> Filters:
        """Query parameters as filters, checked against the board."""
        filters = Filters(tuple(dict.fromkeys(task)), organ, role, sort or "rank")
        filters.selected(spec)
        return filters

    def rank_of(self, board_id: int, spec: BoardSpec, public_id: str) -> dict[str, Any] | None:
        """Where a submission stands on its board's full standings (None when it is not a current entry)."""
        view = self.views.view(board_id, spec, Filters())
        for row in view.rows:
            if row.entry.id == public_id:
                return {"rank": row.position, "of": len(view.rows), "tied": row.tied, "avg_rank": row.avg_rank,
                        "rank_low": row.rank_low, "rank_high": row.rank_high, "p_first": row.p_first,
                        "top_group": row.top_group}
        for row in view.partial:
            if row.entry.id == public_id:
                return {"rank": None, "of": len(view.rows), "coverage": row.coverage,
                        "why": "not ranked: the entry lacks some of the board's tasks"}
        return None
