"""The comparison baselines (§IV-F): ImageNet transfer, training from scratch, joint training — tiny CPU runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from dpbench_baselines.joint import joint_baseline
from dpbench_baselines.others import imagenet_baseline, scratch_baseline
from dpbench_baselines.train import PretrainConfig

from dpbench.errors import DpbenchError
from dpbench.evaluation.finetune import FinetuneConfig
from dpbench.evaluation.run import EvalConfig
from dpbench.pool.read import task_dataset
from dpbench.results import load_results
from tests.conftest import SMALL_TASKS, run_cli


def _test_keys(root: Path, task: str) -> set[str]:
    return {meta["key"] for _, _, meta in task_dataset(root, task, "test")}


def _check_files(out: Path, method: str) -> None:
    results = load_results(out / "results.json")
    assert results.method == method
    assert "<html" in (out / "report.html").read_text().lower()


def test_scratch_finetunes_a_random_torchvision_model(small_pool: Path, tmp_path: Path) -> None:
    config = EvalConfig(protocol="linear", device="cpu", seeds=(0,),  # scratch always fine-tunes
                        finetune=FinetuneConfig(lrs=(1e-3,), epochs=1, max_batches=2, augment=False))
    results = scratch_baseline(small_pool, tmp_path, config, arch="resnet18", tasks=[SMALL_TASKS[0]], size=32)
    _check_files(tmp_path, "scratch-resnet18")
    assert results.provenance.encoder == "torchvision:resnet18:none with a random initialisation drawn per seed"
    assert results.provenance.protocol == "finetune"
    [score] = results.scores
    assert score.task == SMALL_TASKS[0] and 0.0 <= score.score <= 1.0
    assert set(score.predictions or {}) == _test_keys(small_pool, SMALL_TASKS[0])


def test_imagenet_without_cached_weights_is_one_clear_error(small_pool: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    with pytest.raises(DpbenchError, match="TORCH_HOME"):
        imagenet_baseline(small_pool, tmp_path / "out", EvalConfig(device="cpu"), arch="resnet18")
    assert not (tmp_path / "out" / "results.json").exists()


def test_imagenet_linear_transfer_from_cached_weights(small_pool: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from torchvision.models import resnet18

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    cache = tmp_path / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.manual_seed(7)
    torch.save(resnet18().state_dict(), cache / "resnet18-f37072fd.pth")
    out = tmp_path / "out"
    results = imagenet_baseline(small_pool, out, EvalConfig(probe="fast", device="cpu"), arch="resnet18",
                                tasks=SMALL_TASKS[:2], size=32)
    _check_files(out, "imagenet-resnet18-linear")
    assert results.provenance.encoder == "torchvision:resnet18:IMAGENET1K_V1"
    assert results.provenance.protocol == "linear"
    assert [s.task for s in results.scores] == SMALL_TASKS[:2]
    assert all(0.0 <= s.score <= 1.0 and s.confusion for s in results.scores)


def test_joint_scores_each_target_with_its_own_head(small_pool: Path, tmp_path: Path) -> None:
    targets = [SMALL_TASKS[0], SMALL_TASKS[2]]  # binary (ROC AUC) and 3-class (accuracy)
    config = PretrainConfig(arch="tiny", weights="none", input_size=32, iterations=20, batch_size=8,
                            bn_adapt_batches=1, lr=0.01, device="cpu", buffer=16)
    results = joint_baseline(small_pool, tmp_path, config, targets, batch_size=16)
    _check_files(tmp_path, "joint-tiny")
    assert results.provenance.protocol == "joint"
    assert set(str(results.provenance.settings["train_tasks"]).split(",")) == set(SMALL_TASKS)  # targets included
    assert [s.task for s in results.scores] == targets
    for s in results.scores:
        assert 0.0 <= s.score <= 1.0
        predictions = s.predictions or {}
        assert set(predictions) == _test_keys(small_pool, s.task)
        n_classes = 3 if s.task == SMALL_TASKS[2] else 2
        assert all(len(p) == n_classes and abs(sum(p) - 1) < 1e-4 for p in predictions.values())
        assert s.confusion is not None and sum(map(sum, s.confusion)) == len(predictions)
    metrics = (tmp_path / "train" / "metrics.jsonl").read_text().splitlines()
    assert json.loads(metrics[-1])["iteration"] == 20
    # Rerunning the same command reuses the finished training run and gives the same scores.
    again = joint_baseline(small_pool, tmp_path, config, targets, batch_size=16)
    assert [s.score for s in again.scores] == [s.score for s in results.scores]


def test_joint_default_targets_are_the_pools_evaluation_tasks(small_pool: Path, tmp_path: Path) -> None:
    config = PretrainConfig(arch="tiny", weights="none", input_size=32, iterations=2, batch_size=4,
                            bn_adapt_batches=0, device="cpu", buffer=8)
    results = joint_baseline(small_pool, tmp_path, config)
    assert [s.task for s in results.scores] == ["synthetic-Necrosis"]  # the only evaluate-role task built
    with pytest.raises(DpbenchError, match="not built"):
        joint_baseline(small_pool, tmp_path / "x", config, ["synthetic-MouseLba"])


def test_baseline_cli_smoke(small_pool: Path, tmp_path: Path) -> None:
    result = run_cli("baseline", "joint", "--data", str(small_pool), "--arch", "tiny", "--weights", "none", "--size",
                     "32", "--iterations", "2", "--batch-size", "4", "--bn-adapt-batches", "0", "--device", "cpu",
                     "--workers", "0", "--lrs", "0.01", "--taus", "1", "--warmups", "off", "--seeds", "1",
                     "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert load_results(tmp_path / "results.json").method == "joint-tiny"
    bad = run_cli("baseline", "imagenet", "--data", str(small_pool), "--protocol", "nope", "--out", str(tmp_path))
    assert bad.returncode == 2 and "--protocol 'nope' is not one of linear, finetune" in bad.stderr
    assert "Traceback" not in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


def test_joint_selects_each_targets_iteration_on_its_validation_split(small_pool: Path, tmp_path: Path) -> None:
    from dpbench_baselines.joint import EVALS, JOINT_RUN

    from dpbench.evaluation.metrics import score

    targets = [SMALL_TASKS[0], SMALL_TASKS[2]]
    config = PretrainConfig(arch="tiny", weights="none", input_size=32, iterations=12, batch_size=8,
                            checkpoint_every=4, bn_adapt_batches=0, lr=0.05, device="cpu", buffer=16)
    results = joint_baseline(small_pool, tmp_path, config, targets, batch_size=32)
    files = sorted((tmp_path / JOINT_RUN / EVALS).glob("iter-*.json"))
    evals = [json.loads(f.read_text()) for f in files]
    assert [e["iteration"] for e in evals] == [4, 8, 12]
    for s in results.scores:
        metric = "roc_auc" if s.task == SMALL_TASKS[0] else "accuracy"
        val = [score(metric, np.asarray(e["tasks"][s.task]["val"]["labels"]),
                     np.asarray(e["tasks"][s.task]["val"]["probs"])) for e in evals]
        best = int(np.argmax(val))  # first maximum: ties keep the earlier checkpoint
        assert s.selected == {"iteration": float(evals[best]["iteration"]), "val_score": round(val[best], 6)}
        test = evals[best]["tasks"][s.task]["test"]
        assert s.score == score(metric, np.asarray(test["labels"]), np.asarray(test["probs"]))
        assert set(s.predictions or {}) == set(test["keys"])


def test_joint_selection_rules() -> None:
    from dpbench_baselines.joint import _select

    def record(iteration: int, val_probs: list[list[float]] | None) -> dict[str, Any]:
        splits: dict[str, Any] = {"test": {"keys": ["a"], "labels": [0], "probs": [[1.0, 0.0]]}}
        if val_probs is not None:
            splits["val"] = {"keys": ["v0", "v1"], "labels": [0, 1], "probs": val_probs}
        return {"iteration": iteration, "tasks": {"synthetic-Necrosis": splits}}

    good, bad = [[0.9, 0.1], [0.2, 0.8]], [[0.2, 0.8], [0.9, 0.1]]
    chosen, selected = _select("synthetic-Necrosis", [record(1, bad), record(2, good), record(3, good)])
    assert chosen["iteration"] == 2 and selected == {"iteration": 2.0, "val_score": 1.0}  # tie: the earlier one
    chosen, selected = _select("synthetic-Necrosis", [record(1, None), record(2, None)])
    assert chosen["iteration"] == 2 and selected == {"iteration": 2.0}  # no validation split: the final model


def test_joint_is_tuned_on_the_grid_and_selected_on_validation(small_pool: Path, tmp_path: Path) -> None:
    from dpbench_baselines.joint_grid import joint_grid
    from dpbench_baselines.sweep_spec import Grid

    base = PretrainConfig(weights="none", input_size=32, iterations=6, batch_size=8, checkpoint_every=3,
                          warmup_iterations=2, bn_adapt_batches=0, device="cpu", buffer=16)
    grid = Grid(lrs=(0.05, 0.001), taus=(1.0,), archs=("tiny",), warmups=(True, False))
    targets = [SMALL_TASKS[0], SMALL_TASKS[2]]
    results = joint_grid(small_pool, tmp_path, base, grid, (0, 1), targets, batch_size=32)
    selection = json.loads((tmp_path / "selection.json").read_text())
    assert len(list((tmp_path / "runs").iterdir())) == 4 * 2  # every grid point × seed trained
    for task in targets:
        # recompute the choice from each run's stored validation scores
        means = {}
        for config in grid.configs():
            values = [s.selected["val_score"] for seed in (0, 1) for s in load_results(
                tmp_path / "runs" / f"{config.key}-seed{seed}" / "results.json").scores if s.task == task]
            means[config.key] = round(float(np.mean(values)), 4)
        best = max(means.values())
        expected = next(k for k, v in means.items() if v >= best)
        assert selection["tasks"][task]["chosen"] == expected
        assert results.provenance.settings[f"selected_{task}"] == expected
        assert sorted(s.seed for s in results.scores if s.task == task) == [0, 1]
    assert results.method == "joint-tiny"
