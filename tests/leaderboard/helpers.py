"""Helpers of the leaderboard tests: raw HTTP, request bodies, result variants, and "skip here, fail in CI"."""

from __future__ import annotations

import copy
import json
import os
import socket
from dataclasses import dataclass
from http.client import HTTPConnection
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pytest

from dpbench.evaluation.metrics import score


def require(ok: bool, reason: str) -> None:
    """Skip the test when a component is missing on a user's machine; in CI (CI=true) that is a failure."""
    if ok:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI must provide this component: {reason}")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    raw: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.raw)

    @property
    def text(self) -> str:
        return self.raw.decode(errors="replace")


def http(url: str, method: str = "GET", body: bytes | None = None, headers: dict[str, str] | None = None,
         timeout: float = 60) -> Answer:
    """One request with exactly these headers (http.client adds Host and, for a body, Content-Length)."""
    parts = urlsplit(url)
    conn = HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)
    try:
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        conn.request(method, path or "/", body=body, headers=headers or {})
        answer = conn.getresponse()
        return Answer(answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read())
    finally:
        conn.close()


def body_of(board: str, results: dict[str, Any], **card: Any) -> bytes:
    """A submission request body."""
    card = {"model_name": results["method"], **card}
    return json.dumps({"board": board, "card": card, "results": results}).encode()


def post(url: str, body: bytes, token: str | None, key: str | None = "k1", **extra: str) -> Answer:
    headers = {"Content-Type": "application/json", **extra}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if key is not None:
        headers["Idempotency-Key"] = key
    return http(f"{url}/api/v1/submissions", "POST", body, headers)


def variant(results: dict[str, Any], name: str, labels: dict[str, dict[str, int]], noise: float = 0.0,
            seed: int = 0) -> dict[str, Any]:
    """A copy of ``results`` under another method name, its predictions perturbed by ``noise`` and every score
    recomputed from them, so that the file stays truthful (re-scoring agrees)."""
    out = copy.deepcopy(results)
    out["method"] = name
    rng = np.random.default_rng(seed)
    for entry in out["scores"]:
        keys = sorted(entry["predictions"])
        matrix = np.array([entry["predictions"][k] for k in keys]) + noise * rng.standard_normal(
            (len(keys), len(entry["predictions"][keys[0]])))
        entry["predictions"] = {k: [float(v) for v in row] for k, row in zip(keys, matrix, strict=True)}
        truth = np.array([labels[entry["task"]][k] for k in keys])
        entry["score"] = score(entry["metric"], truth, matrix)
    return out


def self_reported(results: dict[str, Any], name: str) -> dict[str, Any]:
    """``results`` under another name without its predictions."""
    out = copy.deepcopy(results)
    out["method"] = name
    for entry in out["scores"]:
        entry["predictions"] = None
        entry["confusion"] = None
    return out
