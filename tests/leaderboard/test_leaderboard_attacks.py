"""The attack and fault list, on SQLite and on PostgreSQL: bad tokens and scopes, malformed, truncated, nested and
oversized bodies, wrong keys, splits and versions, bad scores and names, quota under concurrency. None may give a
5xx (except the deliberate 503 of an unreachable database), store a forged row or lose a submission."""

from __future__ import annotations

import copy
import json
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

from dpbench_leaderboard.boards import BoardSpec, ensure_boards
from dpbench_leaderboard.tokens import create_token, revoke_token

from tests.leaderboard.harness import Board
from tests.leaderboard.helpers import body_of, http, post, variant


def _refused(answer: Any, status: int, code: str | None = None) -> None:
    assert answer.status == status, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    body = answer.json
    assert isinstance(body["error"], str) and "\n" not in body["error"] and "Traceback" not in body["error"]
    if code:
        assert body["code"] == code, body


def test_tokens_missing_invalid_expired_revoked_or_without_scope(board: Board) -> None:
    body = body_of(board.slug, board.results["random"])
    good = board.token("alice")
    prefix = good.split("_")[1]
    expired = create_token(board.db, "alice", ["submit"], days=1, now=time.time() - 2 * 86400).secret
    revoked = board.token("alice")
    assert revoke_token(board.db, revoked)
    reader = board.token("carol", ("read",))
    for token in (None, "", "dpb_0123", f"dpb_{prefix}_{'A' * 43}", "Basic abc", expired, revoked):
        answer = post(board.url, body, token)
        _refused(answer, 401, "auth")
        assert answer.headers["www-authenticate"] == "Bearer"
    _refused(post(board.url, body, reader), 403, "auth")
    assert board.count() == 0
    assert post(board.url, body, good).status == 201


MALFORMED = [b"", b"{", b'{"board": ', b"[]", b"null", b'"x"', b"\xff\xfe",
             b'{"board": "x", "card": {}, "results": {}}',
             b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
             b'{"board": "a", "board": "b", "card": {}, "results": {}}']


def test_malformed_and_deeply_nested_bodies(board: Board) -> None:
    token = board.token()
    for i, payload in enumerate(MALFORMED):
        _refused(post(board.url, payload, token, key=f"m{i}"), 422, "invalid")
    assert board.count() == 0


def test_wrong_types_extra_fields_and_truncated_results(board: Board) -> None:
    token = board.token()
    full = body_of(board.slug, board.results["random"])
    _refused(post(board.url, full[: len(full) // 2], token), 422, "invalid")
    data = json.loads(full)
    for mutate in (lambda d: d.update(extra=1), lambda d: d["card"].update(model_name=7),
                   lambda d: d["results"]["scores"][0].update(seed="zero"), lambda d: d["results"].update(scores=[]),
                   lambda d: d["card"].update(admin=True)):
        broken = copy.deepcopy(data)
        mutate(broken)
        _refused(post(board.url, json.dumps(broken).encode(), token, key=str(id(mutate))), 422, "invalid")
    assert board.count() == 0


def test_content_type_encoding_and_idempotency_key_are_required(board: Board) -> None:
    token, body = board.token(), body_of(board.slug, board.results["random"])
    _refused(post(board.url, body, token, **{"Content-Type": "application/x-www-form-urlencoded"}), 415)
    _refused(post(board.url, body, token, **{"Content-Encoding": "gzip"}), 415)
    _refused(post(board.url, body, token, key=None), 400, "idempotency_key")
    _refused(post(board.url, body, token, key="bad key with spaces"), 400, "idempotency_key")
    for method in ("PUT", "PATCH", "DELETE"):
        assert http(f"{board.url}/api/v1/submissions", method).status == 405
    assert board.count() == 0


def _raw(board: Board, head: str, chunks: list[bytes]) -> bytes:
    """Send a request head and body pieces over a raw socket, then read the answer until the server closes."""
    parts = urlsplit(board.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(head.encode())
        for chunk in chunks:
            sock.sendall(chunk)
        answer = b""
        while len(answer) < 1 << 20:
            data = sock.recv(65536)
            if not data:
                break
            answer += data
        return answer


def test_oversized_bodies_declared_and_chunked(board: Board) -> None:
    token = board.token()
    head = (f"POST /api/v1/submissions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
            "Content-Type: application/json\r\nIdempotency-Key: c\r\n")
    declared = _raw(board, head + f"Content-Length: {2 << 20}\r\n\r\n", [])  # refused before any body byte
    assert declared.startswith(b"HTTP/1.1 413") and b"too_large" in declared, declared[:300]
    piece = b"y" * 65536  # 17 chunks pass the 1 MiB limit: refused while streaming, never buffered whole
    chunked = _raw(board, head + "Transfer-Encoding: chunked\r\n\r\n",
                   [f"{len(piece):x}\r\n".encode() + piece + b"\r\n" for _ in range(17)] + [b"0\r\n\r\n"])
    assert chunked.startswith(b"HTTP/1.1 413") and b"too_large" in chunked, chunked[:300]
    assert board.count() == 0 and board.get("/healthz").status == 200


def test_a_truncated_upload_is_dropped(board: Board) -> None:
    token, body = board.token(), body_of(board.slug, board.results["random"])
    host, port = urlsplit(board.url).hostname, urlsplit(board.url).port
    with socket.create_connection((host, port), timeout=30) as sock:
        sock.sendall(f"POST /api/v1/submissions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
                     f"Content-Type: application/json\r\nIdempotency-Key: t\r\nContent-Length: {len(body)}\r\n\r\n"
                     .encode() + body[: len(body) // 3])
    assert board.get("/healthz").status == 200
    assert board.count() == 0
    assert post(board.url, body, token, key="t").status == 201  # the key was not burnt by the dropped upload


def _keys(results: dict[str, Any], change: str) -> dict[str, Any]:
    out = copy.deepcopy(results)
    predictions = out["scores"][0]["predictions"]
    key = sorted(predictions)[0]
    if change == "unknown":
        predictions["../../etc/passwd"] = predictions[key]
    elif change == "missing":
        del predictions[key]
    else:
        predictions[f"{key}-renamed"] = predictions.pop(key)
    return out


def test_predictions_must_cover_exactly_the_test_keys(board: Board) -> None:
    token = board.token()
    for change in ("unknown", "missing", "renamed"):
        _refused(board.submit(_keys(board.results["random"], change), token, change), 422, "sample_keys")
    short = copy.deepcopy(board.results["random"])
    predictions = short["scores"][0]["predictions"]
    predictions[sorted(predictions)[0]] = [0.5]
    _refused(board.submit(short, token, "short"), 422, "prediction_shape")
    assert board.count() == 0


def test_wrong_split_old_version_and_wrong_board(board: Board) -> None:
    token, results = board.token(), board.results["random"]
    split = copy.deepcopy(results)
    task = next(iter(split["provenance"]["split_sha256"]))
    split["provenance"]["split_sha256"][task] = "0" * 64
    _refused(board.submit(split, token, "a"), 409, "split_mismatch")
    old = copy.deepcopy(results)
    old["provenance"]["pool_version"] = "000000000000"
    answer = board.submit(old, token, "b")
    _refused(answer, 409, "benchmark_version")
    assert "000000000000" in answer.json["error"]
    finetune = copy.deepcopy(results)
    finetune["provenance"]["protocol"] = "finetune"
    _refused(board.submit(finetune, token, "c"), 409, "protocol")
    validation = copy.deepcopy(results)  # a model-selection (val-scored) file is never a board entry
    validation["provenance"]["scored_split"] = "val"
    answer = board.submit(validation, token, "g")
    _refused(answer, 422, "scored_split")
    assert "--score-on test" in answer.json["error"]
    real = copy.deepcopy(results)
    real["provenance"]["synthetic"] = False
    _refused(board.submit(real, token, "d"), 409, "synthetic")
    _refused(post(board.url, body_of("no-such-board", results), token, "e"), 404, "unknown_board")
    spec = board.server.service.served.boards[board.slug]  # type: ignore[union-attr]
    frozen = BoardSpec(f"{spec.pool}-000000000000-linear-00000000", spec.pool, "000000000000", "linear",
                       "0" * 64, True, spec.tasks)
    ensure_boards(board.db, [frozen])
    _refused(post(board.url, body_of(frozen.slug, old), token, "f"), 409, "frozen_board")
    unknown_task = copy.deepcopy(results)
    unknown_task["scores"][0]["task"] = "synthetic-Nope"
    _refused(board.submit(unknown_task, token, "g"), 422, "unknown_task")
    assert board.count() == 0


def test_scores_out_of_range_or_inconsistent(board: Board) -> None:
    token = board.token()
    cases = [("score", 1.5, "score_range"), ("score", -0.1, "score_range"), ("metric", "accuracy", "metric"),
             ("seed", -1, "seeds"), ("seed", 1, "duplicate_seed")]
    for i, (field, value, code) in enumerate(cases):
        results = copy.deepcopy(board.results["random"])
        first = next(s for s in results["scores"] if s["metric"] == "roc_auc" and s["seed"] == 0)
        first[field] = value
        _refused(board.submit(results, token, f"k{i}"), 422, code)
    assert board.count() == 0


def test_non_finite_scores_and_predictions(board: Board) -> None:
    token = board.token()
    text = body_of(board.slug, board.results["random"]).decode()
    first_score = json.dumps(board.results["random"]["scores"][0]["score"])
    predictions = board.results["random"]["scores"][0]["predictions"]
    key = sorted(predictions)[0]
    row = json.dumps({key: predictions[key]})[1:-1]
    for literal in ("NaN", "Infinity", "-Infinity", "1e999"):
        bad_score = text.replace(f'"score": {first_score}', f'"score": {literal}', 1)
        assert bad_score != text
        _refused(post(board.url, bad_score.encode(), token, f"s{literal}"), 422)
        bad_row = text.replace(row, f'"{key}": [{literal}, 0.5]', 1)
        assert bad_row != text
        _refused(post(board.url, bad_row.encode(), token, f"p{literal}"), 422)
    assert board.count() == 0


BAD_NAMES = ["../../etc/passwd", "..\\..\\x", "/abs", "a/../../b", "%2e%2e/x", "nul\x00byte", "rtl\u202eevil",
             "ｆｕｌｌ", "x" * 10_000, "<script>alert(1)</script>", "a/b/c", "trailing/", " lead", "tab\tname", "",
             "a\u200bb"]
BAD_URLS = ["javascript:alert(1)", "http://example.org", "https://user:pw@example.org", "data:text/html,x", "https://",
            "https://exa mple.org", "JAVASCRIPT:alert(1)"]


def test_names_with_traversal_or_markup_and_unsafe_urls_are_refused(board: Board) -> None:
    token = board.token()
    for i, name in enumerate(BAD_NAMES):
        _refused(board.submit(board.results["random"], token, f"n{i}", model_name=name), 422, "invalid")
    for i, url in enumerate(BAD_URLS):
        _refused(board.submit(board.results["random"], token, f"u{i}", code_url=url), 422, "invalid")
    _refused(board.submit(board.results["random"], token, "ctl", pretraining_data="bell\x07"), 422, "invalid")
    assert board.count() == 0


def test_a_model_name_belongs_to_its_first_submitter(board: Board) -> None:
    alice, mallory = board.token("alice"), board.token("mallory")
    assert board.submit(board.results["random"], alice, "a").status == 201
    takeover = variant(board.results["random-1"], "random", board.labels)
    _refused(board.submit(takeover, mallory, "a"), 409, "name_taken")
    _refused(board.submit(board.results["random"], mallory, "b"), 409, "name_taken")
    assert board.count() == 1


def test_quota_holds_under_concurrency(board: Board) -> None:
    token = board.token("quota-owner", quota=3)
    second_token = board.token("quota-owner", quota=3)  # a new token of the same owner shares the quota
    bodies = [body_of(board.slug, variant(board.results["random"], f"q{i}", board.labels, noise=0.01, seed=i))
              for i in range(12)]

    def send(i: int) -> Any:
        return post(board.url, bodies[i], token if i % 2 else second_token, key=f"q{i}")

    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(send, range(12)))
    statuses = sorted(a.status for a in answers)
    assert statuses == [201] * 3 + [429] * 9, statuses
    assert all(int(a.headers["retry-after"]) > 0 for a in answers if a.status == 429)
    assert board.count() == 3
