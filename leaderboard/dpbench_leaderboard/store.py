"""Writing a checked submission: idempotency, duplicates, name ownership and quota, decided in one serialised
write transaction, then append-only rows (a new submission of a model supersedes its previous one)."""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import secrets
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select

from dpbench_leaderboard.boards import BoardSpec
from dpbench_leaderboard.checks import Checked, Rejection
from dpbench_leaderboard.db import Database
from dpbench_leaderboard.models import IdempotencyRecord, Score, Submission
from dpbench_leaderboard.schemas import ModelCard
from dpbench_leaderboard.tokens import Identity


@dataclass(frozen=True)
class Outcome:
    """The answer to a submission: HTTP status and JSON body; ``replayed`` when it is a stored answer."""

    status: int
    body: dict[str, Any]
    replayed: bool = False


@dataclass(frozen=True)
class Attempt:
    """One submission request as the store sees it."""

    identity: Identity
    board_id: int
    spec: BoardSpec
    card: ModelCard
    results_json: bytes  # canonical JSON of the submitted results file
    idempotency_key: str
    request_sha256: str  # of the request body, for idempotency

    @property
    def payload_sha256(self) -> str:
        """What makes two submissions the same: board, card and results (not the key or the token)."""
        card = json.dumps(self.card.model_dump(mode="json"), sort_keys=True).encode()
        return hashlib.sha256(self.spec.slug.encode() + b"\0" + card + b"\0" + self.results_json).hexdigest()


def summaries(cells: list[tuple[str, int, str, float]]) -> list[dict[str, Any]]:
    """Per task (in order of appearance): metric, mean, sample std (0 for one seed) and seed count."""
    grouped: dict[str, list[tuple[str, float]]] = {}
    for task, _seed, metric, value in cells:
        grouped.setdefault(task, []).append((metric, value))
    out = []
    for task, values in grouped.items():
        xs = [v for _, v in values]
        mean = sum(xs) / len(xs)
        std = math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0
        out.append({"task": task, "metric": values[0][0], "mean": mean, "std": std, "n": len(xs)})
    return out


def submission_body(row: Submission, slug: str, scores: list[Score], supersedes: str | None,
                    duplicate: bool = False) -> dict[str, Any]:
    """The JSON the API returns for an accepted (or duplicate) submission."""
    report = json.loads(row.report_json)
    cells = [(s.task, s.seed, s.metric, s.score) for s in scores]
    return {
        "id": row.public_id, "board": slug, "model_name": row.model_name, "status": row.status,
        "duplicate": duplicate, "supersedes": supersedes, "created_at": row.created_at,
        "scores": [{"task": s.task, "seed": s.seed, "metric": s.metric, "score": s.score, "reported": s.reported}
                   for s in scores],
        "tasks": summaries(cells), "discrepancies": report["discrepancies"], "warnings": report["warnings"],
        "links": {"html": f"/boards/{slug}/submissions/{row.public_id}",
                  "json": f"/api/v1/submissions/{row.public_id}", "board": f"/boards/{slug}"},
    }


def _replay(session: Any, attempt: Attempt, now: float, ttl: float) -> Outcome | None:
    owner = attempt.identity.owner
    stored = session.scalar(select(IdempotencyRecord).where(IdempotencyRecord.owner == owner,
                                                            IdempotencyRecord.key == attempt.idempotency_key))
    if stored is None:
        return None
    if stored.created_at <= now - ttl:
        session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.id == stored.id))
        session.flush()
        return None
    if stored.request_sha256 != attempt.request_sha256:
        raise Rejection(422, "idempotency_conflict", "this Idempotency-Key was used with another request body; "
                        "use a new key for a new submission")
    return Outcome(stored.status_code, json.loads(stored.response_json), replayed=True)


def find_replay(db: Database, owner: str, key: str, request_sha256: str, ttl: float,
                now: float | None = None) -> Outcome | None:
    """The stored answer when this request was already answered (read-only; before any parsing or re-scoring)."""
    with db.read() as session:
        stored = session.scalar(select(IdempotencyRecord).where(IdempotencyRecord.owner == owner,
                                                                IdempotencyRecord.key == key))
        now = time.time() if now is None else now
        if stored is None or stored.created_at <= now - ttl:
            return None
        if stored.request_sha256 != request_sha256:
            raise Rejection(422, "idempotency_conflict", "this Idempotency-Key was used with another request body; "
                            "use a new key for a new submission")
        return Outcome(stored.status_code, json.loads(stored.response_json), replayed=True)


def _quota(session: Any, identity: Identity, now: float) -> None:
    window_start = now - identity.quota_period_s
    used, oldest = session.execute(select(func.count(Submission.id), func.min(Submission.created_at)).where(
        Submission.owner == identity.owner, Submission.created_at > window_start)).one()
    if used >= identity.quota:
        wait = max(1, math.ceil((oldest or now) + identity.quota_period_s - now))
        raise Rejection(429, "quota", f"quota reached: {identity.owner} may submit {identity.quota} time(s) per "
                        f"{identity.quota_period_s / 3600:g} h; retry in {wait} s", retry_after=wait)


def record(db: Database, attempt: Attempt, checked: Checked, ttl: float, now: float | None = None) -> Outcome:
    """Store an accepted submission exactly once and return the answer (201 new, 200 duplicate or replay)."""
    identity, spec = attempt.identity, attempt.spec
    payload = attempt.payload_sha256
    with db.write() as session:
        now = time.time() if now is None else now
        replay = _replay(session, attempt, now, ttl)
        if replay is not None:
            return replay
        _check_owner(session, attempt)
        same = session.scalar(select(Submission).where(Submission.board_id == attempt.board_id,
                                                       Submission.payload_sha256 == payload))
        if same is not None:
            scores = list(session.scalars(select(Score).where(Score.submission_id == same.id).order_by(Score.id)))
            outcome = Outcome(200, submission_body(same, spec.slug, scores, None, duplicate=True))
        else:
            outcome = _insert(session, attempt, checked, payload, now)
        session.add(IdempotencyRecord(owner=identity.owner, key=attempt.idempotency_key,
                                      request_sha256=attempt.request_sha256, status_code=outcome.status,
                                      response_json=json.dumps(outcome.body), created_at=now))
    return outcome


def _check_owner(session: Any, attempt: Attempt) -> None:
    name = attempt.card.model_name
    owner = session.scalar(select(Submission.owner).where(Submission.board_id == attempt.board_id,
                                                          Submission.model_name == name).limit(1))
    if owner is not None and owner != attempt.identity.owner:
        raise Rejection(409, "name_taken", f"model name {name!r} belongs to another submitter on this board; "
                        "choose another name")


def _insert(session: Any, attempt: Attempt, checked: Checked, payload: str, now: float) -> Outcome:
    identity, name = attempt.identity, attempt.card.model_name
    _quota(session, identity, now)
    previous = session.scalar(select(Submission.public_id).where(
        Submission.board_id == attempt.board_id, Submission.model_name == name).order_by(Submission.id.desc()).limit(1))
    results = json.loads(attempt.results_json)
    row = Submission(public_id=secrets.token_hex(8), board_id=attempt.board_id, owner=identity.owner,
                     token_prefix=identity.prefix, model_name=name, status=checked.status, payload_sha256=payload,
                     card_json=json.dumps(attempt.card.model_dump(mode="json"), sort_keys=True),
                     provenance_json=json.dumps(results["provenance"], sort_keys=True),
                     report_json=json.dumps({"discrepancies": checked.discrepancies, "warnings": checked.warnings,
                                             "supersedes": previous, "skipped": results.get("skipped", {})}),
                     results_gz=gzip.compress(attempt.results_json, mtime=0), created_at=now)
    session.add(row)
    session.flush()
    scores = [Score(submission_id=row.id, task=c.task, seed=c.seed, metric=c.metric, score=c.score,
                    reported=c.reported) for c in checked.cells]
    session.add_all(scores)
    session.flush()
    return Outcome(201, submission_body(row, attempt.spec.slug, scores, previous))
