"""Multi-task pre-training: Eq. 1, head-gradient rescaling, optimiser groups, BN adaptation, warm-up, exact resume."""

from __future__ import annotations

import copy
import itertools
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from dpbench_baselines.bn_adapt import adapt_batch_norm
from dpbench_baselines.loss import make_optimizer, multitask_loss, rescale_head_grads, task_counts, warmup_optimizer
from dpbench_baselines.model import MultiTaskNet, TinyNet, build_backbone
from dpbench_baselines.stream import ResumableStream
from dpbench_baselines.train import (
    CHECKPOINT,
    ENCODER,
    METRICS,
    PretrainConfig,
    build_model,
    check_labels,
    pretrain,
    resolve_tasks,
    train_step,
)
from torch import nn

from dpbench.build import BuildOptions, build_pool
from dpbench.encoders import InputSpec, load_encoder
from dpbench.encoders.random_net import RandomConvNet
from dpbench.encoders.specs import finish_encoder
from dpbench.errors import DpbenchError
from dpbench.evaluation.run import EvalConfig, evaluate
from dpbench.pool.built import BuiltPool
from dpbench.pool.read import MultiTaskStream
from dpbench.tasks.registry import get_pool
from tests.conftest import SMALL_TASKS, run_cli

TINY = PretrainConfig(tasks=tuple(SMALL_TASKS), arch="tiny", weights="none", input_size=32, lr=0.02, tau=5.0,
                      batch_size=8, iterations=12, bn_adapt_batches=2, checkpoint_every=5, log_every=1,
                      device="cpu", buffer=16)


class Killed(Exception):
    """Stands for the process being killed."""


def kill_at(iteration: int) -> Any:
    def progress(done: int, total: int, record: dict[str, Any]) -> None:
        if done == iteration:
            raise Killed
    return progress


def tiny_net(n_classes: dict[str, int] | None = None, seed: int = 0) -> MultiTaskNet:
    torch.manual_seed(seed)
    return MultiTaskNet(TinyNet(), 64, n_classes or {"a": 2, "b": 3, "c": 4})


def batch(task_index: list[int], seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(len(task_index), 3, 32, 32, generator=generator)
    index = torch.tensor(task_index)
    labels = torch.tensor([int(torch.randint((2, 3, 4)[i], (1,), generator=generator)) for i in task_index])
    return images, index, labels


def test_loss_is_eq1_computed_sample_by_sample() -> None:
    model = tiny_net().eval()  # eval: a sample's logits do not depend on the rest of the batch
    images, index, labels = batch([0, 1, 1, 0, 1, 1, 1, 0, 1, 1])  # task c absent
    columns = {0: slice(0, 2), 1: slice(2, 5), 2: slice(5, 9)}  # a: 2 classes, b: 3, c: 4
    with torch.no_grad():
        logits = model(images, index)
        loss = multitask_loss(logits, model.targets(index, labels))
        assert logits.shape == (10, 9)
        by_hand, per_task = 0.0, {0: [], 1: []}  # type: ignore[var-annotated]
        for j in range(len(labels)):
            task = int(index[j])
            z = model.heads[task](model.backbone(images[j:j + 1]))[0]
            own = torch.zeros(9, dtype=torch.bool)
            own[columns[task]] = True
            torch.testing.assert_close(logits[j, own], z)  # routed to its own head only
            assert torch.isneginf(logits[j, ~own]).all()
            nll = -float(torch.log_softmax(z.double(), 0)[labels[j]])
            by_hand += nll
            per_task[task].append(nll)
    assert float(loss) == pytest.approx(by_hand / len(labels), rel=1e-5)  # divided by B, not by |B_i|
    per_task_mean = sum(np.mean(v) for v in per_task.values())
    assert float(loss) != pytest.approx(per_task_mean, rel=1e-3)


def test_head_grads_scaled_by_b_over_bi_and_absent_heads_never_move() -> None:
    model = tiny_net()
    images, index, labels = batch([0, 1, 1, 1, 1, 1, 0, 1])  # |B_a| = 2, |B_b| = 6, |B_c| = 0, B = 8
    counts = task_counts(index, 3)
    assert counts == [2, 6, 0]
    multitask_loss(model(images, index), model.targets(index, labels)).backward()  # type: ignore[no-untyped-call]
    plain = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    rescale_head_grads(model, counts)
    for name, param in model.named_parameters():
        if name.startswith("heads.0."):
            torch.testing.assert_close(param.grad, plain[name] * 4.0)
        elif name.startswith("heads.1."):
            torch.testing.assert_close(param.grad, plain[name] * (8 / 6))
        elif name.startswith("heads.2."):
            assert param.grad is None
        else:
            assert param.grad is not None and torch.equal(param.grad, plain[name])  # backbone: Eq. 1's gradient

    def step(model: MultiTaskNet, optimizer: torch.optim.Optimizer, task_index: list[int], seed: int,
             zero_absent: bool = False) -> None:
        images, index, labels = batch(task_index, seed)
        optimizer.zero_grad(set_to_none=True)
        multitask_loss(model(images, index), model.targets(index, labels)).backward()  # type: ignore[no-untyped-call]
        rescale_head_grads(model, task_counts(index, 3))
        if zero_absent:  # what a naive implementation does: zero gradients instead of none
            for param in model.heads[2].parameters():
                param.grad = torch.zeros_like(param)
        optimizer.step()

    for zero_absent in (False, True):
        model = tiny_net()
        optimizer = make_optimizer(model, lr=0.1, tau=5, weight_decay=1e-3)
        step(model, optimizer, [0, 1, 2, 2], seed=1)  # head c gets momentum
        before = [p.detach().clone() for p in model.heads[2].parameters()]
        step(model, optimizer, [0, 1, 1, 0], seed=2, zero_absent=zero_absent)  # no task-c sample
        moved = any(not torch.equal(b, p) for b, p in zip(before, model.heads[2].parameters(), strict=True))
        assert moved == zero_absent  # None grads: SGD skips the head; zero grads: momentum and decay move it


def test_training_step_never_waits_for_the_device() -> None:
    """On the meta device tensors have shapes but no data, so any host sync (``.item()``, ``.tolist()``, boolean
    masks, ``unique``) raises: normalisation, routing, Eq. 1, backward, head rescaling and the SGD step pass."""
    meta = torch.device("meta")
    model = tiny_net().to(meta).train()
    optimizer = make_optimizer(model, lr=0.1, tau=5.0)
    images = InputSpec(size=32).normaliser(meta)(torch.empty(8, 3, 32, 32, dtype=torch.uint8, device=meta))
    index, labels = torch.empty(8, dtype=torch.long, device=meta), torch.empty(8, dtype=torch.long, device=meta)
    loss = train_step(model, model, optimizer, images, index, labels, [3, 5, 0], meta)
    assert loss.device == meta and loss.shape == ()
    assert model.heads[2].weight.grad is None and model.heads[0].weight.grad is not None
    with pytest.raises((NotImplementedError, RuntimeError)):  # what the test would catch: a data-dependent op
        model.heads[0](torch.empty(8, 64, device=meta)[index == 0])


def test_out_of_range_labels_are_one_clear_error() -> None:
    classes = torch.tensor([2, 3])
    check_labels(torch.tensor([0, 1, 1]), torch.tensor([1, 2, 0]), classes, ["a", "b"], Path("pool"))
    for labels in ([1, 3, 0], [-1, 0, 0]):
        with pytest.raises(DpbenchError, match=r"a (b|a) sample has label (3|-1), outside its (3|2) classes; run "
                                               r"dpbench verify pool"):
            check_labels(torch.tensor([0, 1, 1]), torch.tensor(labels), classes, ["a", "b"], Path("pool"))


def test_optimizer_groups_backbone_at_lr_heads_at_lr_times_tau() -> None:
    model = tiny_net()
    optimizer = make_optimizer(model, lr=1e-4, tau=5.0)
    backbone, heads = optimizer.param_groups
    assert (backbone["name"], heads["name"]) == ("backbone", "heads")
    assert backbone["lr"] == pytest.approx(1e-4) and heads["lr"] == pytest.approx(5e-4)
    assert backbone["momentum"] == heads["momentum"] == 0.9
    assert {id(p) for p in backbone["params"]} == {id(p) for p in model.backbone.parameters()}
    assert {id(p) for p in heads["params"]} == {id(p) for p in model.heads.parameters()}
    (warm,) = warmup_optimizer(model, lr=1e-3).param_groups
    assert warm["lr"] == pytest.approx(1e-3) and {id(p) for p in warm["params"]} == {id(p) for p in heads["params"]}


def test_bn_adaptation_keeps_eval_outputs_and_sets_target_statistics() -> None:
    torch.manual_seed(0)
    net = TinyNet()
    for layer in net.modules():  # a "source" network: non-trivial statistics and affine parameters
        if isinstance(layer, nn.BatchNorm2d):
            assert layer.running_mean is not None and layer.running_var is not None
            layer.running_mean.normal_()
            layer.running_var.uniform_(0.5, 2.0)
            nn.init.normal_(layer.weight, 1.0, 0.3)
            nn.init.normal_(layer.bias, 0.0, 0.3)
    batches = [torch.randn(6, 3, 32, 32) * 1.7 + 0.8 for _ in range(3)]
    probe = torch.randn(5, 3, 32, 32) * 1.7 + 0.8
    source = copy.deepcopy(net).eval()
    with torch.no_grad():
        expected_out = source(probe)
    seen: dict[str, list[torch.Tensor]] = {}  # expected statistics: every input each layer saw, pooled
    hooks = [m.register_forward_hook(lambda m, i, o, n=n: seen.setdefault(n, []).append(i[0].double()))
             for n, m in source.named_modules() if isinstance(m, nn.BatchNorm2d)]
    with torch.no_grad():
        for b in batches:
            source(b)
    for h in hooks:
        h.remove()
    net.train()
    report = adapt_batch_norm(net, batches)
    assert net.training and (report.adapted, report.skipped, report.batches) == (3, 0, 3)
    net.eval()
    with torch.no_grad():
        torch.testing.assert_close(net(probe), expected_out, atol=1e-5, rtol=0)
    for name, inputs in seen.items():
        x = torch.cat(inputs)
        mean, var = x.mean(dim=(0, 2, 3)), x.var(dim=(0, 2, 3), unbiased=False)
        adapted, original = net.get_submodule(name), source.get_submodule(name)
        assert isinstance(adapted, nn.BatchNorm2d) and isinstance(original, nn.BatchNorm2d)
        assert adapted.running_mean is not None and adapted.running_var is not None
        assert original.running_mean is not None
        torch.testing.assert_close(adapted.running_mean.double(), mean, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(adapted.running_var.double(), var, atol=1e-5, rtol=1e-5)
        assert not torch.allclose(adapted.running_mean, original.running_mean)
    with torch.no_grad():  # the point: train mode (batch statistics) now starts close to the eval-mode function
        pooled = torch.cat(batches)
        gap_after = (net.train()(pooled) - net.eval()(pooled)).abs().mean()
        gap_before = (source.train()(pooled) - source.eval()(pooled)).abs().mean()
    assert gap_after < 0.25 * gap_before


def test_stream_draws_like_multitask_stream_and_resumes_exactly(small_pool: Path) -> None:
    def grab(stream: Any, n: int) -> list[tuple[int, bytes, int]]:
        return [(i, np.asarray(im).tobytes(), lab) for i, im, lab in itertools.islice(stream, n)]

    reference = grab(MultiTaskStream(small_pool, SMALL_TASKS, seed=3, buffer=16), 400)
    assert grab(ResumableStream(small_pool, SMALL_TASKS, seed=3, buffer=16), 400) == reference
    stream = ResumableStream(small_pool, SMALL_TASKS, seed=3, buffer=16)
    for _ in range(237):  # past the end of the first epoch of the smallest tasks
        stream.draw()
    state = json.loads(json.dumps(stream.state()))
    assert max(epoch for epoch, _ in state["positions"]) >= 1
    assert grab(ResumableStream(small_pool, SMALL_TASKS, seed=3, buffer=16, state=state), 163) == reference[237:]
    with pytest.raises(DpbenchError, match="another seed"):
        ResumableStream(small_pool, SMALL_TASKS, seed=4, buffer=16, state=state)


def test_warmup_leaves_backbone_and_bn_statistics_bit_identical(small_pool: Path, tmp_path: Path) -> None:
    config = PretrainConfig(**{**TINY.__dict__, "warmup": True, "warmup_iterations": 5, "iterations": 8,
                               "bn_adapt_batches": 0})
    with pytest.raises(Killed):
        pretrain(config, small_pool, tmp_path, progress=kill_at(5))
    start, _ = build_model(config, small_pool, list(SMALL_TASKS))
    warm = torch.load(tmp_path / CHECKPOINT, weights_only=True)
    assert warm["iteration"] == 5 and warm["phase"] == "warmup"
    for key, value in start.state_dict().items():
        if key.startswith("backbone."):
            assert torch.equal(warm["model"][key], value), key  # weights, running stats, num_batches_tracked
    assert not torch.equal(warm["model"]["heads.0.weight"], start.state_dict()["heads.0.weight"])
    pretrain(config, small_pool, tmp_path, resume=True)
    full = torch.load(tmp_path / CHECKPOINT, weights_only=True)
    moved = [k for k in start.state_dict() if k.startswith("backbone.") and not torch.equal(full["model"][k],
                                                                                           warm["model"][k])]
    assert {"backbone.features.0.weight", "backbone.features.1.running_mean"} <= set(moved)  # then they train
    phases = [json.loads(line)["phase"] for line in (tmp_path / METRICS).read_text().splitlines()]
    assert phases == ["warmup"] * 5 + ["full"] * 3


def test_killed_and_resumed_run_reaches_the_uninterrupted_state(small_pool: Path, tmp_path: Path) -> None:
    config = PretrainConfig(**{**TINY.__dict__, "warmup": True, "warmup_iterations": 6})
    pretrain(config, small_pool, tmp_path / "straight")
    with pytest.raises(Killed):  # killed 2 iterations after the checkpoint of iteration 5 (in the warm-up)
        pretrain(config, small_pool, tmp_path / "killed", progress=kill_at(7))
    assert torch.load(tmp_path / "killed" / CHECKPOINT, weights_only=True)["iteration"] == 5
    with pytest.raises(DpbenchError, match="--resume"):
        pretrain(config, small_pool, tmp_path / "killed")
    changed = PretrainConfig(**{**config.__dict__, "lr": 0.5})
    with pytest.raises(DpbenchError, match=r"lr: 0\.02 → 0\.5"):
        pretrain(changed, small_pool, tmp_path / "killed", resume=True)
    with (tmp_path / "killed" / METRICS).open("a") as log:
        log.write('{"iteration": 8, "lo')  # a line cut by the kill
    resumed = PretrainConfig(**{**config.__dict__, "workers": 2})  # loader workers do not change the draws
    pretrain(resumed, small_pool, tmp_path / "killed", resume=True)
    a = torch.load(tmp_path / "straight" / CHECKPOINT, weights_only=True)
    b = torch.load(tmp_path / "killed" / CHECKPOINT, weights_only=True)
    assert a["iteration"] == b["iteration"] == 12 and a["loss"] == b["loss"] and a["stream"] == b["stream"]
    assert a["model"].keys() == b["model"].keys()
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    for key, state in a["optimizer"]["state"].items():
        assert torch.equal(state["momentum_buffer"], b["optimizer"]["state"][key]["momentum_buffer"])

    def lines(run: str) -> list[dict[str, Any]]:
        rows = [json.loads(line) for line in (tmp_path / run / METRICS).read_text().splitlines()]
        return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]

    assert lines("straight") == lines("killed") and len(lines("straight")) == 12


def test_pretrain_exports_an_encoder_that_dpbench_evaluates(small_pool: Path, tmp_path: Path) -> None:
    config = PretrainConfig(**{**TINY.__dict__, "tasks": tuple(SMALL_TASKS[:2]), "iterations": 4})
    path = pretrain(config, small_pool, tmp_path / "run")
    assert path == tmp_path / "run" / ENCODER
    encoder = load_encoder(f"checkpoint:{path}")
    assert encoder.dim == 64 and encoder.input.size == 32
    trained = torch.load(tmp_path / "run" / CHECKPOINT, weights_only=True)["model"]
    for key, value in encoder.module.state_dict().items():
        assert torch.equal(value, trained[f"backbone.{key}"])
    results = evaluate(encoder, small_pool, [SMALL_TASKS[2]], EvalConfig(probe="fast", device="cpu"), tmp_path / "ev")
    assert [s.task for s in results.scores] == [SMALL_TASKS[2]]


def test_task_selection_holds_out_linked_tasks() -> None:
    built = ["synthetic-Necrosis", "synthetic-Breast1", "synthetic-Breast2", "synthetic-CellInclusion",
             "synthetic-Lung"]
    manifest = SimpleNamespace(tasks=[SimpleNamespace(name=n) for n in built])
    root = BuiltPool(Path("unused"), manifest)  # type: ignore[arg-type]  # only the task names are read
    assert resolve_tasks(PretrainConfig(exclude=("synthetic-breast2",)), root) == [
        "synthetic-Necrosis", "synthetic-CellInclusion", "synthetic-Lung"]
    assert resolve_tasks(PretrainConfig(pool="synthetic", exclude=("synthetic-ProliferativePattern",)), root) == [
        "synthetic-Necrosis", "synthetic-Lung", "synthetic-Breast1", "synthetic-Breast2"]
    with pytest.raises(DpbenchError, match="not built"):
        resolve_tasks(PretrainConfig(tasks=("synthetic-Glomeruli",)), root)
    with pytest.raises(DpbenchError, match="unknown task"):
        resolve_tasks(PretrainConfig(exclude=("Brest1",)), root)
    with pytest.raises(DpbenchError, match="no training task"):
        resolve_tasks(PretrainConfig(tasks=("synthetic-Breast1",), exclude=("synthetic-Breast2",)), root)


def test_bad_settings_are_clear_errors(small_pool: Path, tmp_path: Path) -> None:
    with pytest.raises(DpbenchError, match="--weights none"):
        build_backbone("tiny", "imagenet")
    with pytest.raises(DpbenchError, match="unknown torchvision model"):
        build_backbone("resnet5O")
    with pytest.raises(DpbenchError, match="warm-up iterations"):
        pretrain(PretrainConfig(**{**TINY.__dict__, "warmup": True, "warmup_iterations": 12}), small_pool, tmp_path)
    with pytest.raises(DpbenchError, match="lr must be a finite number"):
        pretrain(PretrainConfig(**{**TINY.__dict__, "lr": float("nan")}), small_pool, tmp_path)
    with pytest.raises(DpbenchError, match="loss became nan"):
        pretrain(PretrainConfig(**{**TINY.__dict__, "lr": 1e30}), small_pool, tmp_path / "diverged")


def test_cli_pretrain_runs_and_cli_startup_does_not_import_torch(small_pool: Path, tmp_path: Path) -> None:
    code = "import sys, dpbench_baselines.cli, dpbench.cli; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"
    args = ["pretrain", "--data", str(small_pool), "--pool", "synthetic", "--exclude", SMALL_TASKS[0], "--arch",
            "tiny", "--weights", "none", "--size", "32", "--iterations", "3", "--batch-size", "4",
            "--bn-adapt-batches", "1", "--checkpoint-every", "2", "--workers", "0", "--device", "cpu",
            "--out", str(tmp_path / "run")]
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "run" / ENCODER).is_file() and SMALL_TASKS[0] not in result.stdout.split("task(s):")[1]
    again = run_cli(*args)
    assert again.returncode == 2 and "--resume" in again.stderr and "Traceback" not in again.stderr


TRANSFER_TRAIN = ["synthetic-Lung", "synthetic-Janowczyk7", "synthetic-Breast1", "synthetic-Necrosis",
                  "synthetic-WarwickCRC"]
TRANSFER_HELD_OUT = ["synthetic-MouseLba", "synthetic-BoneMarrow"]  # 8 classes each, 125 and 142 test images


@pytest.fixture(scope="module")
def transfer_pool(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("transfer") / "built"
    build_pool(get_pool("synthetic"), root, TRANSFER_TRAIN + TRANSFER_HELD_OUT, BuildOptions(shard_size=64, workers=1))
    return root


def transfer_scores(root: Path, out: Path, seed: int, iterations: int) -> dict[str, float]:
    """Mean held-out linear-probe score of the pre-trained encoder and of untrained baselines at the same input."""
    config = PretrainConfig(pool="synthetic", exclude=tuple(TRANSFER_HELD_OUT), arch="tiny", weights="none",
                            input_size=32, lr=0.05, tau=1.0, batch_size=32, iterations=iterations, bn_adapt_batches=2,
                            checkpoint_every=iterations, log_every=iterations, device="cpu", seed=seed)
    assert sorted(resolve_tasks(config, root)) == sorted(TRANSFER_TRAIN)
    untrained = PretrainConfig(**{**config.__dict__, "lr": 0.0, "tau": 0.0})  # BN statistics fitted, weights not
    encoders = {
        "pretrained": load_encoder(f"checkpoint:{pretrain(config, root, out / 'pretrained')}"),
        "bn-only": load_encoder(f"checkpoint:{pretrain(untrained, root, out / 'bn-only')}"),
        "init": finish_encoder("init", build_backbone("tiny", "none", seed)[0], InputSpec(size=32)),
        "random": finish_encoder("random", RandomConvNet(seed), InputSpec(size=32)),
    }
    means = {}
    for name, encoder in encoders.items():
        results = evaluate(encoder, root, TRANSFER_HELD_OUT, EvalConfig(probe="fast", device="cpu"), out / f"ev-{name}")
        means[name] = float(np.mean([s.score for s in results.scores]))
    print(f"seed {seed}, {iterations} iterations: " + ", ".join(f"{k} {v:.3f}" for k, v in means.items()))
    return means


def test_short_pretraining_beats_untrained_encoders_on_held_out_tasks(transfer_pool: Path, tmp_path: Path) -> None:
    means = transfer_scores(transfer_pool, tmp_path, seed=0, iterations=100)
    assert means["pretrained"] > max(means["bn-only"], means["init"], means["random"])


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pretraining_beats_untrained_encoders_for_every_seed(transfer_pool: Path, tmp_path: Path, seed: int) -> None:
    means = transfer_scores(transfer_pool, tmp_path, seed=seed, iterations=200)
    assert means["pretrained"] > max(means["bn-only"], means["init"], means["random"]) + 0.03
