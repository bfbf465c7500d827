"""A live leaderboard server over a fresh database, and what the tests need to talk to it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dpbench_leaderboard.config import Settings
from dpbench_leaderboard.server import BackgroundServer, build_service
from dpbench_leaderboard.tokens import create_token

from tests.leaderboard.helpers import Answer, body_of, http, post


@dataclass
class Board:
    """A live server on a fresh database, and what the tests need to talk to it."""

    url: str
    server: BackgroundServer
    slug: str
    results: dict[str, dict[str, Any]]
    labels: dict[str, dict[str, int]]
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def db(self) -> Any:
        return self.server.service.db

    def token(self, owner: str = "alice", scopes: tuple[str, ...] = ("submit",), **kwargs: Any) -> str:
        return create_token(self.db, owner, list(scopes), **kwargs).secret

    def submit(self, results: dict[str, Any], token: str, key: str, **card: Any) -> Answer:
        return post(self.url, body_of(self.slug, results, **card), token, key)

    def get(self, path: str) -> Answer:
        return http(f"{self.url}{path}")

    def count(self, table: str = "submissions") -> int:
        from sqlalchemy import text

        with self.db.read() as session:
            return int(session.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def start_board(db_url: str, pool: Path, results: dict[str, dict[str, Any]], labels: dict[str, dict[str, int]],
                **settings: Any) -> Board:
    config = Settings(database_url=db_url, bootstrap=200, max_body_bytes=1 << 20, **settings)
    service = build_service(config, pool, ("linear",))
    server = BackgroundServer(service)
    url = server.start()
    (slug,) = service.accepting
    return Board(url, server, slug, results, labels)
