"""The pieces without a server: names and URLs, tokens at rest, the standings' ties and partial entries, the
client's URL rule and the migrations."""

from __future__ import annotations

from pathlib import Path

import pytest
from dpbench_leaderboard.boards import BoardSpec, BoardTask
from dpbench_leaderboard.client import check_server
from dpbench_leaderboard.config import database_url, redacted
from dpbench_leaderboard.queries import Entry
from dpbench_leaderboard.schemas import check_name, check_url
from dpbench_leaderboard.server import open_database
from dpbench_leaderboard.standings import Filters, compute, view_csv
from dpbench_leaderboard.tokens import AuthError, authenticate, create_token, list_tokens
from sqlalchemy import inspect, text

from dpbench.errors import DpbenchError


@pytest.mark.parametrize("name", ["resnet18", "facebook/dinov2-base", "random:1", "ViT-B/16 (ours)", "a.b_c+d=e@f"])
def test_ordinary_model_names_pass(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["../x", "a//b", "x/", "/x", "a\\b", "<b>", "a  b", "é", "a\u200db", "", "x" * 101])
def test_odd_model_names_fail(name: str) -> None:
    with pytest.raises(ValueError):
        check_name(name)


def test_urls_are_https_only() -> None:
    assert check_url("https://github.com/org/repo") == "https://github.com/org/repo"
    for bad in ("http://x.org", "javascript:alert(1)", "https://a@b.org", "ftp://x", "https://x.org/ a"):
        with pytest.raises(ValueError):
            check_url(bad)


def test_tokens_are_stored_hashed_and_checked(tmp_path: Path) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'tokens.sqlite'}")
    try:
        new = create_token(db, "alice", ["submit", "read"], quota=2)
        with db.read() as session:
            dump = "".join(str(v) for row in session.execute(text("SELECT * FROM tokens")) for v in row)
        secret = new.secret.split("_", 2)[2]
        assert secret not in dump and new.prefix in dump
        identity = authenticate(db, f"Bearer {new.secret}", "read")
        assert (identity.owner, identity.quota, sorted(identity.scopes)) == ("alice", 2, ["read", "submit"])
        with pytest.raises(AuthError) as wrong:
            authenticate(db, f"Bearer {new.secret}", "admin")
        assert wrong.value.status == 403
        assert [t["owner"] for t in list_tokens(db)] == ["alice"]
        for bad in ({"owner": "bad owner"}, {"owner": "x", "scopes": ["root"]}, {"owner": "x", "scopes": []}):
            with pytest.raises(DpbenchError):
                create_token(db, str(bad["owner"]), list(bad.get("scopes", ["submit"])))
    finally:
        db.dispose()


def test_migrations_create_the_schema_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'schema.sqlite'}"
    first = open_database(url)
    again = open_database(url)  # a second start finds the schema current
    try:
        assert first.migrate() == again.migrate() == "0001"
        tables = set(inspect(first.engine).get_table_names())
        assert {"boards", "tokens", "submissions", "scores", "idempotency_keys", "alembic_version"} <= tables
    finally:
        first.dispose()
        again.dispose()


def test_database_urls() -> None:
    assert database_url("postgresql://u:p@127.0.0.1:5432/db") == "postgresql+psycopg://u:p@127.0.0.1:5432/db"
    assert redacted("postgresql+psycopg://u:secret@h/db") == "postgresql+psycopg://u:***@h/db"
    with pytest.raises(DpbenchError, match="unsupported database"):
        database_url("mysql://x")


def test_the_client_refuses_plain_http_to_other_hosts() -> None:
    assert check_server("http://127.0.0.1:8000/") == "http://127.0.0.1:8000"
    assert check_server("https://board.example.org") == "https://board.example.org"
    for bad in ("http://board.example.org", "ftp://x", "board.example.org"):
        with pytest.raises(DpbenchError):
            check_server(bad)


TASKS = (BoardTask("A", "roc_auc", ("n", "p"), "breast", "evaluate", "a" * 64, 10),
         BoardTask("B", "accuracy", ("x", "y", "z"), "colon", "evaluate", "b" * 64, 10))
SPEC = BoardSpec("pool-v-linear-00000000", "pool", "v", "linear", "c" * 64, True, TASKS)


def _entry(seq: int, name: str, a: list[float], b: list[float] | None) -> Entry:
    scores = [("A", s, "roc_auc", v, v) for s, v in enumerate(a)]
    scores += [("B", s, "accuracy", v, v) for s, v in enumerate(b or [])]
    return Entry(f"{seq:016x}", seq, name, "o", "verified", 0.0, {"model_name": name}, {}, {}, scores)


def test_standings_ties_partial_entries_and_filters() -> None:
    entries = [_entry(1, "best", [0.9, 0.92], [0.8, 0.82]), _entry(2, "twin-a", [0.7, 0.7], [0.6, 0.6]),
               _entry(3, "twin-b", [0.7, 0.7], [0.6, 0.6]), _entry(4, "partial", [0.99], None)]
    view = compute(SPEC, 4, entries, Filters(), n_boot=100)
    assert [(r.entry.model_name, r.position, r.tied) for r in view.rows] == [
        ("best", 1, False), ("twin-a", 2, True), ("twin-b", 2, True)]
    assert view.rows[0].cells["A"].mean == pytest.approx(0.91) and view.rows[1].cells["A"].std == 0.0
    assert [(r.entry.model_name, r.coverage) for r in view.partial] == [("partial", 0.5)]
    assert view.rows[0].rank_low == 1 and view.friedman is not None
    only_a = compute(SPEC, 4, entries, Filters(tasks=("A",)), n_boot=0)
    assert only_a.rows[0].entry.model_name == "partial" and not only_a.partial
    colon = compute(SPEC, 4, entries, Filters(organ="colon"), n_boot=0)
    assert [t.name for t in colon.tasks] == ["B"]
    assert compute(SPEC, 4, entries[:1], Filters(), n_boot=10).rows[0].position == 1
    assert "partial" in view_csv(view)
    with pytest.raises(DpbenchError):
        Filters(sort="task:Z").selected(SPEC)
