"""Multi-GPU pre-training with ``torchrun`` (DDP): process group, global task counts, gathered stream states.

``torchrun --nproc_per_node N -m dpbench pretrain ...`` starts N processes; each draws its own share of the
global batch (``--batch-size`` is global and must divide by N) from its own seeded stream. DDP averages the
gradients, and Eq. 1 divides each process's summed loss by its local batch, so the averaged gradient is Eq. 1 over
the global batch. Supplementary C's head factor uses the *global* task counts (an all-reduce), so a run on N
processes computes the same update as one process would on the concatenated batch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from dpbench.errors import DpbenchError

#: Added per rank to the seeds of the data stream and augmentation, so ranks draw different images.
RANK_SALT = 1 << 24


@dataclass(frozen=True)
class World:
    """This process's place in the run: rank, number of processes and GPU index on its node."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    host_group: Any = None  # Gloo group for host-side collectives (None: the default group, already Gloo)

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def setup(device: torch.device) -> tuple[World, torch.device]:
    """Join the process group when started by ``torchrun`` (NCCL on CUDA, Gloo on CPU); else a world of one."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World(), device
    world = World(rank=int(os.environ["RANK"]), size=size, local_rank=int(os.environ.get("LOCAL_RANK", "0")))
    if device.type == "cuda":
        device = torch.device("cuda", world.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if device.type == "cuda":  # task counts travel between hosts, so no step waits for its GPU to drain
        world = World(world.rank, world.size, world.local_rank, dist.new_group(backend="gloo"))
    return world, device


def teardown(world: World) -> None:
    if world.distributed and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def local_batch(batch_size: int, world: World) -> int:
    """Images per process for a global ``batch_size``."""
    if batch_size % world.size:
        raise DpbenchError(f"--batch-size {batch_size} must divide by the {world.size} processes of the run")
    return batch_size // world.size


def global_counts(counts: list[int], world: World) -> list[int]:
    """|B_i| over the whole global batch (sum over processes), exchanged on the host (Gloo)."""
    if not world.distributed:
        return counts
    tensor = torch.tensor(counts, dtype=torch.int64)
    dist.all_reduce(tensor, group=world.host_group)
    return [int(c) for c in tensor.tolist()]


def mean_loss(loss: torch.Tensor, world: World) -> float:
    """The loss averaged over processes (Eq. 1 over the global batch)."""
    value = loss.detach().float().clone()
    if world.distributed:
        dist.all_reduce(value)
        value /= world.size
    return float(value.item())


def gather(obj: Any, world: World) -> list[Any]:
    """``obj`` from every process, in rank order (a list of one outside ``torchrun``)."""
    if not world.distributed:
        return [obj]
    out: list[Any] = [None] * world.size
    dist.all_gather_object(out, obj, group=world.host_group)
    return out


def wrap(model: nn.Module, world: World, device: torch.device) -> nn.Module:
    """``model`` under DDP (re-wrap after freezing or unfreezing parameters); ``model`` itself outside torchrun.

    Every trainable parameter is in every step's graph (all heads run as one product; heads without samples get
    zero gradient, later dropped), so DDP needs no unused-parameter search; batch-norm buffers follow rank 0 (DDP's
    default broadcast).
    """
    if not world.distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids, find_unused_parameters=False)
