"""Fixtures of the leaderboard tests: real results files, a PostgreSQL cluster, and a live server per test on
SQLite and on PostgreSQL (the ``backend`` parameter), each stopped at the end."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from dpbench.encoders import load_encoder
from dpbench.evaluation.rescore import test_labels
from dpbench.evaluation.run import EvalConfig, evaluate
from dpbench.pool.manifest import load_manifest
from tests.conftest import SMALL_TASKS
from tests.leaderboard.helpers import require, variant
from tests.leaderboard.postgres import Cluster, _run_as, pg_bin, start_cluster, stop_cluster

if TYPE_CHECKING:
    from tests.leaderboard.harness import Board

EXTRA = ("fastapi", "sqlalchemy", "alembic", "uvicorn", "jinja2", "psycopg")
MISSING = [m for m in EXTRA if importlib.util.find_spec(m) is None]
if MISSING:  # a user's machine without the extra skips these tests; CI must have it
    if os.environ.get("CI", "").lower() == "true":
        raise RuntimeError(f"CI must install the leaderboard extra (missing: {', '.join(MISSING)})")
    collect_ignore_glob = ["test_*.py"]

ENCODERS = {"random": "random", "random-1": "random:1"}


@pytest.fixture(scope="session")
def lb_pool(small_pool: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the shared small pool: serving and evaluating write a verification cache into the pool, and the
    shared one must stay untouched."""
    root = tmp_path_factory.mktemp("lb-pool") / "built"
    shutil.copytree(small_pool, root)
    return root


@pytest.fixture(scope="session")
def lb_labels(lb_pool: Path) -> dict[str, dict[str, int]]:
    return {t.name: test_labels(lb_pool, t.name) for t in load_manifest(lb_pool).tasks}


@pytest.fixture(scope="session")
def lb_results(lb_pool: Path, tmp_path_factory: pytest.TempPathFactory,
               lb_labels: dict[str, dict[str, int]]) -> dict[str, dict[str, Any]]:
    """Three methods' results.json (as dicts) on the small pool: two seeded random conv nets evaluated with the
    fast probe on two seeds, and a third whose predictions are the first's plus noise (scores recomputed)."""
    out: dict[str, dict[str, Any]] = {}
    for name, spec in ENCODERS.items():
        encoder = load_encoder(spec)
        encoder = dataclasses.replace(encoder, input=dataclasses.replace(encoder.input, size=64))
        folder = tmp_path_factory.mktemp(f"results-{name}")
        evaluate(encoder, lb_pool, SMALL_TASKS, EvalConfig(probe="fast", seeds=(0, 1)), folder, name=name)
        out[name] = json.loads((folder / "results.json").read_text())
    out["random-2"] = variant(out["random"], "random-2", lb_labels, noise=0.5, seed=2)
    return out


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    """One PostgreSQL cluster for the session (skipped on a machine without it; a failure in CI)."""
    bindir = pg_bin()
    require(bindir is not None, "PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    require(_run_as() != "missing", "running as root without a 'postgres' user to run the server")
    assert bindir is not None
    cluster = start_cluster(bindir)
    try:
        yield cluster
    finally:
        stop_cluster(cluster)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database URL on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'leaderboard.sqlite'}"
        return
    cluster: Cluster = request.getfixturevalue("pg_cluster")
    with cluster.database() as url:
        yield url


@pytest.fixture
def board(db_url: str, lb_pool: Path, lb_results: dict[str, dict[str, Any]],
          lb_labels: dict[str, dict[str, int]]) -> Iterator[Board]:
    """A live server (127.0.0.1, free port) over a fresh database of each backend."""
    from tests.leaderboard.harness import start_board

    started = start_board(db_url, lb_pool, lb_results, lb_labels)
    try:
        yield started
    finally:
        started.server.stop()
        started.db.dispose()
