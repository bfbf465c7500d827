"""The store's tables (SQLAlchemy 2). Submissions and their scores are append-only: a correction is a new row
of the same model that supersedes the old one, never an UPDATE (the migration adds triggers refusing both)."""

from __future__ import annotations

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    """Declarative base of the leaderboard's tables."""


class Board(Base):
    """One benchmark version: pool, pool version, protocol and the split hashes of its tasks."""

    __tablename__ = "boards"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(200), unique=True)
    pool: Mapped[str] = mapped_column(String(100))
    pool_version: Mapped[str] = mapped_column(String(100))
    protocol: Mapped[str] = mapped_column(String(40))
    splits_sha256: Mapped[str] = mapped_column(String(64))
    synthetic: Mapped[bool] = mapped_column(Boolean)
    tasks_json: Mapped[str] = mapped_column(Text)  # [{name, metric, classes, organ, role, split_sha256, test_size}]
    created_at: Mapped[float] = mapped_column(Float)


class Token(Base):
    """An API token: only its sha256 is kept; ``prefix`` is its public, non-secret id."""

    __tablename__ = "tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    secret_sha256: Mapped[str] = mapped_column(String(64))
    owner: Mapped[str] = mapped_column(String(100), index=True)
    scopes: Mapped[str] = mapped_column(String(100))  # space-separated
    quota: Mapped[int] = mapped_column(Integer)  # accepted submissions of the owner per period
    quota_period_s: Mapped[int] = mapped_column(Integer)
    note: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    revoked_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class Submission(Base):
    """One accepted submission (append-only). The current entry of a model is its latest row on the board."""

    __tablename__ = "submissions"
    __table_args__ = (
        UniqueConstraint("board_id", "payload_sha256", name="uq_submission_payload"),
        Index("ix_submission_model", "board_id", "model_name", "id"),
        Index("ix_submission_owner_time", "owner", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    board_id: Mapped[int] = mapped_column(ForeignKey("boards.id"))
    owner: Mapped[str] = mapped_column(String(100))
    token_prefix: Mapped[str] = mapped_column(String(16))
    model_name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20))  # verified | self-reported
    payload_sha256: Mapped[str] = mapped_column(String(64))
    card_json: Mapped[str] = mapped_column(Text)
    provenance_json: Mapped[str] = mapped_column(Text)
    report_json: Mapped[str] = mapped_column(Text)  # discrepancies and warnings found while checking
    results_gz: Mapped[bytes] = mapped_column(LargeBinary)  # the submitted results.json, gzip-compressed
    created_at: Mapped[float] = mapped_column(Float)


class Score(Base):
    """The board's number for one (submission, task, seed): re-scored when verified, else as reported."""

    __tablename__ = "scores"
    __table_args__ = (UniqueConstraint("submission_id", "task", "seed", name="uq_score_cell"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id"), index=True)
    task: Mapped[str] = mapped_column(String(100))
    seed: Mapped[int] = mapped_column(Integer)
    metric: Mapped[str] = mapped_column(String(40))
    score: Mapped[float] = mapped_column(Float)
    reported: Mapped[float] = mapped_column(Float)


class IdempotencyRecord(Base):
    """The stored answer to a POST with an ``Idempotency-Key``: a retry with the same body gets it back."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("owner", "key", name="uq_idempotency_owner_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner: Mapped[str] = mapped_column(String(100))
    key: Mapped[str] = mapped_column(String(200))
    request_sha256: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response_json: Mapped[str] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Float)
