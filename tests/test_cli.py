"""The CLI as a user runs it: tables, task cards, build/verify, one-line errors, plug-ins, generated docs."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dpbench.cli.taskdocs import render_task_docs
from dpbench.pool.manifest import load_manifest
from tests.conftest import run_cli

DOCS = Path(__file__).resolve().parents[1] / "docs"


def one_clear_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    for needle in needles:
        assert needle in lines[0]


def test_tasks_table_filters_and_card() -> None:
    result = run_cli("tasks", "--pool", "mormont2020", "--availability", "private")
    assert result.returncode == 0
    assert "10 task(s)" in result.stdout and "Glomeruli" in result.stdout and "Camelyon16" not in result.stdout
    result = run_cli("tasks", "--licence", "CC0-1.0", "--availability", "public")
    assert "Camelyon16" in result.stdout and "Bach18Micro" not in result.stdout
    card = run_cli("tasks", "show", "breast1")
    assert card.returncode == 0
    for needle in ("Breast2", "central", "14,055", "proprietary"):
        assert needle in card.stdout
    one_clear_error(run_cli("tasks", "show", "Brest1"), "unknown task", "Breast1")
    one_clear_error(run_cli("tasks", "--availability", "nope"), "no task matches")


def test_pools_and_plugins() -> None:
    result = run_cli("pools")
    assert "mormont2020" in result.stdout and "882,800" in result.stdout and "synthetic" in result.stdout
    loto = run_cli("baselines", "loto", "--pool", "mormont2020")
    assert loto.returncode == 0 and "Breast1, Breast2" in loto.stdout
    one_clear_error(run_cli("baselines", "loto", "--pool", "nope"), "unknown pool")


def test_core_does_not_import_plugins() -> None:
    code = ("import sys, dpbench.cli, dpbench.build, dpbench.pool.read; "
            "sys.exit(any(m.split('.')[0] in ('baselines', 'leaderboard') for m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_build_and_verify_from_the_cli(small_pool: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli"
    result = run_cli("build", "--pool", "synthetic", "--out", str(out), "--tasks", "synthetic-Necrosis",
                     "--shard-size", "32", "--workers", "1")
    assert result.returncode == 0, result.stderr
    assert "SYNTHETIC" in result.stdout and "synthetic-Necrosis" in result.stdout
    assert (out / "synthetic-Necrosis" / "train-00000.tar").read_bytes() == (
        small_pool / "synthetic-Necrosis" / "train-00000.tar").read_bytes()
    assert "OK" in run_cli("verify", str(out)).stdout
    bad = load_manifest(out).shards[1].path
    (out / bad).write_bytes((out / bad).read_bytes()[:-700])
    result = run_cli("verify", str(out))
    assert result.returncode == 1 and bad in result.stdout and "dpbench build" in result.stdout
    assert "1 of" in result.stderr and "Traceback" not in result.stderr


def test_bad_input_gives_one_line(tmp_path: Path, small_pool: Path) -> None:
    one_clear_error(run_cli("build", "--pool", "mormont2021", "--out", str(tmp_path / "x")), "unknown pool")
    one_clear_error(run_cli("build", "--pool", "synthetic", "--tasks", "Lung", "--out", str(tmp_path / "x")),
                    "not in pool")
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    one_clear_error(run_cli("build", "--tasks", "synthetic-Necrosis", "--out", str(blocker / "o")),
                    "cannot write to")
    one_clear_error(run_cli("build", "--pool", "mormont2020", "--tasks", "Lung", "--out", str(tmp_path / "r")),
                    "no --raw folder given")
    one_clear_error(run_cli("verify", str(tmp_path)), "no manifest.json")
    broken = tmp_path / "broken"
    shutil.copytree(small_pool, broken)
    (broken / "manifest.json").write_text("{not json")
    one_clear_error(run_cli("verify", str(broken)), "not a valid dpbench manifest")
    assert (broken / "synthetic-Necrosis" / "train-00000.tar").read_bytes() == (
        small_pool / "synthetic-Necrosis" / "train-00000.tar").read_bytes()


@pytest.mark.parametrize("page", sorted(render_task_docs()))
def test_generated_docs_are_up_to_date(page: str) -> None:
    """docs/tasks is generated from the registry; regenerate with `make docs` when metadata changes."""
    assert (DOCS / page).read_text() == render_task_docs()[page], f"run `make docs` ({page} is stale)"
