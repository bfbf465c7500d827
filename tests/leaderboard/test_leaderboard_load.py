"""Concurrency and faults, on SQLite and on PostgreSQL: 20 concurrent clients (each submission stored exactly once),
the database going away mid-request (503, nothing half-stored, the retry stores it once), and a full PostgreSQL
outage and recovery."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dpbench_leaderboard.client import submit
from sqlalchemy import event, text

from tests.leaderboard.harness import Board, start_board
from tests.leaderboard.helpers import body_of, post, variant
from tests.leaderboard.postgres import Cluster

CLIENTS, EACH = 20, 3


def test_concurrent_clients_store_every_submission_exactly_once(board: Board) -> None:
    token = board.token("load", quota=10_000)
    bodies = {(c, i): body_of(board.slug, variant(board.results[("random", "random-1", "random-2")[i]],
                                                  f"c{c}-m{i}", board.labels, noise=0.02, seed=c * 10 + i))
              for c in range(CLIENTS) for i in range(EACH)}

    def client(c: int) -> list[tuple[int, str, str]]:
        seen = []
        for i in range(EACH):
            answer = post(board.url, bodies[(c, i)], token, key=f"c{c}-{i}")
            seen.append((answer.status, answer.json.get("id", answer.text), "new"))
        replay = post(board.url, bodies[(c, 0)], token, key=f"c{c}-0")  # a retry after a lost answer
        again = post(board.url, bodies[(c, 1)], token, key=f"c{c}-again")  # the same file re-sent
        seen += [(replay.status, replay.json["id"], "replay"), (again.status, again.json["id"], "again")]
        return seen

    with ThreadPoolExecutor(CLIENTS) as pool:
        outcomes = [o for per_client in pool.map(client, range(CLIENTS)) for o in per_client]
    created = [i for status, i, kind in outcomes if kind == "new" and status == 201]
    assert len(created) == CLIENTS * EACH == len(set(created)), [o for o in outcomes if o[0] != 201][:3]
    assert {i for _, i, kind in outcomes if kind != "new"} <= set(created)
    assert all(status in (200, 201) for status, _, _ in outcomes)
    assert board.count() == CLIENTS * EACH and board.count("scores") == CLIENTS * EACH * 6
    with board.db.read() as session:
        stored = set(session.execute(text("SELECT public_id FROM submissions")).scalars())
    assert stored == set(created)
    rows = board.get(f"/api/v1/boards/{board.slug}").json["rows"]
    assert len(rows) == CLIENTS * EACH


@contextmanager
def drop_connection_on_insert(board: Board, times: int, cluster: Cluster | None) -> Iterator[list[int]]:
    """Make the connection die while a submission row is being inserted, ``times`` times: PostgreSQL terminates
    the backend (pg_terminate_backend), SQLite has its connection closed under it."""
    fired = [0]
    lock = threading.Lock()

    def hook(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if not statement.lstrip().upper().startswith("INSERT INTO SUBMISSIONS"):
            return
        with lock:
            if fired[0] >= times:
                return
            fired[0] += 1
        raw = conn.connection.dbapi_connection
        if cluster is not None:
            cluster.execute(f"SELECT pg_terminate_backend({int(raw.info.backend_pid)})")
        else:
            raw.close()

    engine = board.db.engine
    event.listen(engine, "before_cursor_execute", hook)
    try:
        yield fired
    finally:
        event.remove(engine, "before_cursor_execute", hook)


def _cluster(board: Board, request: Any) -> Cluster | None:
    return request.getfixturevalue("pg_cluster") if board.db.dialect == "postgresql" else None


def test_database_going_away_mid_request_loses_nothing(board: Board, request: Any) -> None:
    token = board.token()
    body = body_of(board.slug, board.results["random"])
    with drop_connection_on_insert(board, 1, _cluster(board, request)) as fired:
        failed = post(board.url, body, token, key="k")
        assert fired == [1]
        assert failed.status == 503, failed.text
        assert int(failed.headers["retry-after"]) > 0 and failed.json["code"] == "database"
        assert board.count() == 0 and board.count("scores") == 0
        retried = post(board.url, body, token, key="k")
    assert retried.status == 201, retried.text
    assert post(board.url, body, token, key="k").json["id"] == retried.json["id"]
    assert board.count() == 1


def test_the_client_retries_through_an_outage(board: Board, request: Any, tmp_path: Path) -> None:
    token = board.token()
    path = tmp_path / "results.json"
    import json

    path.write_text(json.dumps(board.results["random-1"]))
    with drop_connection_on_insert(board, 2, _cluster(board, request)) as fired:
        result = submit(path, board.url, token, retries=5, sleep=lambda _s: None)
    assert fired == [2] and result.accepted and result.attempts == 3
    assert result.body["status"] == "verified" and result.standing and result.standing["rank"] == 1
    again = submit(path, board.url, token, sleep=lambda _s: None)  # running the command again: no new row
    assert again.accepted and again.body["id"] == result.body["id"]
    assert board.count() == 1


def test_postgres_outage_and_recovery(pg_cluster: Cluster, lb_pool: Path, lb_results: dict[str, Any],
                                      lb_labels: dict[str, Any]) -> None:
    with pg_cluster.database() as url:
        board = start_board(url, lb_pool, lb_results, lb_labels)
        try:
            token = board.token()
            body = body_of(board.slug, board.results["random"])
            pg_cluster.stop()
            try:
                down = post(board.url, body, token, key="k")
                assert down.status == 503 and down.json["code"] == "database", down.text
                assert board.get(f"/boards/{board.slug}").status == 503
            finally:
                pg_cluster.start()
            assert post(board.url, body, token, key="k").status == 201
            assert board.count() == 1
        finally:
            board.server.stop()
            board.db.dispose()
