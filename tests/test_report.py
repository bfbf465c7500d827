"""report.html explains itself, from the results file alone: split sizes, selection curves, warnings, settings,
confusion matrices next to the task's metric, the ranking link; one file with no network asset, checked in a real
browser (headless Chromium, as the leaderboard tests use) for overflowing text."""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

from dpbench.encoders import load_encoder
from dpbench.evaluation.report import RankingLink, ranking_link, render_report, write_report
from dpbench.evaluation.run import EvalConfig, evaluate
from dpbench.pool.manifest import load_manifest
from dpbench.results import Results
from tests.conftest import SMALL_TASKS, run_cli
from tests.leaderboard.helpers import require

CHROMIUM = os.environ.get("DPBENCH_CHROMIUM", "/usr/bin/chromium")  # as tests/leaderboard: Debian's chromium


def artifacts() -> Path:
    folder = Path(os.environ.get("DPBENCH_ARTIFACTS") or Path(tempfile.gettempdir()) / "dpbench-artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def results(small_pool: Path, tmp_path_factory: pytest.TempPathFactory) -> Results:
    encoder = load_encoder("random")
    encoder = dataclasses.replace(encoder, input=dataclasses.replace(encoder.input, size=32))
    out = tmp_path_factory.mktemp("report")
    return evaluate(encoder, small_pool, SMALL_TASKS, EvalConfig(probe="fast", seeds=(0, 1)), out, name="rnd")


def test_split_sizes_come_from_the_results(results: Results, small_pool: Path) -> None:
    manifest = load_manifest(small_pool)
    page = render_report(results)
    for task in SMALL_TASKS:
        splits = manifest.task(task).splits
        assert results.provenance.tasks[task].splits["test"].images == splits["test"].images
        row = re.search(rf"<tr><td class=l>{task}</td>(.*?)</tr>", page.split("Tasks and splits")[1])
        assert row is not None
        cells = re.findall(r"<td>([\d,]+) \(([\d,]+)\)</td>", row.group(1))
        assert cells == [(f"{splits[s].images:,}", f"{splits[s].groups:,}") for s in ("train", "val", "test")]


def test_curves_settings_and_operating_point(results: Results) -> None:
    page = render_report(results)
    curves = re.findall(r"<img alt='([^']+): selection criterion over the grid' src='data:image/png;base64,", page)
    assert curves == SMALL_TASKS
    assert "grid of the probe&#x27;s regularisation C" in page and "feature-extraction precision" in page
    for task in SMALL_TASKS:
        scores = [s for s in results.scores if s.task == task]
        total = np.sum([s.confusion for s in scores], axis=0)
        accuracy = np.trace(total) / total.sum()
        card = page.split(f"data-task='{task}'")[1].split("</div>")[0]
        assert f"accuracy is {accuracy:.1%}" in card
        mean = sum(s.score for s in scores) / len(scores)
        assert (f"ROC AUC = {mean:.4f}" if scores[0].metric == "roc_auc" else f"{mean:.4f} on average") in card
    assert "Ranking" not in page


def test_report_changes_with_what_it_reads(results: Results) -> None:
    """A number shown must be the stored one: change the stored confusion matrix and the text follows."""
    first = results.scores[0]
    n = len(first.confusion or [])
    diagonal = [[7 if i == j else 0 for j in range(n)] for i in range(n)]
    changed = results.model_copy(update={"scores": [s.model_copy(update={"confusion": diagonal})
                                                    if s.task == first.task else s for s in results.scores]})
    card = render_report(changed).split(f"data-task='{first.task}'")[1].split("</div>")[0]
    assert "accuracy is 100.0%" in card


def test_ranking_link_from_rank_out(results: Results, tmp_path: Path) -> None:
    for name in ("a", "b"):
        folder = tmp_path / name
        folder.mkdir()
        renamed = results.model_copy(update={"method": name})
        if name == "b":  # a worse method: every score lowered
            renamed = renamed.model_copy(update={"scores": [s.model_copy(update={"score": s.score / 2})
                                                            for s in results.scores]})
        (folder / "results.json").write_text(renamed.model_dump_json())
        write_report(renamed, folder / "report.html")
    ranked = run_cli("rank", str(tmp_path / "a" / "results.json"), str(tmp_path / "b" / "results.json"),
                     "--bootstrap", "0", "--out", str(tmp_path / "ranking"))
    assert ranked.returncode == 0, ranked.stderr
    page = (tmp_path / "b" / "report.html").read_text()
    assert "Rank <b>2</b> of 2 methods" in page and "href='../ranking/ranking.json'" in page
    board = [{"method": "x", "rank": 1, "score": 1.0}]
    assert ranking_link(tmp_path / "b" / "report.html", tmp_path / "ranking", board, "b", "s") is None


def test_report_in_chromium(results: Results, tmp_path: Path) -> None:
    """Rendered in headless Chromium: nothing fetched but the file itself and its data: images, every image
    decoded, and no text wider than its box or the page (a long method name and class name included)."""
    require(importlib.util.find_spec("playwright") is not None, "playwright is not installed (pip install playwright)")
    require(Path(CHROMIUM).is_file() or shutil.which("chromium") is not None,
            f"Debian's chromium is not installed at {CHROMIUM} (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    long_name = "checkpoint:/very/long/path/" + "x" * 150 + "/encoder.pt"
    prov = results.provenance
    tasks = dict(prov.tasks)
    first = SMALL_TASKS[0]
    tasks[first] = tasks[first].model_copy(update={"classes": ["a-class-name-without-any-space-" * 3, "other"]})
    stressed = results.model_copy(update={"method": long_name,
                                          "provenance": prov.model_copy(update={"tasks": tasks})})
    page_file = tmp_path / "report.html"
    link = RankingLink(href="../ranking", rank=1, methods=3, score=1.5, score_name="average rank")
    write_report(stressed, page_file, link)
    text = page_file.read_text()
    assert not re.search(r"(src|href)=['\"]?(https?:)?//", text) and "@import" not in text
    requests: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 800})
            page.on("request", lambda r: requests.append(r.url))
            page.goto(page_file.as_uri(), wait_until="load")
            assert page.evaluate("[...document.images].every(i => i.complete && i.naturalWidth > 0)")
            assert page.locator("img").count() == 1 + len(SMALL_TASKS)  # the bar plot and one curve per task
            assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
            overflowing = page.evaluate(
                "[...document.querySelectorAll('h1,h2,p,li,td,th,code,b,div,a')]"
                ".filter(e => e.scrollWidth > e.clientWidth + 1 && getComputedStyle(e).display !== 'inline')"
                ".map(e => e.tagName + ': ' + e.textContent.slice(0, 60))")
            assert overflowing == []
            assert page.locator("h1").inner_text().startswith("dpbench evaluation: checkpoint:/very/long")
            page.screenshot(path=str(artifacts() / "report.png"), full_page=True)
        finally:
            browser.close()
    assert requests and all(u == page_file.as_uri() or u.startswith("data:") for u in requests), requests
