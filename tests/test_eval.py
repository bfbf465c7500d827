"""Evaluation end to end on a small synthetic build: features and cache, probe results, fine-tuning, report."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from dpbench.encoders import Encoder, InputSpec, load_encoder
from dpbench.errors import DpbenchError
from dpbench.evaluation import run as run_module
from dpbench.evaluation.features import extract_splits
from dpbench.evaluation.finetune import FinetuneConfig, finetune
from dpbench.evaluation.report import render_report
from dpbench.evaluation.run import EvalConfig, evaluate
from dpbench.pool.manifest import load_manifest
from dpbench.results import load_results
from dpbench.tasks import get_task
from tests.conftest import SMALL_TASKS, run_cli


def small_random(seed: int = 0) -> Encoder:
    encoder = load_encoder(f"random:{seed}")
    return dataclasses.replace(encoder, input=dataclasses.replace(encoder.input, size=64))


def test_linear_protocol_results_and_report(small_pool: Path, tmp_path: Path) -> None:
    results = evaluate(small_random(), small_pool, None, EvalConfig(seeds=(0, 1)), tmp_path, name="rnd")
    assert {s.task for s in results.scores} == set(SMALL_TASKS)
    assert len(results.scores) == 2 * len(SMALL_TASKS)
    manifest = load_manifest(small_pool)
    for s in results.scores:
        task = get_task(s.task)
        assert 0.0 <= s.score <= 1.0 and s.metric == task.metric
        assert s.predictions is not None and len(s.predictions) == task.sizes.test.images
        assert all(len(v) == task.n_classes for v in s.predictions.values())
        assert s.confusion is not None and sum(map(sum, s.confusion)) == task.sizes.test.images
        assert s.selected["C"] in [10.0**e for e in range(-10, 1)]
    prov = results.provenance
    assert prov.pool == "synthetic" and prov.synthetic and prov.pool_version == manifest.pool_version
    assert prov.weights_sha256 == small_random().fingerprint() and prov.protocol == "linear"
    assert load_results(tmp_path / "results.json") == results
    page = render_report(results)
    assert "SYNTHETIC" in page and "data:image/png;base64," in page and page.count("<table class=cm>") == 3


def test_feature_cache_is_keyed_by_weights_and_precision(small_pool: Path, tmp_path: Path) -> None:
    pairs = [("synthetic-Necrosis", "train")]
    first = extract_splits(small_random(), small_pool, pairs, cache_dir=tmp_path)[pairs[0]]
    again = extract_splits(small_random(), small_pool, pairs, cache_dir=tmp_path)[pairs[0]]
    assert not first.cached and again.cached and np.array_equal(first.x, again.x)
    assert list(first.keys) == sorted(first.keys) and len(first.keys) == get_task(pairs[0][0]).sizes.train.images
    other = extract_splits(small_random(1), small_pool, pairs, cache_dir=tmp_path)[pairs[0]]
    assert not other.cached and not np.allclose(other.x, first.x)
    changed = small_random()
    with torch.no_grad():
        next(changed.module.parameters()).add_(1.0)
    assert not extract_splits(changed, small_pool, pairs, cache_dir=tmp_path)[pairs[0]].cached
    assert len(list(tmp_path.glob("*.npz"))) == 3


def test_extraction_resizes_with_the_encoders_interpolation(small_pool: Path, tmp_path: Path) -> None:
    """Features of an encoder that returns its input: each equals the encoder's own transform of the image (PIL,
    the authors' path) within a grey level or two, bilinear and bicubic alike, and the two modes differ."""
    from dpbench.pool.built import BuiltPool

    task, split = "synthetic-Necrosis", "val"
    found = {}
    for mode in ("bilinear", "bicubic"):
        spec = InputSpec(size=40, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), interpolation=mode)
        encoder = Encoder(spec=f"flatten-{mode}", module=torch.nn.Flatten(), input=spec, dim=3 * 40 * 40)
        features = extract_splits(encoder, small_pool, [(task, split)], cache_dir=tmp_path)[(task, split)]
        order = {key: i for i, key in enumerate(features.keys)}
        reference = np.zeros_like(features.x)
        for image, _, meta in BuiltPool(small_pool).dataset(task, split):
            reference[order[meta["key"]]] = spec.transform()(image).flatten().numpy()
        assert np.abs(features.x - reference).max() <= 1.5 / 255 / 0.25, mode
        found[mode] = features.x
    assert np.abs(found["bilinear"] - found["bicubic"]).max() > 3 / 255 / 0.25


def test_evaluation_resumes_from_partial_results(small_pool: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    evaluate(small_random(), small_pool, SMALL_TASKS[:2], EvalConfig(), tmp_path)

    def broken(*args: object, **kwargs: object) -> None:
        raise AssertionError("finished tasks must not be recomputed")

    first = load_results(tmp_path / "results.json")
    monkeypatch.setattr(run_module, "linear_probe", broken)
    monkeypatch.setattr(run_module, "extract_splits", broken)
    results = evaluate(small_random(), small_pool, SMALL_TASKS[:2], EvalConfig(), tmp_path)
    assert results.scores == first.scores
    with pytest.raises(AssertionError, match="must not be recomputed"):  # other settings: nothing is reused
        evaluate(small_random(), small_pool, SMALL_TASKS[:2], EvalConfig(probe="fast"), tmp_path)


def test_finetune_protocol_selects_lr_and_epoch(small_pool: Path) -> None:
    config = FinetuneConfig(lrs=(1e-2, 1e-6), epochs=2, batch_size=16, max_batches=3)
    out = finetune(small_random(), small_pool, get_task("synthetic-Janowczyk7"), seed=0, config=config, device="cpu")
    assert out.lr in (1e-2, 1e-6) and out.epoch in (1, 2)
    assert len(out.history) == 4 and out.val_score == max(h["val"] for h in out.history)
    assert out.test_scores.shape == (get_task("synthetic-Janowczyk7").sizes.test.images, 3)
    assert np.allclose(out.test_scores.sum(axis=1), 1.0, atol=1e-5)
    again = finetune(small_random(), small_pool, get_task("synthetic-Janowczyk7"), seed=0, config=config, device="cpu")
    assert again.test_score == out.test_score  # seeded


def test_finetune_divergence_is_one_clear_error(small_pool: Path) -> None:
    config = FinetuneConfig(lrs=(1e30,), epochs=2, batch_size=16, max_batches=3)
    with pytest.raises(DpbenchError, match=r"diverged at lr=1e\+30 .* epoch 1\); try smaller learning rates"):
        finetune(small_random(), small_pool, get_task("synthetic-Janowczyk7"), seed=0, config=config, device="cpu")


class WrongShape(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3))[:-1]


class Nan(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3)) * float("nan")


@pytest.mark.parametrize(("module", "needle"), [(WrongShape(), "must return (batch, features)"),
                                                (Nan(), "NaN or infinite features")])
def test_bad_encoders_give_clear_errors(small_pool: Path, module: torch.nn.Module, needle: str) -> None:
    good = small_random()
    encoder = Encoder(spec="python:bad", module=module, input=good.input, dim=3)
    with pytest.raises(DpbenchError) as info:
        extract_splits(encoder, small_pool, [("synthetic-Necrosis", "test")])
    assert needle in str(info.value)


def test_eval_cli_end_to_end(small_pool: Path, tmp_path: Path) -> None:
    out = tmp_path / "res"
    result = run_cli("eval", "--encoder", "random", "--input-size", "64", "--data", str(small_pool), "--tasks",
                     "synthetic-Necrosis", "--out", str(out), "--no-cache")
    assert result.returncode == 0, result.stderr
    assert "synthetic-Necrosis" in result.stdout and "SYNTHETIC" in result.stdout
    assert json.loads((out / "results.json").read_text())["method"] == "random"
    assert (out / "report.html").read_text().startswith("<!doctype html>")
    bad = run_cli("eval", "--encoder", "nope:thing", "--data", str(small_pool), "--out", str(out))
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and bad.stderr.startswith("error:")
    bad = run_cli("eval", "--encoder", "random", "--pool", "mormont2020", "--data", str(small_pool))
    assert bad.returncode == 2 and "holds pool 'synthetic'" in bad.stderr


def test_docs_example_encoder_passes_the_contract_checks() -> None:
    from dpbench.encoders import check_encoder

    example = Path(__file__).resolve().parents[1] / "docs" / "examples" / "my_encoder.py"
    encoder = load_encoder(f"python:{example}:build")
    assert encoder.dim == 128 and encoder.input.size == 64
    assert all(check.passed for check in check_encoder(encoder)), check_encoder(encoder)


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
@pytest.mark.parametrize(("shape", "size"), [((64, 64), 224), ((64, 48), 32), ((300, 200), 224)])
def test_device_side_resize_and_normalisation_match_the_encoders_transform(
        shape: tuple[int, int], size: int, mode: str) -> None:
    """Extraction ships uint8 tiles and resizes/normalises on the device with the encoder's interpolation: equal to
    InputSpec.transform within PIL's rounding to whole grey levels (≤ 1/255 before normalisation; 1.5/255 bicubic)."""
    from PIL import Image

    from dpbench.evaluation.features import resize_batch

    spec = small_random().input.__class__(size=size, mean=(0.7, 0.5, 0.6), std=(0.2, 0.25, 0.3), interpolation=mode)
    pixels = (np.random.default_rng(size).random((*shape, 3)) * 255).astype(np.uint8)
    if mode == "bicubic":  # tissue-like, not white noise: PIL clips bicubic's overshoot to uint8 between its two
        # passes, which on noise alone moves pixels by up to ~10 grey levels; on real tiles both agree within one
        coarse = Image.fromarray(pixels).resize((max(2, shape[1] // 8), max(2, shape[0] // 8)), Image.BOX)
        pixels = np.array(coarse.resize(shape[::-1], Image.BILINEAR))
    reference = spec.transform()(Image.fromarray(pixels))
    raw = resize_batch(torch.from_numpy(pixels).permute(2, 0, 1)[None], size, spec.interpolation)[0]
    ours = (raw / 255 - torch.tensor(spec.mean).view(3, 1, 1)) / torch.tensor(spec.std).view(3, 1, 1)
    assert ours.shape == reference.shape == (3, size, size)
    levels = 1.01 if mode == "bilinear" else 1.5  # bicubic's negative lobes amplify PIL's rounding between passes
    tolerance = levels / 255 / min(spec.std)
    assert float((ours - reference).abs().max()) <= tolerance
    assert float((ours - reference).abs().mean()) < tolerance / 2


def test_mixed_tile_sizes_are_batched_at_the_encoders_size() -> None:
    from dpbench.evaluation.features import _collate_uint8

    batch = [(torch.zeros(3, 50, 50, dtype=torch.uint8), 0, {"key": "a"}),
             (torch.full((3, 96, 80), 200, dtype=torch.uint8), 1, {"key": "b"})]
    images, labels, metas = _collate_uint8(batch, size=64)
    assert images.shape == (2, 3, 64, 64) and images.dtype == torch.float32  # resized once, without rounding
    assert float(images[1].min()) == pytest.approx(200) and labels.tolist() == [0, 1]
    assert [m["key"] for m in metas] == ["a", "b"]


def test_selection_is_recorded_and_a_grid_edge_is_warned(small_pool: Path, tmp_path: Path) -> None:
    results = evaluate(small_random(), small_pool, SMALL_TASKS, EvalConfig(probe="fast"), tmp_path)
    for s in results.scores:
        sel = s.selection
        assert sel is not None and sel.parameter == "C" and sel.value == s.selected["C"]
        assert sel.grid == sorted(10.0**e for e in range(-10, 1)) and sel.folds and sel.folds >= 2
        best = max(v for v in sel.curve if v is not None)
        assert sel.value == max(g for g, v in zip(sel.grid, sel.curve, strict=True) if v is not None and v >= best)
        at_edge = sel.value in (1e-10, 1.0)
        assert at_edge == any("edge of the grid" in w for w in s.warnings), s.warnings
    edge = next(s for s in results.scores if s.warnings) if any(s.warnings for s in results.scores) else None
    page = render_report(results)
    assert "Hyper-parameter selection" in page
    if edge is not None:
        assert "edge of the grid" in page


def test_warnings_reach_the_report() -> None:
    from dpbench.results import Provenance, Results, Selection, TaskScore

    selection = Selection(parameter="C", value=1.0, criterion="grouped 2-fold CV roc_auc on train+val",
                          grid=[0.1, 1.0], curve=[None, None], folds=2, unscorable_folds=2,
                          fallback="no cross-validation fold could be scored; C = 1 was used unselected")
    score = TaskScore(task="synthetic-Necrosis", seed=0, metric="roc_auc", score=0.5, selected={"C": 1.0},
                      selection=selection, warnings=[selection.fallback or ""])
    page = render_report(Results(method="m", provenance=Provenance(dpbench_version="x", pool="p", pool_version="v"),
                                 scores=[score]))
    assert "⚠ no cross-validation fold could be scored" in page and "0.1:– 1:–" in page
