"""The first schema: boards, tokens, append-only submissions and scores, idempotency keys.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

APPEND_ONLY = ("submissions", "scores")


def upgrade() -> None:
    op.create_table(
        "boards",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("slug", sa.String(200), nullable=False, unique=True),
        sa.Column("pool", sa.String(100), nullable=False),
        sa.Column("pool_version", sa.String(100), nullable=False),
        sa.Column("protocol", sa.String(40), nullable=False),
        sa.Column("splits_sha256", sa.String(64), nullable=False),
        sa.Column("synthetic", sa.Boolean, nullable=False),
        sa.Column("tasks_json", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "tokens",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("prefix", sa.String(16), nullable=False, unique=True),
        sa.Column("secret_sha256", sa.String(64), nullable=False),
        sa.Column("owner", sa.String(100), nullable=False, index=True),
        sa.Column("scopes", sa.String(100), nullable=False),
        sa.Column("quota", sa.Integer, nullable=False),
        sa.Column("quota_period_s", sa.Integer, nullable=False),
        sa.Column("note", sa.String(200), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=True),
        sa.Column("revoked_at", sa.Float, nullable=True),
    )
    op.create_table(
        "submissions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("public_id", sa.String(32), nullable=False, unique=True),
        sa.Column("board_id", sa.Integer, sa.ForeignKey("boards.id"), nullable=False),
        sa.Column("owner", sa.String(100), nullable=False),
        sa.Column("token_prefix", sa.String(16), nullable=False),
        sa.Column("model_name", sa.String(200), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("payload_sha256", sa.String(64), nullable=False),
        sa.Column("card_json", sa.Text, nullable=False),
        sa.Column("provenance_json", sa.Text, nullable=False),
        sa.Column("report_json", sa.Text, nullable=False),
        sa.Column("results_gz", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.UniqueConstraint("board_id", "payload_sha256", name="uq_submission_payload"),
    )
    op.create_index("ix_submission_model", "submissions", ["board_id", "model_name", "id"])
    op.create_index("ix_submission_owner_time", "submissions", ["owner", "created_at"])
    op.create_table(
        "scores",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("submission_id", sa.Integer, sa.ForeignKey("submissions.id"), nullable=False, index=True),
        sa.Column("task", sa.String(100), nullable=False),
        sa.Column("seed", sa.Integer, nullable=False),
        sa.Column("metric", sa.String(40), nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("reported", sa.Float, nullable=False),
        sa.UniqueConstraint("submission_id", "task", "seed", name="uq_score_cell"),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("owner", sa.String(100), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("request_sha256", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer, nullable=False),
        sa.Column("response_json", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.UniqueConstraint("owner", "key", name="uq_idempotency_owner_key"),
    )
    _append_only_triggers()


def _append_only_triggers() -> None:
    """Refuse UPDATE and DELETE on the history tables in the database itself, not only in the code."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE FUNCTION dpbench_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                   "RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $$")
        for table in APPEND_ONLY:
            op.execute(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                       "FOR EACH ROW EXECUTE FUNCTION dpbench_append_only()")
        return
    for table in APPEND_ONLY:
        for action in ("UPDATE", "DELETE"):
            op.execute(f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
                       f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END")


def downgrade() -> None:
    for table in ("idempotency_keys", "scores", "submissions", "tokens", "boards"):
        op.drop_table(table)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS dpbench_append_only()")
