"""``dpbench leaderboard demo``: the whole round trip on one machine, for ``make demo``.

Start the service on a fresh SQLite file and a free loopback port, create a token, submit each results file over
HTTP with the same client as ``dpbench submit``, print the board's address and top rows, export the static site,
and stop the service.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dpbench.errors import DpbenchError
from dpbench_leaderboard.client import SubmitResult, request, submit
from dpbench_leaderboard.config import Settings
from dpbench_leaderboard.export import export_site
from dpbench_leaderboard.server import BackgroundServer, build_service
from dpbench_leaderboard.tokens import create_token


@dataclass(frozen=True)
class DemoRun:
    """What the demo did: the board's URL (live while it ran), each submission's answer, the top rows, the site."""

    url: str
    results: list[SubmitResult]
    rows: list[dict[str, object]]
    site: Path
    files: int


def run_demo(pool: Path, results: list[Path], out: Path, bootstrap: int = 1000) -> DemoRun:
    """Serve ``pool`` from ``out/leaderboard.sqlite``, submit ``results``, export the board to ``out/site``."""
    out.mkdir(parents=True, exist_ok=True)
    database = out / "leaderboard.sqlite"
    for stale in (database, database.with_name(database.name + "-wal"), database.with_name(database.name + "-shm")):
        stale.unlink(missing_ok=True)
    settings = Settings(database_url=f"sqlite:///{database.resolve()}", bootstrap=bootstrap)
    service = build_service(settings, pool, ("linear",))
    token = create_token(service.db, "demo", ["submit"], days=1, quota=100, note="make demo").secret
    answers: list[SubmitResult] = []
    with BackgroundServer(service) as server:
        for path in results:
            answer = submit(path, server.url, token, card={"pretraining_data": "see the demo's Makefile"})
            if not answer.accepted:
                raise DpbenchError(f"{path} was refused: {answer.reason}")
            answers.append(answer)
        slug = str(answers[0].body["board"]) if answers else sorted(service.accepting)[0]
        board = request("GET", f"{server.url}/api/v1/boards/{slug}")
        url = f"{server.url}/boards/{slug}"
    rows = list(board.body.get("rows", []))
    site = out / "site"
    written = export_site(service.db, site, settings, service.accepting)
    service.close()
    return DemoRun(url, answers, rows, site, len(written))
