"""``dpbench submit``'s client (standard library only): send a results file to a board, safely retried.

The Idempotency-Key is derived from the request body, so a retry after a timeout, or running the same command
again, gets the stored answer instead of a second row. Connection errors and 502/503/504 are retried with backoff
(honouring Retry-After); any other refusal is final and comes back as its one-line reason.
"""

from __future__ import annotations

import hashlib
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from dpbench.errors import DpbenchError
from dpbench.results import load_results

RETRIED = (502, 503, 504)
LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class Reply:
    """An HTTP answer: status, parsed JSON body (empty when not JSON) and headers."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SubmitResult:
    """What happened: ``accepted`` with the server's answer and standing, or the refusal's status and reason."""

    accepted: bool
    status: int
    body: dict[str, Any]
    standing: dict[str, Any] | None = None
    attempts: int = 1

    @property
    def reason(self) -> str:
        return str(self.body.get("error", f"HTTP {self.status}"))


def check_server(server: str) -> str:
    """The server's base URL; plain http only to a loopback address (a token must not cross a network in clear)."""
    parts = urlsplit(server)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DpbenchError(f"--server {server!r} is not an http(s) URL")
    if parts.scheme == "http" and parts.hostname not in LOOPBACK:
        raise DpbenchError(f"--server {server}: use https; plain http is accepted only for a local server")
    return server.rstrip("/")


def request(method: str, url: str, token: str | None = None, body: bytes | None = None,
            headers: dict[str, str] | None = None, timeout: float = 60) -> Reply:
    """One HTTP request; an HTTP error status is a Reply, a network failure raises OSError."""
    sent = {"Accept": "application/json", "User-Agent": "dpbench-submit", **(headers or {})}
    if token:
        sent["Authorization"] = f"Bearer {token}"
    if body is not None:
        sent["Content-Type"] = "application/json"
    req = urllib.request.Request(url, data=body, method=method, headers=sent)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as answer:
            status, raw, got = answer.status, answer.read(), dict(answer.headers.items())
    except urllib.error.HTTPError as exc:
        status, raw, got = exc.code, exc.read(), dict(exc.headers.items()) if exc.headers else {}
    try:
        parsed = json.loads(raw) if raw else {}
    except ValueError:
        parsed = {"error": raw[:200].decode(errors="replace")}
    return Reply(status, parsed if isinstance(parsed, dict) else {"value": parsed}, got)


def choose_board(server: str, results: dict[str, Any]) -> str:
    """The one open board that takes these results (same pool, pool version and protocol)."""
    reply = request("GET", f"{server}/api/v1/boards", timeout=30)
    if reply.status != 200:
        raise DpbenchError(f"{server} did not list its boards (HTTP {reply.status}); pass --board")
    prov = results["provenance"]
    boards = [b for b in reply.body.get("boards", []) if b.get("accepting")]
    fits = [b["slug"] for b in boards if (b["pool"], b["pool_version"], b["protocol"])
            == (prov["pool"], prov["pool_version"], prov.get("protocol"))]
    if len(fits) == 1:
        return str(fits[0])
    listed = ", ".join(b["slug"] for b in boards) or "none"
    if not fits:
        raise DpbenchError(f"no open board on {server} ranks pool {prov['pool']} {prov['pool_version']} with "
                           f"protocol {prov.get('protocol')} (open boards: {listed}); the results are from another "
                           "benchmark version")
    raise DpbenchError(f"several boards fit ({', '.join(fits)}); choose one with --board")


def submission_body(results_path: Path, board: str | None, server: str, card: dict[str, Any]) -> bytes:
    """The request body: board, card and the results file exactly as written (full-precision predictions)."""
    load_results(results_path)  # refuse a broken file here, with the file's name, before any network traffic
    results = json.loads(results_path.read_bytes())
    card = {"model_name": results["method"], **{k: v for k, v in card.items() if v is not None}}
    slug = board or choose_board(server, results)
    return json.dumps({"board": slug, "card": card, "results": results}, sort_keys=True).encode()


def submit(results_path: Path, server: str, token: str, *, board: str | None = None,
           card: dict[str, Any] | None = None, retries: int = 5, backoff: float = 1.0, timeout: float = 120,
           sleep: Callable[[float], None] = time.sleep) -> SubmitResult:
    """Submit ``results_path`` to ``server``; retried safely on network errors and 502/503/504."""
    server = check_server(server)
    body = submission_body(results_path, board, server, card or {})
    key = hashlib.sha256(body).hexdigest()[:40]
    reply: Reply | None = None
    attempt = 0
    for attempt in range(1, max(1, retries) + 1):
        try:
            reply = request("POST", f"{server}/api/v1/submissions", token, body, {"Idempotency-Key": key},
                            timeout)
        except OSError as exc:
            if attempt >= retries:
                raise DpbenchError(f"cannot reach {server} after {attempt} attempt(s): {exc}; rerun the same "
                                   "command later (it will not create a duplicate)") from None
            sleep(backoff * 2 ** (attempt - 1))
            continue
        if reply.status not in RETRIED or attempt >= retries:
            break
        wait = reply.headers.get("Retry-After", "")
        sleep(min(30.0, float(wait)) if wait.isdigit() else backoff * 2 ** (attempt - 1))
    assert reply is not None
    if reply.status not in (200, 201):
        return SubmitResult(False, reply.status, reply.body, attempts=attempt)
    standing = None
    try:
        info = request("GET", f"{server}/api/v1/submissions/{reply.body['id']}", timeout=timeout)
        standing = info.body.get("standing") if info.status == 200 else None
    except OSError:
        pass
    return SubmitResult(True, reply.status, reply.body, standing, attempt)
