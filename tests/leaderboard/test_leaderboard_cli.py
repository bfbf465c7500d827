"""The commands as a user runs them: ``dpbench serve`` and ``dpbench submit`` as processes, the admin's token
commands, and ``dpbench leaderboard export`` writing the same board as a static site."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import typer
from dpbench_leaderboard.cli import register
from dpbench_leaderboard.config import Settings
from dpbench_leaderboard.export import export_site
from typer.testing import CliRunner

from tests.leaderboard.harness import Board
from tests.leaderboard.helpers import free_port, http, variant

ENV = {"COLUMNS": "200", "PATH": "/usr/bin:/bin"}


def cli() -> typer.Typer:
    root = typer.Typer()
    register(root)
    return root


def dpbench(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dpbench", *args], capture_output=True, text=True, env=ENV,
                          timeout=timeout, check=False)


def test_serve_submit_and_tokens_from_the_command_line(tmp_path: Path, lb_pool: Path,
                                                       lb_results: dict[str, Any]) -> None:
    database = f"sqlite:///{tmp_path / 'board.sqlite'}"
    runner = CliRunner()
    created = runner.invoke(cli(), ["leaderboard", "token", "create", "--owner", "alice", "--database", database])
    assert created.exit_code == 0, created.output
    token = created.output.strip().splitlines()[-1]
    assert re.fullmatch(r"dpb_[0-9a-f]{12}_[A-Za-z0-9_-]{43}", token)
    listed = runner.invoke(cli(), ["leaderboard", "token", "list", "--database", database])
    assert "alice" in listed.output and token.split("_")[2] not in listed.output
    good = tmp_path / "results.json"
    good.write_text(json.dumps(lb_results["random"]))
    bad_split = copy.deepcopy(lb_results["random-1"])
    bad_split["provenance"]["split_sha256"]["synthetic-Necrosis"] = "f" * 64
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(bad_split))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "dpbench", "serve", "--pool", str(lb_pool), "--database",
                               database, "--port", str(port), "--bootstrap", "100"], env=ENV,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for _ in range(300):
            try:
                if http(f"{url}/healthz", timeout=2).status == 200:
                    break
            except OSError:
                time.sleep(0.1)
            assert server.poll() is None, server.stdout.read() if server.stdout else ""
        accepted = dpbench("submit", str(good), "--server", url, "--token", token,
                           "--pretraining-data", "ImageNet-1k")
        assert accepted.returncode == 0, accepted.stderr
        assert "accepted" in accepted.stdout and "verified" in accepted.stdout and "rank 1 of 1" in accepted.stdout
        rejected = dpbench("submit", str(bad), "--server", url, "--token", token)
        lines = [line for line in rejected.stderr.splitlines() if line.strip()]
        assert rejected.returncode == 1 and len(lines) == 1, rejected.stderr
        assert "rejected (HTTP 409, split_mismatch)" in lines[0] and "synthetic-Necrosis" in lines[0]
        prefix = token.split("_")[1]
        assert runner.invoke(cli(), ["leaderboard", "token", "revoke", prefix, "--database", database]).exit_code == 0
        revoked = dpbench("submit", str(bad), "--server", url, "--token", token)
        assert revoked.returncode == 1 and "revoked" in revoked.stderr
        boards = http(f"{url}/api/v1/boards").json["boards"]
        assert sorted(b["protocol"] for b in boards) == ["finetune", "linear"]
        assert sum(b["submissions"] for b in boards) == 1
        (linear,) = http(f"{url}/api/v1/boards?protocol=linear").json["boards"]
        assert linear["submissions"] == 1
        page = http(f"{url}/boards/{linear['slug']}").text
        assert 'data-testid="protocol"' in page and "finetune" in page
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("href", "src") and value and not value.startswith(("https://", "data:")):
                self.links.append(value)


def test_static_export_is_the_same_board(board: Board, tmp_path: Path) -> None:
    token = board.token()
    for i, name in enumerate(("random", "random-1", "random-2")):
        assert board.submit(board.results[name], token, f"k{i}").status == 201
    board.submit(variant(board.results["random"], "random", board.labels, noise=0.1), token, "newer")
    out = tmp_path / "site"
    settings = Settings(database_url=board.db.url, bootstrap=200)
    written = export_site(board.db, out, settings)
    assert all(p.resolve().is_relative_to(out.resolve()) for p in written)
    base = out / "boards" / board.slug
    for name in ("index.html", "board.json", "board.csv", "cd.png"):
        assert (base / name).is_file(), name
    live = board.get(f"/api/v1/boards/{board.slug}").json
    exported = json.loads((base / "board.json").read_text())
    assert [(r["id"], r["rank"]) for r in exported["rows"]] == [(r["id"], r["rank"]) for r in live["rows"]]
    assert len(list((base / "submissions").glob("*.html"))) == 4  # every submission, superseded ones too
    for page in [out / "index.html", base / "index.html", *(base / "submissions").glob("*.html")]:
        parser = _Links()
        parser.feed(page.read_text())
        for link in parser.links:
            target = (page.parent / link).resolve()
            assert target.is_file(), f"{page.name}: {link}"
    runner = CliRunner()
    again = runner.invoke(cli(), ["leaderboard", "export", str(tmp_path / "cli-site"), "--database", board.db.url,
                                  "--bootstrap", "50"])
    assert again.exit_code == 0, again.output
    assert (tmp_path / "cli-site" / "boards" / board.slug / "index.html").is_file()


def test_demo_round_trip(tmp_path: Path, lb_pool: Path, lb_results: dict[str, Any]) -> None:
    files = []
    for name in ("random", "random-1"):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(lb_results[name]))
        files.append(str(path))
    out = tmp_path / "demo"
    run = CliRunner().invoke(cli(), ["leaderboard", "demo", "--pool", str(lb_pool), "--out", str(out),
                                     "--bootstrap", "50", *files])
    assert run.exit_code == 0, run.output
    assert run.output.count("verified, submission") == 2 and "board: http://127.0.0.1:" in run.output
    assert (out / "site" / "index.html").is_file() and (out / "leaderboard.sqlite").is_file()
