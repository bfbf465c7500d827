"""The command line a newcomer meets: a guessable tree with hidden old spellings, output that scripts can read
(``--format``; a pipe never truncates), ``dpbench doctor``, ``eval`` reading the pool from the manifest, and
``docs/cli.md`` generated from the app."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from dpbench.cli import doctor
from dpbench.cli.app import app, load_plugins
from dpbench.cli.clidoc import render_cli_doc
from dpbench.tasks.registry import all_tasks, get_pool, pools
from tests.conftest import run_cli
from tests.test_cli import one_clear_error

DOCS = Path(__file__).resolve().parents[1] / "docs"


def piped(*args: str, columns: int = 80) -> subprocess.CompletedProcess[str]:
    """Run the CLI with its output piped, in an 80-column terminal's environment."""
    env = {**os.environ, "COLUMNS": str(columns), "TERM": "xterm"}
    return subprocess.run([sys.executable, "-m", "dpbench", *args], capture_output=True, text=True, env=env,
                          timeout=300)


def test_a_pipe_gets_whole_names() -> None:
    out = piped("tasks").stdout
    lines = [line for line in out.splitlines() if "MitosAtypia14" in line]
    assert len(lines) == 2  # MitosAtypia14 and synthetic-MitosAtypia14, neither cut nor folded
    assert all(name in out for name in all_tasks())
    assert "synthetic-ProliferativePattern" in out and "…" not in out


def test_formats_are_the_registry() -> None:
    rows = list(csv.DictReader(io.StringIO(piped("tasks", "--pool", "synthetic", "--format", "csv").stdout)))
    assert [r["task"] for r in rows] == list(get_pool("synthetic").tasks)
    assert all(int(r["train"]) > 0 for r in rows)
    listed = json.loads(piped("pools", "--format", "json").stdout)
    assert [p["pool"] for p in listed] == list(pools())
    assert next(p for p in listed if p["pool"] == "mormont2020")["images"] == 882_800
    sources = json.loads(piped("sources", "list", "--format", "json").stdout)
    camelyon = next(s for s in sources if s["source"] == "camelyon16")
    assert camelyon["tasks"] == ["Camelyon16"] and isinstance(camelyon["converter"], bool)
    one_clear_error(run_cli("tasks", "--format", "jsno"), "--format", "did you mean --format json")


def test_rank_formats_keep_stdout_for_data(tmp_path: Path) -> None:
    table = tmp_path / "scores.csv"
    table.write_text("method,task,seed,score,metric\n" + "".join(
        f"{m},{t},0,{s},roc_auc\n" for m, base in (("a", 0.9), ("b", 0.7), ("c", 0.5)) for t, s in
        (("x", base), ("y", base - 0.05), ("z", base - 0.1))))
    board = list(csv.DictReader(io.StringIO(run_cli("rank", str(table), "--bootstrap", "0", "--format",
                                                    "csv").stdout)))
    assert [r["method"] for r in board] == ["a", "b", "c"] and [r["rank"] for r in board] == ["1", "2", "3"]
    result = run_cli("rank", str(table), "--bootstrap", "0", "--format", "json", "--out", str(tmp_path / "r"))
    report = json.loads(result.stdout)
    assert report == json.loads((tmp_path / "r" / "ranking.json").read_text())
    assert result.stdout == (tmp_path / "r" / "ranking.json").read_text()
    assert "wrote" in result.stderr and "wrote" not in result.stdout


def test_tree_reads_as_verbs_and_old_spellings_stay_hidden() -> None:
    top = run_cli("--help").stdout
    listed = {line.split()[1] for line in top.splitlines() if line.startswith("│ ") and line[2] != " "}
    assert {"pretrain", "baseline", "leaderboard", "serve", "submit", "doctor", "eval", "rank"} <= listed, listed
    assert not {"baselines", "task"} & listed
    assert run_cli("baselines", "loto", "--help").returncode == 0  # the old spelling still works
    one_clear_error(run_cli("baseline", "imagenet", "--data", ".", "--protocol", "linaer"), "did you mean")


def test_cli_doc_is_generated_from_the_app() -> None:
    load_plugins()
    page = render_cli_doc(typer.main.get_command(app))
    assert (DOCS / "cli.md").read_text() == page, "run `dpbench docs --out docs` (docs/cli.md is stale)"
    assert "## dpbench eval" in page and "`--offline`" in page and "## dpbench baselines" not in page
    assert "`dpbench baselines`" in page  # named once, as an old spelling


def test_doctor_reports_and_says_how_to_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = run_cli("doctor", "--data", str(tmp_path / "not-yet" / "data"), "--hub-timeout", "0", "--format", "json")
    assert result.returncode == 0, result.stderr
    checks = {c["component"]: c for c in json.loads(result.stdout)}
    assert checks["python"]["state"] == "ok" and sys.version.split()[0] in checks["python"]["detail"]
    assert checks["torch"]["state"] == "ok" and "CUDA" in checks
    disk = checks[f"disk at {tmp_path / 'not-yet' / 'data'}"]
    assert "GB free" in disk["detail"] and str(tmp_path) in disk["detail"]  # the nearest existing folder
    monkeypatch.setattr(doctor, "_version", lambda module: None)
    missing = {c.component: c for c in doctor.extra_checks()}
    assert missing["ray"].state == "missing" and "dpbench-pathology[ray]" in missing["ray"].fix
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert "offline" in doctor.hub_check(1.0).detail


def test_eval_reads_the_pool_from_the_manifest(small_pool: Path, tmp_path: Path) -> None:
    result = run_cli("eval", "--encoder", "random", "--input-size", "32", "--probe", "fast", "--no-cache",
                     "--tasks", "synthetic-Necrosis", "--data", str(small_pool), "--out", str(tmp_path / "r"),
                     "--offline")
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "r" / "results.json").read_text())["provenance"]["pool"] == "synthetic"
    wrong = run_cli("eval", "--encoder", "random", "--pool", "mormont2020", "--data", str(small_pool))
    one_clear_error(wrong, "holds pool 'synthetic'", "drop --pool")
    assert "dpbench build --pool" not in wrong.stderr


def test_doctor_names_each_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a GPU here, the CUDA branch runs on a stand-in: CUDA and cuDNN versions, each GPU's name and memory."""
    import types

    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "get_device_properties",
                        lambda i: types.SimpleNamespace(name=f"Card {i}", total_memory=(80 + i) * 2**30))
    monkeypatch.setattr(torch.version, "cuda", "12.6")
    monkeypatch.setattr(torch.backends.cudnn, "is_available", lambda: True)
    monkeypatch.setattr(torch.backends.cudnn, "version", lambda: 90100)
    checks = {c.component: c for c in doctor.torch_checks()}
    assert checks["CUDA"].detail == "12.6, 2 GPU(s)" and checks["cuDNN"].detail == "90100"
    assert checks["GPU 0"].detail == "Card 0, 80.0 GiB" and checks["GPU 1"].detail == "Card 1, 81.0 GiB"
