"""The service end to end, on SQLite and on PostgreSQL: verified re-scoring, self-reported entries, supersession
with history, idempotent retries, the board as HTML/JSON/CSV with filters, and the append-only store."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from dpbench_leaderboard.server import open_database
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from tests.leaderboard.harness import Board
from tests.leaderboard.helpers import self_reported, variant


def test_verified_scores_are_the_servers_own(board: Board) -> None:
    token = board.token()
    results = board.results["random"]
    first = board.submit(results, token, "a")
    assert first.status == 201, first.text
    body = first.json
    assert body["status"] == "verified" and body["discrepancies"] == [] and body["duplicate"] is False
    assert [(s["task"], s["seed"], s["score"]) for s in body["scores"]] == [
        (s["task"], s["seed"], s["score"]) for s in results["scores"]]
    assert first.headers["location"] == f"/api/v1/submissions/{body['id']}"
    # a forged score: the board keeps its own number and says so
    forged = variant(results, "forged", board.labels)
    forged["scores"][0]["score"] = min(1.0, forged["scores"][0]["score"] + 0.01) if forged["scores"][0][
        "score"] < 0.99 else 0.5
    true_value = variant(results, "forged", board.labels)["scores"][0]["score"]
    second = board.submit(forged, token, "b")
    assert second.status == 201, second.text
    assert second.json["discrepancies"] == [{"task": forged["scores"][0]["task"], "seed": 0,
                                             "reported": forged["scores"][0]["score"], "verified": true_value}]
    board_json = board.get(f"/api/v1/boards/{board.slug}").json
    row = next(r for r in board_json["rows"] if r["model_name"] == "forged")
    task = forged["scores"][0]["task"]
    seeds = [s["score"] for s in variant(results, "forged", board.labels)["scores"] if s["task"] == task]
    assert row["tasks"][task]["mean"] == pytest.approx(sum(seeds) / len(seeds), abs=1e-6)
    assert row["status"] == "verified"
    other_build = variant(results, "other-build", board.labels)
    other_build["provenance"]["manifest_sha256"] = "e" * 64
    third = board.submit(other_build, token, "c")
    assert third.status == 201 and any("manifest" in w for w in third.json["warnings"])


def test_self_reported_entries_are_marked(board: Board) -> None:
    token = board.token()
    answer = board.submit(self_reported(board.results["random-1"], "no-predictions"), token, "a")
    assert answer.status == 201, answer.text
    assert answer.json["status"] == "self-reported"
    rows = board.get(f"/api/v1/boards/{board.slug}").json["rows"]
    assert [r["status"] for r in rows] == ["self-reported"]
    page = board.get(f"/boards/{board.slug}").text
    assert "self-reported" in page and 'data-testid="badge"' in page


def test_a_new_submission_supersedes_and_history_is_kept(board: Board) -> None:
    token = board.token()
    old = board.submit(board.results["random"], token, "a").json
    new = board.submit(variant(board.results["random-2"], "random", board.labels), token, "b")
    assert new.status == 201, new.text
    assert new.json["supersedes"] == old["id"]
    rows = board.get(f"/api/v1/boards/{board.slug}").json["rows"]
    assert [(r["model_name"], r["id"]) for r in rows] == [("random", new.json["id"])]
    older = board.get(f"/api/v1/submissions/{old['id']}").json
    assert older["superseded_by"] == new.json["id"] and older["history"] == [old["id"], new.json["id"]]
    assert older["standing"] is None
    page = board.get(f"/boards/{board.slug}/submissions/{old['id']}").text
    assert "Superseded by" in page
    assert board.count() == 2 and board.count("scores") == 2 * len(old["scores"])


def test_retries_and_duplicates_store_one_row(board: Board) -> None:
    token = board.token()
    results = board.results["random"]
    first = board.submit(results, token, "key-1")
    replay = board.submit(results, token, "key-1")
    assert (first.status, replay.status) == (201, 201)
    assert replay.json == first.json and replay.headers["idempotent-replayed"] == "true"
    conflict = board.submit(board.results["random-1"], token, "key-1")
    assert conflict.status == 422 and conflict.json["code"] == "idempotency_conflict"
    duplicate = board.submit(results, token, "key-2")
    assert duplicate.status == 200 and duplicate.json["duplicate"] is True
    assert duplicate.json["id"] == first.json["id"]
    assert board.count() == 1


def test_board_ranks_with_ties_in_html_json_and_csv(board: Board) -> None:
    token = board.token()
    for key, name in enumerate(("random", "random-1", "random-2")):
        assert board.submit(board.results[name], token, f"k{key}").status == 201
    twin = variant(board.results["random-1"], "twin-of-random-1", board.labels)
    assert board.submit(twin, token, "k-twin").status == 201
    data = board.get(f"/api/v1/boards/{board.slug}").json
    rows = data["rows"]
    assert len(rows) == 4 and data["board"]["synthetic"] is True
    assert [r["rank"] for r in rows] == sorted(r["rank"] for r in rows)
    twins = [r for r in rows if r["model_name"] in ("random-1", "twin-of-random-1")]
    assert twins[0]["rank"] == twins[1]["rank"] and twins[0]["tied"] and twins[1]["tied"]
    assert all(1 <= r["rank_low"] <= r["rank_high"] <= 4 for r in rows)
    assert data["friedman"] is not None and data["nemenyi"]["cd"] > 0
    table = list(csv.DictReader(io.StringIO(board.get(f"/api/v1/boards/{board.slug}/board.csv").text)))
    assert [t["model_name"] for t in table] == [r["model_name"] for r in rows]
    html = board.get(f"/boards/{board.slug}").text
    assert html.count('data-testid="board-row"') == 4 and "=" + str(twins[0]["rank"]) in html
    image = board.get(f"/boards/{board.slug}/cd.png")
    assert image.status == 200 and image.raw[:8] == b"\x89PNG\r\n\x1a\n"
    listing = board.get("/api/v1/boards").json["boards"]
    assert [(b["slug"], b["entries"], b["accepting"]) for b in listing] == [(board.slug, 4, True)]


def test_filters_recompute_the_standings(board: Board) -> None:
    token = board.token()
    for key, name in enumerate(("random", "random-1", "random-2")):
        board.submit(board.results[name], token, f"k{key}")
    partial = variant(board.results["random"], "partial", board.labels)
    partial["scores"] = [s for s in partial["scores"] if s["task"] == "synthetic-Necrosis"]
    assert board.submit(partial, token, "kp").status == 201
    full = board.get(f"/api/v1/boards/{board.slug}").json
    assert [r["model_name"] for r in full["partial"]] == ["partial"] and len(full["rows"]) == 3
    one = board.get(f"/api/v1/boards/{board.slug}?task=synthetic-Necrosis").json
    assert [t["name"] for t in one["tasks"]] == ["synthetic-Necrosis"] and len(one["rows"]) == 4
    assert one["friedman"] is None
    by_task = board.get(f"/api/v1/boards/{board.slug}?sort=task:synthetic-WarwickCRC").json["rows"]
    means = [r["tasks"]["synthetic-WarwickCRC"]["mean"] for r in by_task]
    assert means == sorted(means, reverse=True)
    organ = full["tasks"][0]["organ"]
    organ_view = board.get(f"/api/v1/boards/{board.slug}?organ={organ}").json
    assert organ_view["tasks"] and all(t["organ"] == organ for t in organ_view["tasks"])
    for bad in ("task=nope", "sort=task:nope", "sort=%3Cscript%3E"):
        answer = board.get(f"/api/v1/boards/{board.slug}?{bad}")
        assert answer.status == 422, bad
    assert board.get(f"/boards/{board.slug}?task=nope").status == 422
    assert board.get("/boards/no-such-board").status == 404


def test_history_rows_cannot_be_changed_in_the_database(board: Board) -> None:
    token = board.token()
    board.submit(board.results["random"], token, "a")
    for statement in ("UPDATE submissions SET model_name = 'x'", "DELETE FROM scores",
                      "UPDATE scores SET score = 1.0"):
        with pytest.raises(DBAPIError, match="append-only"), board.db.write() as session:
            session.execute(text(statement))
    assert board.count() == 1
    assert board.get("/api/v1/submissions/" + board.get(f"/api/v1/boards/{board.slug}").json["rows"][0]["id"]
                     ).status == 200


def test_owner_reads_its_raw_submission_only(board: Board) -> None:
    alice, bob = board.token("alice", ("submit", "read")), board.token("bob", ("read",))
    posted = board.submit(board.results["random"], alice, "a").json
    from tests.leaderboard.helpers import http

    path = f"{board.url}/api/v1/submissions/{posted['id']}/results.json"
    mine = http(path, headers={"Authorization": f"Bearer {alice}"})
    assert mine.status == 200 and mine.json["method"] == "random"
    assert http(path, headers={"Authorization": f"Bearer {bob}"}).status == 404
    assert http(path).status == 401


def test_loto_entries_show_the_tasks_each_model_never_saw(board: Board) -> None:
    token = board.token()
    results = board.results["random"]
    unseen = {t: [t] for t in dict.fromkeys(s["task"] for s in results["scores"])}
    answer = board.submit(results, token, "a", unseen_tasks=unseen, pretraining_data="the pool minus each target",
                          code_url="https://example.org/code")
    assert answer.status == 201, answer.text
    page = board.get(answer.json["links"]["html"]).text
    assert "LOTO" in page and "never seen" in page and "https://example.org/code" in page
    wrong = board.submit(variant(results, "x", board.labels), token, "b", unseen_tasks={"synthetic-Necrosis": []})
    assert wrong.status == 422 and "never have seen" in wrong.json["error"]


def test_sqlite_store_runs_in_wal_mode(tmp_path: Path, lb_pool: Path) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'lb.sqlite'}")
    try:
        with db.read() as session:
            assert session.execute(text("PRAGMA journal_mode")).scalar_one() == "wal"
            assert session.execute(text("PRAGMA busy_timeout")).scalar_one() >= 5000
            assert session.execute(text("PRAGMA foreign_keys")).scalar_one() == 1
        with db.write() as session:  # BEGIN IMMEDIATE: the write lock is held from the first statement
            session.execute(text("SELECT 1"))
            assert session.connection().exec_driver_sql("SELECT 1").scalar_one() == 1
    finally:
        db.dispose()
