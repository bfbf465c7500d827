"""The board in a real browser (Debian's chromium driven by Playwright): rows, order, ties, badges, the CD image,
client-side sorting, and markup in names and free text staying text. A screenshot is kept as an artifact
(``$DPBENCH_ARTIFACTS``, default ``<tmp>/dpbench-artifacts/leaderboard.png``)."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dpbench_leaderboard.models import Score, Submission

from tests.leaderboard.harness import Board, start_board
from tests.leaderboard.helpers import require, self_reported, variant

CHROMIUM = os.environ.get("DPBENCH_CHROMIUM", "/usr/bin/chromium")
MARKUP_NAME = '<script>alert("name")</script>'
MARKUP_TEXT = '<img src=x onerror=alert("text")>'


def artifacts() -> Path:
    folder = Path(os.environ.get("DPBENCH_ARTIFACTS") or Path(tempfile.gettempdir()) / "dpbench-artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _legacy_row(board: Board, name: str) -> None:
    """A row written straight into the store (as an older, less strict version might have): the page must still
    show its name as text."""
    board_id = board.server.service.board_ids[board.slug]
    source = board.results["random-2"]
    with board.db.write() as session:
        row = Submission(public_id="00000000000000aa", board_id=board_id, owner="legacy", token_prefix="000000000000",
                         model_name=name, status="self-reported", payload_sha256="0" * 64,
                         card_json=json.dumps({"model_name": name, "pretraining_data": MARKUP_TEXT}),
                         provenance_json=json.dumps(source["provenance"]),
                         report_json=json.dumps({"discrepancies": [], "warnings": []}), results_gz=b"",
                         created_at=time.time())
        session.add(row)
        session.flush()
        session.add_all([Score(submission_id=row.id, task=s["task"], seed=s["seed"], metric=s["metric"],
                               score=s["score"] * 0.5, reported=s["score"] * 0.5) for s in source["scores"]])


@pytest.fixture
def populated(tmp_path: Path, lb_pool: Path, lb_results: dict[str, Any],
              lb_labels: dict[str, Any]) -> Iterator[Board]:
    board = start_board(f"sqlite:///{tmp_path / 'lb.sqlite'}", lb_pool, lb_results, lb_labels)
    try:
        token = board.token()
        for i, name in enumerate(("random", "random-1", "random-2")):
            assert board.submit(board.results[name], token, f"k{i}").status == 201
        twin = variant(board.results["random-1"], "twin-of-random-1", board.labels)
        assert board.submit(twin, token, "twin", pretraining_data=MARKUP_TEXT).status == 201
        assert board.submit(self_reported(board.results["random"], "self-reported-model"), token, "s").status == 201
        _legacy_row(board, MARKUP_NAME)
        yield board
    finally:
        board.server.stop()
        board.db.dispose()


def test_board_in_chromium(populated: Board) -> None:
    require(importlib.util.find_spec("playwright") is not None, "playwright is not installed (pip install playwright)")
    require(Path(CHROMIUM).is_file() or shutil.which("chromium") is not None,
            f"Debian's chromium is not installed at {CHROMIUM} (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    board = populated
    expected = board.get(f"/api/v1/boards/{board.slug}").json["rows"]
    dialogs: list[str] = []
    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.goto(f"{board.url}/boards/{board.slug}", wait_until="networkidle")
            rows = page.locator('[data-testid="board-row"]')
            assert rows.count() == len(expected) == 6
            names = rows.locator('[data-testid="model"]').all_inner_texts()
            assert names == [r["model_name"] for r in expected]
            ranks = [int(r) for r in rows.evaluate_all("rs => rs.map(r => r.dataset.rank)")]
            assert ranks == sorted(ranks)
            cells = dict(zip(names, rows.locator('[data-testid="rank"]').all_inner_texts(), strict=True))
            assert cells["random-1"] == cells["twin-of-random-1"] and cells["random-1"].startswith("=")
            badges = dict(zip(names, rows.locator('[data-testid="badge"]').all_inner_texts(), strict=True))
            assert badges["self-reported-model"] == "self-reported" and badges["random"] == "verified"
            assert MARKUP_NAME in names and page.locator("script").count() == 1  # only board.js
            image = page.locator('[data-testid="cd-diagram"]')
            assert image.evaluate("img => img.complete && img.naturalWidth > 100")
            page.screenshot(path=str(artifacts() / "leaderboard.png"), full_page=True)
            page.locator("table.board thead th").nth(1).click()  # sort by model name in the browser
            assert rows.locator('[data-testid="model"]').all_inner_texts() == sorted(names, key=str.lower)
            page.locator('[data-testid="model"]', has_text="twin-of-random-1").click()
            page.wait_for_load_state("networkidle")
            assert page.locator('[data-testid="pretraining"]').inner_text() == MARKUP_TEXT
            assert page.locator('[data-testid="pretraining"] img').count() == 0
            assert page.locator('[data-testid="badge"]').first.inner_text() == "verified"
            page.screenshot(path=str(artifacts() / "submission.png"), full_page=True)
            page.goto(f"{board.url}/boards/{board.slug}?task=synthetic-Necrosis", wait_until="networkidle")
            assert page.locator("table.board thead th").count() == 10  # 8 fixed columns, 1 task, weights
        finally:
            browser.close()
    assert dialogs == [] and problems == []
