"""One LOTO trial (§IV-D): pre-train without the left-out set, then score each of its tasks on validation.

Idempotent and resumable: a finished trial's ``scores.json`` is returned as it is (never recomputed), and an
interrupted one resumes its pre-training from the last checkpoint. No test split is read: the left-out tasks are
scored with ``EvalConfig(score_on="val")``, which opens (and verifies) train and val shards only.

Files under ``SWEEP/trials/KEY/``: ``pretrain/`` (metrics.jsonl, encoder.pt; the resumable checkpoint.pt is
deleted once the trial is done), ``eval/`` (the validation results.json), ``attempts.jsonl`` (one line per start
that had work to do) and ``scores.json`` (the trial's record, written last and atomically).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dpbench.encoders import load_encoder
from dpbench.errors import DpbenchError
from dpbench.evaluation.run import EvalConfig, evaluate
from dpbench.io import atomic_write_json
from dpbench.pool.built import BuiltPool
from dpbench_baselines.model import MultiTaskNet
from dpbench_baselines.sweep_spec import SweepSpec, Trial
from dpbench_baselines.train import CHECKPOINT, ENCODER, Diverged, PretrainConfig, pretrain

SCORES, ATTEMPTS, TRIALS = "scores.json", "attempts.jsonl", "trials"
#: The trials ASHA stopped early (``SWEEP/asha_stopped.json``): no record, and not pending either.
STOPPED = "asha_stopped.json"
#: (iteration, {task: validation score}) at each checkpoint, for the opt-in ASHA scheduler.
Report = Callable[[int, dict[str, float]], None]


def trial_folder(folder: Path, trial: Trial) -> Path:
    return folder / TRIALS / trial.key


def pretrain_config(spec: SweepSpec, trial: Trial, device: str) -> PretrainConfig:
    """The pre-training run of ``trial``: the pool minus the left-out set (and its linked tasks)."""
    c = trial.config
    return PretrainConfig(pool=spec.protocol.pool, exclude=trial.left_out, arch=c.arch, weights=spec.weights,
                          input_size=spec.size, lr=c.lr, tau=c.tau, warmup=c.warmup,
                          warmup_iterations=spec.warmup_iterations, warmup_lr=spec.warmup_lr,
                          iterations=spec.iterations, batch_size=spec.batch_size,
                          bn_adapt_batches=spec.bn_adapt_batches, seed=trial.seed,
                          checkpoint_every=spec.checkpoint_every, log_every=max(1, spec.checkpoint_every // 10),
                          device=device, workers=0, augmentation=spec.augmentation)


def score_on_validation(encoder_spec: str, data: Path, tasks: list[str], spec: SweepSpec, device: str,
                        out: Path) -> tuple[dict[str, float], dict[str, str], dict[str, str]]:
    """(score, metric, unscorable reason) per left-out task: probe trained on train, scored on val."""
    pool = BuiltPool(data)
    built = set(pool.task_names)
    reasons = {t: f"task {t} is not built in {data}" for t in tasks if t not in built}
    scorable = [t for t in tasks if t in built]
    scores: dict[str, float] = {}
    metrics: dict[str, str] = {}
    if scorable:
        config = EvalConfig(protocol="linear", probe=spec.probe, seeds=(0,), device=device, score_on="val")
        try:
            results = evaluate(load_encoder(encoder_spec), pool, scorable, config, out)
        except DpbenchError as exc:
            return {}, {}, {**reasons, **{t: str(exc) for t in scorable}}
        scores = {s.task: s.score for s in results.scores}
        metrics = {s.task: s.metric for s in results.scores}
        reasons.update(results.skipped)
    return scores, metrics, reasons


def stopped_trials(folder: Path) -> list[str]:
    """The keys of the trials ASHA stopped in the sweep ``folder`` (none without ASHA)."""
    path = folder / STOPPED
    return list(json.loads(path.read_text())) if path.is_file() else []


def run_trial(spec: SweepSpec, trial: Trial, data: Path, folder: Path, device: str,
              report: Report | None = None) -> dict[str, Any]:
    """Run ``trial`` (or return its stored record); ``report`` gets validation scores at every checkpoint."""
    out = trial_folder(folder, trial)
    done = out / SCORES
    if done.is_file():
        record: dict[str, Any] = json.loads(done.read_text())
        return record
    out.mkdir(parents=True, exist_ok=True)
    run = out / "pretrain"
    with (out / ATTEMPTS).open("a") as log:
        log.write(json.dumps({"started": time.time(), "pid": os.getpid(),
                              "resumed": (run / CHECKPOINT).is_file()}) + "\n")
    config = pretrain_config(spec, trial, device)
    hook = None
    if report is not None:
        def hook(iteration: int, model: MultiTaskNet) -> None:
            with contextlib.suppress(DpbenchError):
                checkpoint = _snapshot(model, trial.config.arch, spec.size, out / "rungs" / f"{iteration}.pt")
                values, _, _ = score_on_validation(f"checkpoint:{checkpoint}", data, list(trial.left_out), spec,
                                                   device, out / "rungs" / str(iteration))
                report(iteration, values)
    started, wall_started = time.perf_counter(), time.time()
    diverged = None
    if not (run / ENCODER).is_file():
        try:
            pretrain(config, data, run, resume=(run / CHECKPOINT).is_file(), on_checkpoint=hook)
        except Diverged as exc:  # a result of this configuration (the paper saw it above 1e-3), not a crash
            diverged = str(exc)
    trained = time.perf_counter()
    if diverged is None:
        scores, metrics, unscorable = score_on_validation(f"checkpoint:{run / ENCODER}", data,
                                                          list(trial.left_out), spec, device, out / "eval")
    else:
        scores, metrics = {}, {}
        unscorable = {t: f"pre-training diverged: {diverged}" for t in trial.left_out}
    record = {"trial": json.loads(trial.model_dump_json()), "key": trial.key, "config": trial.config.key,
              "spec_sha256": spec.sha256(), "protocol_sha256": spec.protocol_sha256, "scored_split": "val",
              "scores": scores, "metrics": metrics, "unscorable": unscorable, "diverged": diverged,
              "encoder": None if diverged else f"pretrain/{ENCODER}",
              "seconds": {"pretrain": round(trained - started, 3),
                          "evaluate": round(time.perf_counter() - trained, 3)},
              "started": wall_started, "finished": time.time()}
    if any(not math.isfinite(v) for v in scores.values()):
        raise DpbenchError(f"trial {trial.key} produced a non-finite validation score")
    atomic_write_json(done, record)
    (run / CHECKPOINT).unlink(missing_ok=True)  # the encoder is what the final stage transfers
    return record


def _snapshot(model: MultiTaskNet, arch: str, size: int, path: Path) -> Path:
    """The backbone at this checkpoint as an encoder file (ASHA scores it)."""
    from dpbench.encoders import InputSpec, save_encoder_checkpoint
    from dpbench_baselines.model import backbone_spec

    state = {k: v.detach().to("cpu").contiguous() for k, v in model.backbone.state_dict().items()}
    return save_encoder_checkpoint(state, backbone_spec(arch), InputSpec(size=size), path, {})
