"""Ray Tune's own overhead on the tiny CPU LOTO sweep (goal: under 5 % of trial compute).

The same 8 trials (synthetic-tiny: 2 left-out sets × 2 learning rates × 2 seeds, tiny backbone, 64 px, a few
hundred iterations) run twice in the same process tree, one trial at a time with ``--cpus`` threads:

* direct: :func:`run_trial` called in a loop, no Ray;
* Ray: :func:`run_sweep` (local Ray on 127.0.0.1, Tune, experiment checkpoints, trial records), then the same
  command again on the finished sweep (the resume path: it must skip every trial).

Overhead = (Ray wall − Σ trial seconds measured inside the trials) / Σ trial seconds, with and without Ray's start
(``ray.init``), and broken down: until the first trial starts (worker process start and imports, once per
sweep), between trials and after the last one (Tune's scheduling, result handling and experiment checkpoints:
the per-trial cost). The direct loop's wall is printed beside it as a check.

    python benchmarks/loto_ray_overhead.py [--iterations 300] [--out overhead.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import torch
from dpbench_baselines.protocols import get_protocol
from dpbench_baselines.sweep import Resources, run_sweep
from dpbench_baselines.sweep_spec import Grid, SweepSpec
from dpbench_baselines.trial import run_trial

from dpbench.build import BuildOptions, build_pool
from dpbench.tasks.registry import get_pool

TASKS = ["synthetic-Necrosis", "synthetic-WarwickCRC", "synthetic-Janowczyk7"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--cpus", type=int, default=1, help="threads per trial (one trial at a time)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    cpus = args.cpus
    protocol = get_protocol("synthetic-tiny")
    spec = SweepSpec(protocol=protocol, protocol_sha256=protocol.sha256(),
                     grid=Grid(lrs=(0.05, 0.01), taus=(1.0,), archs=("tiny",), warmups=(False,)), seeds=(0, 1),
                     iterations=args.iterations, checkpoint_every=max(1, args.iterations // 3), batch_size=32,
                     size=64, weights="none", probe="fast", bn_adapt_batches=2)
    with tempfile.TemporaryDirectory(prefix="loto-bench") as tmp:
        root = Path(tmp)
        build_pool(get_pool("synthetic"), root / "pool", TASKS, BuildOptions(shard_size=32, workers=1))
        torch.set_num_threads(cpus)
        started = time.perf_counter()
        for trial in spec.trials():
            run_trial(spec, trial, root / "pool", root / "direct", "cpu")
        direct = time.perf_counter() - started
        timing = run_sweep(spec, root / "pool", root / "ray", Resources(cpus=float(cpus), local_cpus=cpus))
        again = run_sweep(spec, root / "pool", root / "ray", Resources(cpus=float(cpus), local_cpus=cpus))
    compute = timing["trial_seconds"]
    wall, start = timing["wall_seconds"], timing["ray_start_seconds"]
    report = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores ({cpus} per trial), torch {torch.__version__}",
        "trials": timing["trials"], "iterations": args.iterations,
        "direct_wall_seconds": round(direct, 2), "ray_wall_seconds": wall, "ray_start_seconds": start,
        "trial_compute_seconds": compute,
        "overhead_percent": round(100 * (wall - compute) / compute, 2),
        "overhead_percent_after_ray_start": round(100 * (wall - start - compute) / compute, 2),
        "ray_vs_direct_percent": round(100 * (wall - direct) / direct, 2),
        "first_trial_start_seconds": timing.get("first_trial_start_seconds"),
        "between_trials_seconds": timing.get("between_trials_seconds"),
        "after_last_trial_seconds": timing.get("after_last_trial_seconds"),
        # Tune's per-trial work once the worker runs: scheduling, result handling, experiment checkpoints
        "scheduling_and_checkpointing_percent": round(100 * (timing.get("between_trials_seconds", 0.0)
                                                             + timing.get("after_last_trial_seconds", 0.0))
                                                      / compute, 2),
        "resume_of_finished_sweep_seconds": again["wall_seconds"], "resume_pending": again["pending_at_start"],
    }
    print(json.dumps(report, indent=1))
    if args.out:
        args.out.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
