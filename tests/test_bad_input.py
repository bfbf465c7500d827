"""Bad input to eval, rank and check-encoder: one ``error:`` line naming the fix, never a traceback, nothing lost."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from dpbench.encoders import load_encoder
from dpbench.evaluation.features import extract_splits
from dpbench.results import Provenance, Results, TaskScore
from tests.conftest import run_cli, tree_bytes

NEC = "synthetic-Necrosis"
ROOT = os.geteuid() == 0 if hasattr(os, "geteuid") else False


def one_clear_error(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    """Assert a non-zero exit with exactly one ``error:`` line on stderr holding every needle; return that line."""
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def results_file(folder: Path, method: str, scores: dict[str, float], metric: str = "roc_auc") -> Path:
    """A results.json of one method, one seed per task."""
    provenance = Provenance(dpbench_version="0", pool="synthetic", pool_version="x")
    results = Results(method=method, provenance=provenance,
                      scores=[TaskScore(task=t, seed=0, metric=metric, score=s) for t, s in scores.items()])
    path = folder / f"{method}.json"
    path.write_text(results.model_dump_json())
    return path


def two_methods(tmp_path: Path) -> list[str]:
    return [str(results_file(tmp_path, "a", {"x": 0.9, "y": 0.8, "z": 0.7})),
            str(results_file(tmp_path, "b", {"x": 0.6, "y": 0.9, "z": 0.5}))]


def own_pool(small_pool: Path, tmp_path: Path) -> Path:
    data = tmp_path / "pool"
    shutil.copytree(small_pool, data)
    return data


def untouched(data: Path, small_pool: Path) -> bool:
    """No work happened on the copy ``data``: no feature cache, no verification record, nothing new."""
    return tree_bytes(data) == tree_bytes(small_pool)


# ---- 1. eval: batch size and output folder are checked before any work ----

@pytest.mark.parametrize("value", ["0", "-3", "many"])
def test_eval_refuses_a_batch_size_below_one(small_pool: Path, tmp_path: Path, value: str) -> None:
    data, out = own_pool(small_pool, tmp_path), tmp_path / "res"
    result = run_cli("eval", "--encoder", "random", "--data", str(data), "--batch-size", value, "--out", str(out))
    one_clear_error(result, "--batch-size")
    assert not out.exists() and untouched(data, small_pool)


def test_eval_refuses_an_out_folder_under_a_file(small_pool: Path, tmp_path: Path) -> None:
    data = own_pool(small_pool, tmp_path)
    blocker = tmp_path / "notes.txt"
    blocker.write_text("keep me")
    result = run_cli("eval", "--encoder", "random", "--data", str(data), "--out", str(blocker / "res"))
    one_clear_error(result, "cannot write to", str(blocker / "res"), "--out")
    assert blocker.read_text() == "keep me" and untouched(data, small_pool)


@pytest.mark.skipif(ROOT, reason="root writes into read-only folders")
def test_eval_refuses_a_read_only_out_folder(small_pool: Path, tmp_path: Path) -> None:
    data, locked = own_pool(small_pool, tmp_path), tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        result = run_cli("eval", "--encoder", "random", "--data", str(data), "--out", str(locked / "res"))
    finally:
        locked.chmod(0o755)
    one_clear_error(result, "cannot write to", "--out")
    assert untouched(data, small_pool)


# ---- 2. rank: numeric options in range, output paths usable ----

@pytest.mark.parametrize(("option", "value"), [("--alpha", "2"), ("--alpha", "0"), ("--alpha", "1"),
                                               ("--alpha", "nan"), ("--seed", "-1"), ("--bootstrap", "-5"),
                                               ("--bootstrap", "ten")])
def test_rank_refuses_out_of_range_options(tmp_path: Path, option: str, value: str) -> None:
    line = one_clear_error(run_cli("rank", *two_methods(tmp_path), option, value), option)
    assert value in line


def test_rank_refuses_unusable_outputs_before_printing(tmp_path: Path) -> None:
    files = two_methods(tmp_path)
    blocker = tmp_path / "notes.txt"
    blocker.write_text("keep me")
    result = run_cli("rank", *files, "--bootstrap", "0", "--out", str(blocker / "out"))
    one_clear_error(result, "cannot write to", "--out")
    assert result.stdout == "" and blocker.read_text() == "keep me"
    result = run_cli("rank", *files, "--bootstrap", "0", "--plot", str(tmp_path / "cd.txt"))
    one_clear_error(result, "--plot", "png")
    assert result.stdout == ""


# ---- 3. rank: a task that only one method has, under each documented policy ----

def test_rank_ranks_a_task_only_one_method_has_under_each_policy(tmp_path: Path) -> None:
    files = [str(results_file(tmp_path, "a", {"x": 0.9, "y": 0.8, "z": 0.7})),
             str(results_file(tmp_path, "b", {"x": 0.6, "y": 0.9}))]
    one_clear_error(run_cli("rank", *files, "--bootstrap", "0"), "b has no score on z", "--missing")

    def board(*options: str) -> dict[str, dict[str, float]]:
        out = tmp_path / "-".join(options)
        result = run_cli("rank", *files, "--bootstrap", "50", "--out", str(out), *options)
        assert result.returncode == 0, result.stderr
        report = json.loads((out / "ranking.json").read_text())
        return {row["method"]: row for row in report["board"]}

    worst = board("--missing", "worst")  # b's missing z counts as rank 2, behind a
    assert worst["a"]["score"] == pytest.approx(4 / 3) and worst["b"]["score"] == pytest.approx(5 / 3)
    available = board("--missing", "available")  # b averages over x and y only
    assert available["a"]["score"] == pytest.approx(4 / 3) and available["b"]["score"] == pytest.approx(1.5)
    assert available["b"]["coverage"] == pytest.approx(2 / 3)
    points = board("--method", "borda")  # z gives a 2 − 1 − 1 = 0 points... and b nothing
    assert points["a"]["score"] == 1.0 and points["b"]["score"] == 1.0
    for rows in (worst, available, points):
        assert all(1 <= row["rank_low"] <= row["rank_high"] <= 2 for row in rows.values())


# ---- 4. rank: scores outside the metric's range, NaN scores ----

def test_rank_refuses_a_score_outside_the_metrics_range(tmp_path: Path) -> None:
    good = results_file(tmp_path, "a", {"x": 0.9, "y": 0.8})
    bad = results_file(tmp_path, "b", {"x": 7.5, "y": 0.8})
    one_clear_error(run_cli("rank", str(good), str(bad)), str(bad), "task x", "7.5", "roc_auc", "[0, 1]")
    frame = pd.DataFrame([{"method": "c", "task": "x", "seed": 0, "score": "nan", "metric": "roc_auc"},
                          {"method": "c", "task": "y", "seed": 0, "score": 0.5, "metric": "roc_auc"}])
    frame.to_csv(tmp_path / "c.csv", index=False)
    one_clear_error(run_cli("rank", str(good), str(tmp_path / "c.csv")), str(tmp_path / "c.csv"), "task x", "nan")
    kappa = tmp_path / "kappa.csv"  # cohen_kappa's range is [-1, 1]: a negative score is legitimate
    pd.DataFrame([{"method": m, "task": t, "seed": 0, "score": s, "metric": "cohen_kappa"}
                  for m, s in (("p", -0.2), ("q", 0.4)) for t in ("x", "y")]).to_csv(kappa, index=False)
    assert run_cli("rank", str(kappa), "--bootstrap", "0").returncode == 0


# ---- 6. an encoder that runs out of memory on large batches ----

FILLS_UP = '''
import torch
from torch import nn

from dpbench.encoders import InputSpec


class FillsUp(nn.Module):
    """Encodes until AFTER images have gone through; then every batch above LIMIT images runs out of memory."""

    def __init__(self) -> None:
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            self.conv = nn.Conv2d(3, 8, 3)
        self.seen = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] > LIMIT and self.seen >= AFTER:
            ERROR
        self.seen += x.shape[0]
        return self.conv(x).mean(dim=(2, 3))


def build():
    return FillsUp(), InputSpec(size=32, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
'''
ERRORS = {"cuda-oom": 'raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")',
          "runtime-oom": 'raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 79.3 GiB total)")',
          "cpu-allocator": "torch.empty(10 ** 15)  # 4 PB, past any address space: torch's CPU allocator refuses it"}


def fills_up(tmp_path: Path, limit: int, after: int, error: str = "cuda-oom") -> str:
    """A ``python:`` spec of an encoder that fails on batches above ``limit`` once ``after`` images went through."""
    path = tmp_path / f"fills_up_{limit}_{after}_{error.replace('-', '_')}.py"
    code = FILLS_UP.replace("LIMIT", str(limit)).replace("AFTER", str(after)).replace("ERROR", ERRORS[error])
    path.write_text(code)
    return f"python:{path}:build"


@pytest.mark.parametrize("error", sorted(ERRORS))
def test_out_of_memory_mid_extraction_names_the_fix_and_keeps_finished_splits(
        small_pool: Path, tmp_path: Path, error: str) -> None:
    data, out = own_pool(small_pool, tmp_path), tmp_path / "res"
    spec = fills_up(tmp_path, limit=8, after=80, error=error)  # Necrosis: 80 train, 8 val, 16 test images
    result = run_cli("eval", "--encoder", spec, "--data", str(data), "--tasks", NEC, "--batch-size", "16",
                     "--out", str(out))
    one_clear_error(result, "out of memory", "batch of 16", "--batch-size 8", "cached")
    cache = data / ".cache" / "features"
    [kept] = list(cache.glob("*.npz"))  # the train split finished before the failing batch
    before = (kept.read_bytes(), kept.stat().st_mtime_ns)
    encoder = load_encoder(spec)
    seen = int(vars(encoder.module)["seen"])  # images the module encoded (the load-time probe included)
    pairs = [(NEC, "train"), (NEC, "val"), (NEC, "test")]
    found = extract_splits(encoder, data, pairs, batch_size=8, cache_dir=cache)  # the rerun with the fix
    assert [found[p].cached for p in pairs] == [True, False, False]
    assert int(vars(encoder.module)["seen"]) - seen == 8 + 16  # only val and test were encoded again
    assert (kept.read_bytes(), kept.stat().st_mtime_ns) == before and len(list(cache.glob("*.npz"))) == 3


GRADS_FILL_UP = '''
import torch
from torch import nn

from dpbench.encoders import InputSpec


class GradsFillUp(nn.Module):
    """Encodes features fine; a forward that records gradients (fine-tuning) asks torch's allocator for 4 PB."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() and self.training:
            torch.empty(10 ** 15)
        return self.conv(x).mean(dim=(2, 3))


def build():
    return GradsFillUp(), InputSpec(size=32, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
'''


def test_out_of_memory_while_fine_tuning_is_one_line_naming_the_fix(small_pool: Path, tmp_path: Path) -> None:
    data, out = own_pool(small_pool, tmp_path), tmp_path / "res"
    path = tmp_path / "grads_fill_up.py"
    path.write_text(GRADS_FILL_UP)
    result = run_cli("eval", "--encoder", f"python:{path}:build", "--data", str(data), "--tasks", NEC, "--protocol",
                     "finetune", "--epochs", "1", "--max-batches", "1", "--seeds", "1", "--device", "cpu",
                     "--out", str(out))
    one_clear_error(result, "out of memory", "can't allocate memory", "--batch-size")
    assert not (out / "results.json").exists()


def test_check_encoder_tries_the_batch_size_eval_will_use(tmp_path: Path) -> None:
    spec = fills_up(tmp_path, limit=8, after=0)
    result = run_cli("check-encoder", spec, "--device", "cpu")  # eval's default batch size: 64
    assert result.returncode == 1 and "Traceback" not in result.stdout + result.stderr
    assert "eval batch size" in result.stdout and "out of memory" in result.stdout
    assert "lower --batch-size" in result.stdout
    one_clear_error(result, "eval batch size")
    ok = run_cli("check-encoder", spec, "--device", "cpu", "--batch-size", "8")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "eval batch size" in ok.stdout and "all 7 checks passed" in ok.stdout
    one_clear_error(run_cli("check-encoder", spec, "--batch-size", "0"), "--batch-size")


# ---- 7. closed sets of values are typed choices; tiny p-values ----

def test_closed_option_values_are_choices_in_help_and_typos_are_one_line(tmp_path: Path) -> None:
    help_eval = run_cli("eval", "--help").stdout
    for choices in ("linear|finetune", "svm|fast", "fp32|bf16", "auto|cpu|cuda"):
        assert choices in help_eval, choices
    help_rank = run_cli("rank", "--help").stdout
    for choices in ("avg-rank|borda", "error|worst|available"):
        assert choices in help_rank, choices
    files = two_methods(tmp_path)
    one_clear_error(run_cli("rank", *files, "--method", "bord"), "--method", "borda")
    one_clear_error(run_cli("rank", *files, "--missing", "wrost"), "--missing", "worst")
    for option, typo, fix in (("--protocol", "linaer", "linear"), ("--probe", "svn", "svm"),
                              ("--precision", "bf61", "bf16"), ("--device", "cdua", "cuda")):
        one_clear_error(run_cli("eval", "--encoder", "random", option, typo), option, fix)


def test_a_p_value_that_rounds_to_zero_prints_as_below_one_in_a_million(tmp_path: Path) -> None:
    rows = [{"method": f"m{j}", "task": f"t{i}", "seed": 0, "score": 0.9 - 0.1 * j, "metric": "accuracy"}
            for i in range(30) for j in range(5)]
    pd.DataFrame(rows).to_csv(tmp_path / "ordered.csv", index=False)
    result = run_cli("rank", str(tmp_path / "ordered.csv"), "--bootstrap", "0")
    assert result.returncode == 0, result.stderr
    assert "p < 1e-6" in result.stdout and "p = 0)" not in result.stdout and "p = 0;" not in result.stdout
