"""Every stored prediction of every protocol reproduces its reported score exactly, from the pool's test labels."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from dpbench.encoders import load_encoder
from dpbench.evaluation.finetune import FinetuneConfig
from dpbench.evaluation.rescore import rescore
from dpbench.evaluation.run import EvalConfig, evaluate
from dpbench.results import Results, load_results
from tests.conftest import SMALL_TASKS

CONFIGS = {
    "linear-svm": EvalConfig(probe="svm", seeds=(0, 1)),
    "linear-fast": EvalConfig(probe="fast", seeds=(0,)),
    "finetune": EvalConfig(protocol="finetune", device="cpu", finetune=FinetuneConfig(
        lrs=(1e-3, 1e-4), epochs=2, batch_size=32, max_batches=2, augment=False)),
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_stored_predictions_reproduce_every_score(small_pool: Path, tmp_path: Path, name: str) -> None:
    encoder = load_encoder("random")
    encoder = dataclasses.replace(encoder, input=dataclasses.replace(encoder.input, size=64))
    tasks = SMALL_TASKS if name != "finetune" else SMALL_TASKS[:2]
    evaluate(encoder, small_pool, tasks, CONFIGS[name], tmp_path)
    results = load_results(tmp_path / "results.json")  # what a board receives: the file, not the objects
    checked = rescore(results, small_pool)
    assert len(checked) == len(results.scores) > 0
    assert [(c.task, c.problem) for c in checked if not c.matches] == []
    for entry in results.scores:
        assert entry.selection is not None and len(entry.selection.curve) == len(entry.selection.grid)
        assert entry.selection.value in entry.selection.grid


def test_a_tampered_prediction_or_score_is_caught(small_pool: Path, tmp_path: Path) -> None:
    encoder = load_encoder("random")
    encoder = dataclasses.replace(encoder, input=dataclasses.replace(encoder.input, size=64))
    evaluate(encoder, small_pool, SMALL_TASKS[:1], EvalConfig(probe="fast"), tmp_path)
    raw = json.loads((tmp_path / "results.json").read_text())
    entry = raw["scores"][0]
    reported = entry["score"]
    entry["score"] = reported - 0.01 if reported > 0.5 else reported + 0.01
    assert not rescore(Results.model_validate(raw), small_pool)[0].matches
    entry["score"] = reported
    assert rescore(Results.model_validate(raw), small_pool)[0].matches
    key = sorted(entry["predictions"])[0]
    del entry["predictions"][key]
    [checked] = rescore(Results.model_validate(raw), small_pool)
    assert checked.problem is not None and "1 missing" in checked.problem
