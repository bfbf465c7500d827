"""The LOTO sweep on Ray Tune: every trial of a :class:`SweepSpec` as a Tune trial, resumable.

Local by default (a Ray instance on this machine, bound to 127.0.0.1, with all its GPUs or its CPUs), or an
existing cluster with ``address``. Each trial asks for ``cpus`` CPUs and ``gpus`` GPUs (fractions allowed); a
request no node can meet is refused up front (Ray would leave such a trial pending forever).

Resuming: Ray Tune's experiment state lives in ``SWEEP/ray/sweep`` (``sweep-setNN`` with ASHA: one experiment
and one successive halving per left-out set, trials stopped by it listed in ``SWEEP/asha_stopped.json``); a rerun
restores it (``Tuner.restore(resume_unfinished=True, resume_errored=True)``) and Tune re-runs only trials that had not
finished. Independently, a trial whose ``scores.json`` exists returns it without computing anything, so even a lost
experiment state never repeats a finished trial, and an interrupted trial resumes its pre-training checkpoint.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import math
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dpbench.errors import DpbenchError
from dpbench.io import atomic_write_json
from dpbench_baselines.sweep_spec import SweepSpec, Trial, save_spec
from dpbench_baselines.trial import SCORES, STOPPED, run_trial, stopped_trials, trial_folder

RAY_DIR, EXPERIMENT, TIMING = "ray", "sweep", "timing.json"
#: The local Ray's temp dirs: /tmp/dprayXXXX, with the driver's pid in OWNER.
TEMP_PREFIX, OWNER = "dpray", "dpbench-owner.pid"
#: What ASHA sees for a trial with no validation score (diverged, unscorable): below every ROC AUC and accuracy.
UNSCORED = -1.0


@dataclass(frozen=True)
class Resources:
    """Where and with what each trial runs."""

    address: str | None = None  # None: a local Ray instance
    cpus: float = 1.0  # per trial
    gpus: float = 0.0  # per trial; fractions share a GPU
    local_cpus: int | None = None  # local instance only: CPUs it may use (None: all)
    max_concurrent: int | None = None


def _trainable(config: dict[str, Any]) -> None:
    """A Tune function trainable: one trial; reports at each checkpoint (ASHA) and once at the end."""
    import torch
    from ray import tune

    from dpbench_baselines.sweep_spec import load_spec

    folder, data = Path(config["folder"]), Path(config["data"])
    spec, trial = load_spec(folder), Trial.model_validate(config["trial"])
    torch.set_num_threads(max(1, int(config["threads"])))
    device = "cuda" if config["gpus"] > 0 else "cpu"
    step = max(1, spec.iterations // spec.checkpoint_every)

    def mean(scores: dict[str, float]) -> float:
        return sum(scores.values()) / len(scores) if scores else UNSCORED

    def report(iteration: int, scores: dict[str, float]) -> None:
        tune.report({"val_mean": mean(scores), "iteration": iteration})

    record = run_trial(spec, trial, data, folder, device, report if spec.scheduler == "asha" else None)
    tune.report({"val_mean": mean(record["scores"]), "iteration": spec.iterations, "done": 1, "checkpoints": step,
                 "trial_seconds": sum(record["seconds"].values())})


#: Set before Ray is imported: a local Ray then uses 127.0.0.1 as its node address and binds every listener there
#: (read once, at import); no auth token file in ~/.ray; Tune's own loggers and console tables off (each trial
#: keeps its own record).
LOCAL_RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "disabled",
                 "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1", "RAY_AIR_NEW_OUTPUT": "0", "RAY_DEDUP_LOGS": "0"}


def _start_ray(resources: Resources) -> Path | None:
    """A local Ray bound to loopback (no dashboard, a short temp dir, returned), or a connection to ``address``."""
    already = "ray" in sys.modules
    for key, value in LOCAL_RAY_ENV.items():
        if key != "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER" or not resources.address:
            os.environ.setdefault(key, value)
    import ray
    from ray._private import ray_constants

    logging.getLogger("ray.tune").setLevel(logging.ERROR)
    if ray.is_initialized():
        return None
    if not resources.address and ray_constants.ENABLE_RAY_CLUSTER and already:
        raise DpbenchError("Ray was imported before dpbench could bind a local Ray to 127.0.0.1; set "
                           "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 before starting, or pass --address of a cluster")
    if resources.address:
        ray.init(address=resources.address, include_dashboard=False, log_to_driver=False)
        return None
    _remove_stale_temp_dirs()
    temp = tempfile.mkdtemp(prefix=TEMP_PREFIX, dir="/tmp")  # short: Ray's socket paths must stay under 107 bytes
    (Path(temp) / OWNER).write_text(str(os.getpid()))
    ray.init(num_cpus=resources.local_cpus, include_dashboard=False, _temp_dir=temp, log_to_driver=False,
             _node_ip_address="127.0.0.1")
    return Path(temp)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _remove_stale_temp_dirs() -> None:
    """Remove the local-Ray temp dirs of earlier sweeps that were killed before they could (their driver is gone
    and, where /proc tells, no process still names the dir); a dir without an owner file is left alone."""
    lines = []
    for path in Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError):  # a process that ended meanwhile, or is not ours to read
            lines.append(path.read_bytes().replace(b"\0", b" ").decode(errors="replace"))
    running = "\n".join(lines)
    for folder in Path("/tmp").glob(f"{TEMP_PREFIX}*"):
        try:
            owner = int((folder / OWNER).read_text())
        except (OSError, ValueError):
            continue
        if not _alive(owner) and str(folder) not in running:
            shutil.rmtree(folder, ignore_errors=True)


def check_resources(resources: Resources) -> None:
    """Refuse (one line) a per-trial request that no alive node can meet."""
    import ray

    nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]  # type: ignore[no-untyped-call]
    gpus = max((n.get("GPU", 0.0) for n in nodes), default=0.0)
    cpus = max((n.get("CPU", 0.0) for n in nodes), default=0.0)
    if resources.gpus > gpus:
        raise DpbenchError(f"each trial asks for {resources.gpus:g} GPU(s) but the largest Ray node has {gpus:g}; "
                           "pass --gpus-per-trial 0 (CPU) or a cluster with GPUs (--address)")
    if resources.cpus > cpus:
        raise DpbenchError(f"each trial asks for {resources.cpus:g} CPU(s) but the largest Ray node has {cpus:g}; "
                           f"lower --cpus-per-trial")


def preflight(spec: SweepSpec, data: Path) -> None:
    """Fail fast, in this process and with one error line, on what would make every trial fail: a backbone that
    cannot be built with these weights (e.g. uncached ImageNet weights), a left-out set leaving nothing to train."""
    from dpbench.pool.built import BuiltPool
    from dpbench_baselines.model import build_backbone
    from dpbench_baselines.train import resolve_tasks
    from dpbench_baselines.trial import pretrain_config

    pool = BuiltPool(data)
    if pool.manifest.pool != spec.protocol.pool:
        raise DpbenchError(f"{data} holds pool {pool.manifest.pool}, protocol {spec.protocol.name} needs pool "
                           f"{spec.protocol.pool}; pass --data of a {spec.protocol.pool} build")
    for arch in spec.grid.archs:
        build_backbone(arch, spec.weights, 0)
    for trial in {t.set_index: t for t in spec.trials()}.values():
        resolve_tasks(pretrain_config(spec, trial, "cpu"), pool)


def pending(spec: SweepSpec, folder: Path) -> list[Trial]:
    """The trials without a stored record (and not stopped by ASHA)."""
    stopped = set(stopped_trials(folder))
    return [t for t in spec.trials() if not (trial_folder(folder, t) / SCORES).is_file() and t.key not in stopped]


def run_sweep(spec: SweepSpec, data: Path, folder: Path, resources: Resources,
              on_result: Callable[[str], None] = lambda message: None) -> dict[str, Any]:
    """Run (or resume) the sweep; returns its timing record (also written to ``SWEEP/timing.json``)."""
    spec.check()
    folder.mkdir(parents=True, exist_ok=True)
    save_spec(spec, folder)
    todo = pending(spec, folder)
    if todo:
        preflight(spec, data)
    started = time.perf_counter()
    timing: dict[str, Any] = {"trials": len(spec.trials()), "pending_at_start": len(todo)}
    if todo:
        temp = _start_ray(resources)
        import ray

        try:
            check_resources(resources)
            timing["ray_start_seconds"] = round(time.perf_counter() - started, 3)
            fit_started = time.time()
            _fit(spec, data.resolve(), folder.resolve(), resources, todo)
            timing["fit_wall_seconds"] = round(time.time() - fit_started, 3)
            timing.update(_gaps(folder, todo, fit_started, time.time()))
        finally:
            ray.shutdown()
            if temp is not None:  # the local Ray's session files (trial errors stay in SWEEP/ray)
                shutil.rmtree(temp, ignore_errors=True)
    timing["wall_seconds"] = round(time.perf_counter() - started, 3)
    left = pending(spec, folder)
    timing["unfinished"] = [t.key for t in left]
    timing["stopped_by_asha"] = stopped_trials(folder)
    compute = [_seconds(folder, t) for t in todo if (trial_folder(folder, t) / SCORES).is_file()]
    timing["trial_seconds"] = round(sum(compute), 3)
    atomic_write_json(folder / TIMING, timing)
    return timing


def _gaps(folder: Path, todo: list[Trial], fit_started: float, fit_ended: float) -> dict[str, float]:
    """Where the fit's wall time went besides the trials (exact for one trial at a time): until the first trial
    started (worker process start, imports), between trials (scheduling, result handling, experiment
    checkpoints), after the last one (final experiment checkpoint)."""
    spans = []
    for trial in todo:
        path = trial_folder(folder, trial) / SCORES
        if path.is_file():
            record = json.loads(path.read_text())
            if "started" in record and "finished" in record:
                spans.append((float(record["started"]), float(record["finished"])))
    if not spans:
        return {}
    spans.sort()
    between = sum(max(0.0, b[0] - a[1]) for a, b in itertools.pairwise(spans))
    return {"first_trial_start_seconds": round(spans[0][0] - fit_started, 3),
            "between_trials_seconds": round(between, 3),
            "after_last_trial_seconds": round(fit_ended - max(end for _, end in spans), 3)}


def _seconds(folder: Path, trial: Trial) -> float:
    record = json.loads((trial_folder(folder, trial) / SCORES).read_text())
    return float(sum(record["seconds"].values()))


def _fit(spec: SweepSpec, data: Path, folder: Path, resources: Resources, todo: list[Trial]) -> None:
    """One Tune experiment over the pending trials; with ASHA one experiment per left-out set, so that trials are
    only ever compared with trials scored on the same tasks."""
    groups: dict[str, list[Trial]] = {EXPERIMENT: todo}
    if spec.scheduler == "asha":
        groups = {}
        for trial in todo:
            groups.setdefault(f"{EXPERIMENT}-set{trial.set_index:02d}", []).append(trial)
    for name, trials in groups.items():
        failed = _fit_one(spec, data, folder, resources, trials, name)
        if spec.scheduler == "asha":  # the experiment ended: a trial without a record that did not fail was stopped
            stopped = set(stopped_trials(folder)) | {t.key for t in trials if t.key not in failed
                                               and not (trial_folder(folder, t) / SCORES).is_file()}
            atomic_write_json(folder / STOPPED, sorted(stopped))


def _fit_one(spec: SweepSpec, data: Path, folder: Path, resources: Resources, todo: list[Trial], name: str
             ) -> set[str]:
    """Run one Tune experiment; returns the keys of the trials that ended in an error (a rerun retries them)."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    threads = max(1, math.floor(resources.cpus))
    trainable = tune.with_resources(_trainable, {"cpu": resources.cpus, "gpu": resources.gpus})
    storage = folder / RAY_DIR
    path = storage / name
    if tune.Tuner.can_restore(str(path)):
        tuner = tune.Tuner.restore(str(path), trainable, resume_unfinished=True, resume_errored=True)
    else:
        scheduler = None
        if spec.scheduler == "asha":
            rungs = max(1, spec.iterations // spec.checkpoint_every)
            scheduler = ASHAScheduler(time_attr="training_iteration", metric="val_mean", mode="max",
                                      max_t=rungs + 1, grace_period=spec.asha.grace,
                                      reduction_factor=spec.asha.reduction)
        space = {"trial": tune.grid_search([json.loads(t.model_dump_json()) for t in todo]),
                 "folder": str(folder), "data": str(data), "threads": threads, "gpus": resources.gpus}
        tuner = tune.Tuner(trainable, param_space=space,
                           tune_config=tune.TuneConfig(scheduler=scheduler,
                                                       max_concurrent_trials=resources.max_concurrent,
                                                       reuse_actors=True,
                                                       trial_dirname_creator=lambda t: f"t{t.trial_id}"),
                           run_config=tune.RunConfig(name=name, storage_path=str(storage), verbose=0,
                                                     failure_config=tune.FailureConfig(max_failures=1)))
    grid = tuner.fit()
    results = (grid[i] for i in range(len(grid)))
    return {Trial.model_validate(r.config["trial"]).key for r in results if r.error is not None and r.config}
