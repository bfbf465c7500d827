"""Multi-process pre-training (torchrun/DDP) on CPU with Gloo: same update as one process, and a real run."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import torch
import torch.multiprocessing as mp
from dpbench_baselines import distributed
from dpbench_baselines.loss import multitask_loss, rescale_head_grads, task_counts
from dpbench_baselines.model import MultiTaskNet, TinyNet

# Task "c" appears only in the second half of the batch: rank 0's graph never uses its head.
TASK_INDEX = torch.tensor([0, 0, 1, 0, 1, 2, 0, 2])
LABELS = torch.tensor([1, 0, 2, 1, 0, 1, 1, 0])


def _model() -> MultiTaskNet:
    torch.manual_seed(0)
    model = MultiTaskNet(TinyNet((4, 8)), 8, {"a": 2, "b": 3, "c": 2})
    return model.eval()  # batch norm on running statistics: the same function on every process


def _images() -> torch.Tensor:
    return torch.randn(8, 3, 16, 16, generator=torch.Generator().manual_seed(1))


def _step(net: torch.nn.Module, model: MultiTaskNet, images: torch.Tensor, task_index: torch.Tensor,
          labels: torch.Tensor, counts: list[int]) -> dict[str, torch.Tensor]:
    loss = multitask_loss(net(images, task_index), model.targets(task_index, labels))
    loss.backward()
    rescale_head_grads(model, counts)
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def _worker(rank: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE="2", RANK=str(rank),
                      LOCAL_RANK=str(rank))
    world, device = distributed.setup(torch.device("cpu"))
    model = _model()
    net = distributed.wrap(model, world, device)
    part = slice(4 * rank, 4 * rank + 4)
    counts = distributed.global_counts(task_counts(TASK_INDEX[part], 3), world)
    grads = _step(net, model, _images()[part], TASK_INDEX[part], LABELS[part], counts)
    torch.save(grads, Path(out) / f"rank{rank}.pt")
    distributed.teardown(world)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_two_processes_compute_the_single_process_update(tmp_path: Path) -> None:
    mp.spawn(_worker, args=(_free_port(), str(tmp_path)), nprocs=2, join=True)
    model = _model()
    reference = _step(model, model, _images(), TASK_INDEX, LABELS, task_counts(TASK_INDEX, 3))
    for rank in range(2):
        grads = torch.load(tmp_path / f"rank{rank}.pt")
        assert grads.keys() == reference.keys()
        for name, grad in reference.items():  # Eq. 1 over the global batch, heads × B/|B_i| with global counts
            torch.testing.assert_close(grads[name], grad, rtol=1e-5, atol=1e-6, msg=name)


def test_torchrun_pretraining_checkpoints_and_resumes(small_pool: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    common = ["--data", str(small_pool), "--arch", "tiny", "--weights", "none", "--size", "32", "--batch-size", "8",
              "--checkpoint-every", "2", "--log-every", "1", "--workers", "0", "--device", "cpu",
              "--bn-adapt-batches", "1", "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def torchrun(*args: str) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
               str(_free_port()), "-m", "dpbench", "pretrain", *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)

    first = torchrun("--iterations", "4", *common)
    assert first.returncode == 0, first.stderr[-2000:]
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in lines] == [1, 2, 3, 4] and all(r["processes"] == 2 for r in lines)
    assert sum(lines[0]["counts"].values()) == 8  # global batch: 2 processes × 4 images
    ckpt = torch.load(out / "checkpoint.pt", weights_only=True)
    assert ckpt["world"] == 2 and len(json.loads(ckpt["stream"])) == 2
    assert (out / "encoder.pt").is_file()
    single = subprocess.run([sys.executable, "-m", "dpbench", "pretrain", "--iterations", "6", "--resume", *common],
                            capture_output=True, text=True, timeout=300, env=env)
    assert single.returncode == 2 and "same number" in single.stderr and "Traceback" not in single.stderr
    more = torchrun("--iterations", "6", "--resume", *common)
    assert more.returncode == 0, more.stderr[-2000:]
    assert torch.load(out / "checkpoint.pt", weights_only=True)["iteration"] == 6
