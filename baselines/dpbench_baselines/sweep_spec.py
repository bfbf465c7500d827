"""What a LOTO sweep trains (§IV-D, Table II): the grid, the seeds, the left-out sets, and what it costs.

A trial is one (left-out set, backbone, γ, τγ, warm-up, seed): it pre-trains on the pool minus the set and scores
every task of the set on validation. A *configuration* is the grid point (backbone, γ, τγ, warm-up); the selection
ranks configurations. The spec is stored as ``SWEEP/sweep.json``: a sweep resumed with other settings is refused.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dpbench.errors import DpbenchError
from dpbench.io import atomic_write_json
from dpbench_baselines.protocols import LotoProtocol

_STRICT = ConfigDict(extra="forbid", frozen=True)
SPEC_FILE = "sweep.json"
#: Training images per second of one step at batch 64, bf16 autocast + channels_last, synthetic tensors on one
#: H100 (docs/reference: gpu_ceilings.md, measured 2026-11-26). Ceilings: a real input pipeline can only be slower.
H100_CEILINGS = {"resnet50": 3342.0, "densenet121": 1521.0}
#: The paper's own figure for its protocol (footnote 3), evaluation included.
PAPER_GPU_HOURS = 20_000


class Grid(BaseModel):
    """Table II: learning rate γ, head multiplier τγ, backbone θs, warm-up w (defaults: the paper's 48 points)."""

    model_config = _STRICT

    lrs: tuple[float, ...] = (1e-3, 1e-4, 1e-5, 1e-6)
    taus: tuple[float, ...] = (1.0, 5.0, 10.0)
    archs: tuple[str, ...] = ("resnet50", "densenet121")
    warmups: tuple[bool, ...] = (True, False)

    def configs(self) -> list[Config]:
        """Every grid point, in a fixed order (backbone, γ, τγ, warm-up): the order that breaks selection ties."""
        return [Config(arch=a, lr=lr, tau=t, warmup=w)
                for a, lr, t, w in itertools.product(self.archs, self.lrs, self.taus, self.warmups)]


class Config(BaseModel):
    """One grid point."""

    model_config = _STRICT

    arch: str
    lr: float
    tau: float
    warmup: bool

    @property
    def key(self) -> str:
        return f"{self.arch}-lr{self.lr:g}-tau{self.tau:g}-{'warmup' if self.warmup else 'nowarmup'}"


class Trial(BaseModel):
    """One pre-training run and its validation scoring."""

    model_config = _STRICT

    set_index: int
    left_out: tuple[str, ...]
    config: Config
    seed: int

    @property
    def key(self) -> str:
        return f"set{self.set_index:02d}-{self.config.key}-seed{self.seed}"


class Asha(BaseModel):
    """Ray Tune's ASHA over the grid (opt-in, not the paper's protocol): rungs every ``grace`` checkpoints."""

    model_config = _STRICT

    grace: int = 1  # checkpoints before the first rung
    reduction: int = 3  # η: 1/η of the trials go on at each rung


class SweepSpec(BaseModel):
    """Everything that decides what a sweep computes (resources and the Ray address are not part of it)."""

    model_config = _STRICT

    protocol: LotoProtocol
    protocol_sha256: str
    grid: Grid = Field(default_factory=Grid)
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    iterations: int = 50_000
    warmup_iterations: int = 5_000
    warmup_lr: float = 1e-3
    batch_size: int = 64
    size: int = 224
    weights: str = "imagenet"
    checkpoint_every: int = 5_000
    bn_adapt_batches: int = 20
    augmentation: str = "paper"
    probe: Literal["svm", "fast"] = "svm"
    scheduler: Literal["none", "asha"] = "none"
    asha: Asha = Field(default_factory=Asha)

    def check(self) -> SweepSpec:
        """Raise a DpbenchError naming the first bad setting."""
        grid = self.grid
        if not (grid.lrs and grid.taus and grid.archs and grid.warmups and self.seeds):
            raise DpbenchError("the grid needs at least one learning rate, τγ, backbone, warm-up choice and seed")
        if any(not (math.isfinite(v) and v > 0) for v in (*grid.lrs, *grid.taus)):
            raise DpbenchError("learning rates and τγ must be positive numbers")
        for name in ("iterations", "batch_size", "size", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise DpbenchError(f"--{name.replace('_', '-')} must be >= 1")
        if True in grid.warmups and not 0 < self.warmup_iterations < self.iterations:
            raise DpbenchError(f"--warmup-iterations ({self.warmup_iterations}) must be between 1 and --iterations "
                               f"({self.iterations}) minus one")
        if len(set(self.seeds)) != len(self.seeds) or min(self.seeds) < 0:
            raise DpbenchError("--seeds must be distinct numbers >= 0")
        return self

    def sha256(self) -> str:
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:12]

    def trials(self) -> list[Trial]:
        """Every trial: left-out sets × grid × seeds."""
        return [Trial(set_index=i, left_out=s, config=c, seed=seed)
                for i, s in enumerate(self.protocol.sets) for c in self.grid.configs() for seed in self.seeds]


def save_spec(spec: SweepSpec, folder: Path) -> None:
    """Write ``folder/sweep.json``, or check that the stored one is the same sweep (one error line if not)."""
    path = folder / SPEC_FILE
    if path.is_file():
        stored = load_spec(folder)
        if stored != spec:
            ours, theirs = spec.model_dump(), stored.model_dump()
            changed = [k for k in ours if ours[k] != theirs[k]]
            raise DpbenchError(f"{folder} holds a sweep with other settings ({', '.join(changed)}); rerun with its "
                               "settings to resume it, or choose another --out")
        return
    atomic_write_json(path, json.loads(spec.model_dump_json()))


def load_spec(folder: Path) -> SweepSpec:
    """The sweep stored in ``folder``."""
    path = folder / SPEC_FILE
    try:
        return SweepSpec.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        raise DpbenchError(f"{folder} holds no LOTO sweep ({SPEC_FILE}); start one with dpbench loto run") from None
    except ValidationError as exc:
        raise DpbenchError(f"{path} is not a sweep definition: {exc.errors()[0]['msg']}") from None


def minutes_per_run(arch: str, spec: SweepSpec, throughput: dict[str, float]) -> float | None:
    """Pre-training minutes of one trial at ``throughput`` images/s (None when the backbone has no figure)."""
    rate = throughput.get(arch)
    return spec.iterations * spec.batch_size / rate / 60 if rate else None


def asha_fraction(spec: SweepSpec) -> float:
    """Expected fraction of the full grid's iterations ASHA spends: rung r_i = grace·η^i checkpoints, 1/η^i of the
    trials reach rung i and each runs to the next rung or to the end (asynchronous promotion ignored)."""
    total = max(1, spec.iterations // spec.checkpoint_every)
    eta, spent, previous, level = spec.asha.reduction, 0.0, 0, 0
    rung = spec.asha.grace
    while previous < total:
        end = min(rung, total)
        spent += (end - previous) / eta**level
        previous, rung, level = end, rung * eta, level + 1
    return spent / total
