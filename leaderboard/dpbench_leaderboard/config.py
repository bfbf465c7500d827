"""The service's settings: where the database is, and the limits every request is held to."""

from __future__ import annotations

import os
from dataclasses import dataclass

from dpbench.errors import DpbenchError

DATABASE_ENV = "DPBENCH_DATABASE_URL"
DEFAULT_DATABASE = "sqlite:///dpbench-leaderboard.sqlite"
MiB = 2**20


@dataclass(frozen=True)
class Settings:
    """Limits and defaults of one running service (tests shrink them)."""

    database_url: str = DEFAULT_DATABASE
    max_body_bytes: int = 64 * MiB  # a results file with predictions of a real pool is a few MiB
    bootstrap: int = 1000  # bootstrap redraws of the rank intervals
    bootstrap_seed: int = 0
    idempotency_ttl_s: int = 24 * 3600
    cd_top: int = 20  # the critical-difference diagram shows at most this many entries
    retry_after_s: int = 2  # what a 503 (database unavailable) tells the client to wait


def database_url(explicit: str | None = None) -> str:
    """The database to use: ``explicit``, else ``$DPBENCH_DATABASE_URL``, else a SQLite file in the working
    folder; PostgreSQL URLs are pointed at the psycopg 3 driver."""
    url = (explicit or os.environ.get(DATABASE_ENV) or DEFAULT_DATABASE).strip()
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url.removeprefix(prefix)
    if url.startswith(("sqlite:///", "postgresql+psycopg://")):
        return url
    scheme = url.split("://", 1)[0] if "://" in url else url
    raise DpbenchError(f"unsupported database {scheme!r}: use sqlite:///FILE or postgresql://USER@HOST:PORT/DB "
                       f"(--database or ${DATABASE_ENV})")


def redacted(url: str) -> str:
    """``url`` without its password, for messages and logs."""
    if "://" not in url or "@" not in url:
        return url
    scheme, rest = url.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in credentials else url
