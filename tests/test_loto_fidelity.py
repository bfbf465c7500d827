"""The protocol's fidelity fixes (#19): validation-scored selection, the paper's augmentation, the authors'
DenseNet121 pooling, and one random initialisation per scratch seed."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from dpbench_baselines.model import PooledFeatures, backbone_spec, build_backbone
from dpbench_baselines.others import scratch_baseline
from PIL import Image

from dpbench.encoders import InputSpec, load_encoder, save_encoder_checkpoint
from dpbench.errors import DpbenchError
from dpbench.evaluation.finetune import FinetuneConfig
from dpbench.evaluation.run import EvalConfig, evaluate
from dpbench.pool.built import BuiltPool
from dpbench.pool.read import task_dataset
from dpbench.results import load_results
from tests.conftest import SMALL_TASKS
from tests.test_audit import one_clear_error
from tests.test_loto import _cli, _hide_test_shards


def _image(width: int, height: int) -> Image.Image:
    generator = torch.Generator().manual_seed(width * 1000 + height)
    pixels = torch.randint(0, 256, (height, width, 3), generator=generator, dtype=torch.uint8)
    return Image.fromarray(pixels.numpy())


def _flips(x: torch.Tensor) -> list[torch.Tensor]:
    return [x, x.flip(-1), x.flip(-2), x.flip(-1).flip(-2)]


def test_paper_augmentation_crops_only_non_square_images_and_never_zooms() -> None:
    spec = InputSpec(size=16)
    train, plain = spec.transform(train=True, as_uint8=True), spec.transform(as_uint8=True)
    square = _image(24, 24)
    for seed in range(8):
        torch.manual_seed(seed)
        out = train(square)
        assert any(torch.equal(out, f) for f in _flips(plain(square)))  # the whole tile, resized, maybe flipped
    wide = _image(40, 24)
    crops = [plain(wide.crop((left, 0, left + 24, 24))) for left in range(17)]
    seen = set()
    for seed in range(12):
        torch.manual_seed(seed)
        out = train(wide)
        matches = [left for left, crop in enumerate(crops) if any(torch.equal(out, f) for f in _flips(crop))]
        assert matches, "a non-square image becomes a full-height square crop"
        seen.update(matches)
    assert len(seen) > 1  # the crop position is random
    zoom = spec.transform(train=True, as_uint8=True, augment="resized-crop")
    torch.manual_seed(0)
    assert not any(torch.equal(zoom(square), f) for f in _flips(plain(square)))  # the old default zooms in
    with pytest.raises(DpbenchError, match="unknown augmentation"):
        spec.transform(train=True, augment="nope")


def test_densenet121_backbone_pools_norm5_without_the_final_relu(tmp_path: Path) -> None:
    module, spec = build_backbone("densenet121", "none", 0)
    assert isinstance(module, PooledFeatures) and spec == backbone_spec("densenet121")
    module.eval()
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = module(x)
        assert torch.allclose(out, F.adaptive_avg_pool2d(module.features(x), 1).flatten(1))
        torchvision_path = F.adaptive_avg_pool2d(F.relu(module.features(x)), 1).flatten(1)
    assert (out < 0).any() and not torch.allclose(out, torchvision_path)
    path = save_encoder_checkpoint(module.state_dict(), spec, InputSpec(size=32), tmp_path / "d.pt", {})
    reloaded = load_encoder(f"checkpoint:{path}")
    with torch.no_grad():
        assert torch.allclose(reloaded.module(x), out)
    resnet, _ = build_backbone("resnet18", "none", 0)
    assert not isinstance(resnet, PooledFeatures)


def test_scratch_seeds_each_draw_their_own_initialisation(small_pool: Path, tmp_path: Path) -> None:
    a, b = (dict(build_backbone("resnet18", "none", s)[0].state_dict()) for s in (0, 1))
    assert not torch.equal(a["conv1.weight"], b["conv1.weight"])
    config = EvalConfig(protocol="finetune", device="cpu", seeds=(0, 1),
                        finetune=FinetuneConfig(lrs=(1e-3,), epochs=1, max_batches=1, augment=False))
    results = scratch_baseline(small_pool, tmp_path, config, arch="resnet18", tasks=[SMALL_TASKS[0]], size=32)
    assert sorted(s.seed for s in results.scores) == [0, 1]
    weights = {load_results(tmp_path / f"seed-{s}" / "results.json").provenance.weights_sha256 for s in (0, 1)}
    assert len(weights) == 2
    assert load_results(tmp_path / "results.json").method == "scratch-resnet18"


def test_validation_scoring_never_reads_a_test_split(small_pool: Path, tmp_path: Path) -> None:
    pool = tmp_path / "pool"
    shutil.copytree(small_pool, pool)
    _hide_test_shards(pool, tmp_path / "away")
    encoder = load_encoder("random:0")
    encoder = dataclasses.replace(encoder, input=dataclasses.replace(encoder.input, size=32))
    config = EvalConfig(probe="fast", device="cpu", score_on="val")
    results = evaluate(encoder, pool, SMALL_TASKS[:2], config, tmp_path / "val")
    assert results.provenance.scored_split == "val" and results.provenance.settings["score_on"] == "val"
    for score in results.scores:
        val_keys = {meta["key"] for _, _, meta in task_dataset(BuiltPool(pool), score.task, "val")}
        assert set(score.predictions or {}) == val_keys
        assert score.selection is not None and score.selection.criterion.endswith("on train")
    with pytest.raises(DpbenchError, match="missing"):
        evaluate(encoder, pool, SMALL_TASKS[:1], dataclasses.replace(config, score_on="test"), tmp_path / "test")
    with pytest.raises(DpbenchError, match="--protocol linear"):
        evaluate(encoder, pool, SMALL_TASKS[:1], dataclasses.replace(config, protocol="finetune"), tmp_path / "ft")
    one_clear_error(_cli("eval", "--encoder", "random", "--data", str(pool), "--score-on", "tset"), "--score-on")
