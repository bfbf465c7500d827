"""``dpbench loto plan|run|report``: the paper's LOTO protocol end to end (§IV-D to IV-F, Table II)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

import typer
from rich.table import Table

from dpbench.cli.evaluate import floats
from dpbench.cli.support import choice, console, friendly
from dpbench.errors import DpbenchError

if TYPE_CHECKING:
    from dpbench_baselines.sweep_spec import SweepSpec

app = typer.Typer(help="Leave-one-task-out protocol: plan the sweep, run it on Ray Tune, select and report.",
                  no_args_is_help=True)

Scheduler = Literal["none", "asha"]
Probe = Literal["svm", "fast"]
FinalProtocol = Literal["linear", "finetune", "both", "none"]

_PROTOCOL = typer.Option("mormont2020-loto", "--protocol", help="LOTO protocol: mormont2020-loto (the paper's 8 "
                         "sets), POOL-all (every linked group), synthetic-loto, synthetic-tiny.")
_SETS = typer.Option(None, "--set", help="Only these left-out sets: index or a task of the set (repeatable).")
_LRS = typer.Option("1e-3,1e-4,1e-5,1e-6", help="Learning rates γ (Table II).")
_TAUS = typer.Option("1,5,10", help="Head learning-rate factors τγ (Table II).")
_ARCHS = typer.Option("resnet50,densenet121", help="Backbones θs (Table II); tiny for tests.")
_WARMUPS = typer.Option("on,off", help="Warm-up choices: on, off or both (Table II).")
_SEEDS = typer.Option(5, help="Seeds per configuration and set (paper: 5).")
_ITER = typer.Option(50_000, help="Pre-training iterations (paper: 50k).")
_WARM_ITER = typer.Option(5_000, help="Warm-up iterations within them (paper: 5k at γ_w = 1e-3).")
_BATCH = typer.Option(64, help="Batch size (paper: 64).")
_SIZE = typer.Option(224, help="Input side in px.")
_WEIGHTS = typer.Option("imagenet", help="Backbone start: imagenet (paper) or none.")
_CKPT = typer.Option(5_000, help="Iterations between checkpoints (resume points; ASHA rungs).")
_PROBE = typer.Option("svm", help="Selection probe: svm (LinearSVC grid, paper) or fast (batched solver).",
                      parser=choice("--probe", Probe))
_SCHED = typer.Option("none", help="none (the paper's full grid) or asha (opt-in successive halving, reported "
                      "separately).", parser=choice("--scheduler", Scheduler))
_BN = typer.Option(20, help="Batches of batch-norm adaptation before training (0: off).")


def _spec(protocol: str, sets: list[str] | None, lrs: str, taus: str, archs: str, warmups: str, seeds: int,
          iterations: int, warmup_iterations: int, batch_size: int, size: int, weights: str, checkpoint_every: int,
          probe: str, scheduler: str, bn_adapt_batches: int) -> SweepSpec:
    from dpbench_baselines.protocols import get_protocol
    from dpbench_baselines.sweep_spec import Grid, SweepSpec

    chosen = get_protocol(protocol)
    chosen = chosen.subset(list(sets)) if sets else chosen
    words = [w.strip() for w in warmups.split(",") if w.strip()]
    if not words or any(w not in ("on", "off") for w in words):
        raise DpbenchError(f"--warmups takes on, off or on,off, got {warmups!r}")
    if seeds < 1:
        raise DpbenchError(f"--seeds must be >= 1, got {seeds}")
    grid = Grid(lrs=floats(lrs), taus=floats(taus), archs=tuple(a.strip() for a in archs.split(",") if a.strip()),
                warmups=tuple(w == "on" for w in dict.fromkeys(words)))
    return SweepSpec(protocol=chosen, protocol_sha256=get_protocol(protocol).sha256(), grid=grid,
                     seeds=tuple(range(seeds)), iterations=iterations, warmup_iterations=warmup_iterations,
                     batch_size=batch_size, size=size, weights=weights, checkpoint_every=checkpoint_every,
                     probe="fast" if probe == "fast" else "svm", scheduler="asha" if scheduler == "asha" else "none",
                     bn_adapt_batches=bn_adapt_batches).check()


def _throughput(pairs: list[str] | None) -> dict[str, float]:
    from dpbench_baselines.sweep_spec import H100_CEILINGS

    rates = dict(H100_CEILINGS)
    for pair in pairs or []:
        arch, _, value = pair.partition("=")
        try:
            rates[arch] = float(value)
        except ValueError:
            raise DpbenchError(f"--throughput takes ARCH=IMAGES_PER_SECOND, got {pair!r}") from None
    return rates


@app.command("plan")
@friendly
def plan_command(protocol: str = _PROTOCOL, sets: list[str] | None = _SETS, lrs: str = _LRS, taus: str = _TAUS,
                 archs: str = _ARCHS, warmups: str = _WARMUPS, seeds: int = _SEEDS, iterations: int = _ITER,
                 warmup_iterations: int = _WARM_ITER, batch_size: int = _BATCH, size: int = _SIZE,
                 weights: str = _WEIGHTS, checkpoint_every: int = _CKPT, probe: str = _PROBE,
                 scheduler: str = _SCHED, bn_adapt_batches: int = _BN,
                 throughput: list[str] | None = typer.Option(None, help="ARCH=IMAGES/S measured training "
                                                             "throughput (repeatable); default: H100 ceilings."),
                 ) -> None:
    """Print the left-out sets, the trials and their GPU-hours (faithful grid and opt-in ASHA)."""
    from dpbench_baselines.sweep_spec import PAPER_GPU_HOURS, asha_fraction, minutes_per_run

    spec = _spec(protocol, sets, lrs, taus, archs, warmups, seeds, iterations, warmup_iterations, batch_size, size,
                 weights, checkpoint_every, probe, scheduler, bn_adapt_batches)
    sets_table = Table(title=f"protocol {spec.protocol.name} (sha256 {spec.protocol_sha256}), pool "
                             f"{spec.protocol.pool}")
    sets_table.add_column("set", justify="right")
    sets_table.add_column("left out together")
    for i, chosen in enumerate(spec.protocol.sets):
        sets_table.add_row(str(i), ", ".join(chosen))
    console.print(sets_table)
    trials = spec.trials()
    configs = spec.grid.configs()
    console.print(f"{len(configs)} configurations × {len(spec.seeds)} seeds × {len(spec.protocol.sets)} sets = "
                  f"{len(trials)} trials (pre-training runs); each scores every task of its set on validation")
    rates = _throughput(throughput)
    cost = Table(title="pre-training cost (GPU-hours)")
    for column in ("backbone", "images/s", "min/run", "runs", "GPU-h faithful", "GPU-h ASHA (est.)"):
        cost.add_column(column, justify="left" if column == "backbone" else "right")
    fraction, total, unknown = asha_fraction(spec), 0.0, []
    for arch in spec.grid.archs:
        runs = sum(t.config.arch == arch for t in trials)
        minutes = minutes_per_run(arch, spec, rates)
        if minutes is None:
            unknown.append(arch)
            cost.add_row(arch, "?", "?", str(runs), "?", "?")
            continue
        hours = runs * minutes / 60
        total += hours
        cost.add_row(arch, f"{rates[arch]:,.0f}", f"{minutes:.1f}", str(runs), f"{hours:,.1f}",
                     f"{hours * fraction:,.1f}")
    cost.add_row("total", "", "", str(len(trials)), f"{total:,.1f}", f"{total * fraction:,.1f}")
    console.print(cost)
    console.print(f"throughput: {'your --throughput' if throughput else 'H100 ceilings'} (bf16, channels_last, "
                  "batch 64, synthetic tensors on the GPU; a real input pipeline is slower); evaluation and "
                  f"fine-tuning not included. The paper reports about {PAPER_GPU_HOURS:,} GPU-hours for its "
                  f"protocol. ASHA (η={spec.asha.reduction}, first rung after {spec.asha.grace} checkpoint(s)) "
                  f"spends about {fraction:.0%} of the faithful iterations and is not the paper's protocol."
                  + (f" No throughput for {', '.join(unknown)}: pass --throughput ARCH=IMG/S." if unknown else ""))


@app.command("run")
@friendly
def run_command(data: Path = typer.Option(..., help="Built pool folder (holding manifest.json)."),
                out: Path = typer.Option(Path("loto-sweep"), help="Sweep folder (resumable)."),
                protocol: str = _PROTOCOL, sets: list[str] | None = _SETS, lrs: str = _LRS, taus: str = _TAUS,
                archs: str = _ARCHS, warmups: str = _WARMUPS, seeds: int = _SEEDS, iterations: int = _ITER,
                warmup_iterations: int = _WARM_ITER, batch_size: int = _BATCH, size: int = _SIZE,
                weights: str = _WEIGHTS, checkpoint_every: int = _CKPT, probe: str = _PROBE,
                scheduler: str = _SCHED, bn_adapt_batches: int = _BN,
                address: str | None = typer.Option(None, help="An existing Ray cluster (ray://... or HOST:PORT); "
                                                   "default: a local Ray on 127.0.0.1."),
                cpus_per_trial: float = typer.Option(1.0, help="CPUs per trial."),
                gpus_per_trial: float = typer.Option(-1.0, help="GPUs per trial (fractions share a GPU); -1: 1 "
                                                     "when this machine has CUDA, else 0."),
                local_cpus: int = typer.Option(0, help="CPUs the local Ray may use (0: all)."),
                max_concurrent_trials: int = typer.Option(0, help="Trials running at once (0: as many as the "
                                                          "resources allow; 1: one after another in grid order)."),
                final: str = typer.Option("linear", help="Final test evaluation of the selected models: linear, "
                                          "finetune, both or none.", parser=choice("--final", FinalProtocol)),
                epochs: int = typer.Option(100, help="Final fine-tuning epochs (paper: 100)."),
                finetune_lrs: str = typer.Option("1e-3,1e-4,1e-5,1e-6", help="Final fine-tuning learning rates."),
                max_batches: int = typer.Option(0, help="Final fine-tuning batches per epoch (0: all)."),
                device: str = typer.Option("auto", help="Device of the final evaluation."),
                ) -> None:
    """Run (or resume) the sweep on Ray Tune, select per task on validation, then evaluate on test."""
    import torch

    from dpbench.evaluation.finetune import FinetuneConfig
    from dpbench.evaluation.run import EvalConfig
    from dpbench.pool.built import BuiltPool
    from dpbench_baselines.final import final_results
    from dpbench_baselines.selection import write_selection
    from dpbench_baselines.sweep import Resources, run_sweep

    spec = _spec(protocol, sets, lrs, taus, archs, warmups, seeds, iterations, warmup_iterations, batch_size, size,
                 weights, checkpoint_every, probe, scheduler, bn_adapt_batches)
    pool = BuiltPool(data)
    if pool.manifest.pool != spec.protocol.pool:
        raise DpbenchError(f"{data} holds pool {pool.manifest.pool}, protocol {spec.protocol.name} needs pool "
                           f"{spec.protocol.pool}; pass --data of a {spec.protocol.pool} build")
    if cpus_per_trial <= 0 or local_cpus < 0 or max_concurrent_trials < 0:
        raise DpbenchError("--cpus-per-trial must be > 0, --local-cpus and --max-concurrent-trials >= 0")
    gpus = (1.0 if torch.cuda.is_available() and not address else 0.0) if gpus_per_trial < 0 else gpus_per_trial
    resources = Resources(address=address, cpus=cpus_per_trial, gpus=gpus, local_cpus=local_cpus or None,
                          max_concurrent=max_concurrent_trials or None)
    console.print(f"sweep {spec.sha256()}: {len(spec.trials())} trials in {out}")
    timing = run_sweep(spec, data, out, resources)
    if timing["unfinished"]:
        errors = sorted((out / "ray").glob("**/error.txt"), key=lambda p: p.stat().st_mtime)
        last = [line for line in errors[-1].read_text().splitlines() if line.strip()][-1:] if errors else []
        console.print(f"[yellow]{len(timing['unfinished'])} trial(s) did not finish[/]: rerun the same command to "
                      "resume them" + (f"; last trial error: {last[0]}" if last else ""))
    record = write_selection(spec, out)
    for choice_ in record.choices:
        console.print(f"{choice_.task}: {choice_.config or 'nothing selected'}")
    for note in record.notes:
        console.print(f"[yellow]note[/] {note}")
    if timing["unfinished"] or final == "none":
        return
    finetune = FinetuneConfig(lrs=floats(finetune_lrs), epochs=epochs, max_batches=max_batches or None)
    for protocol_ in (("linear", "finetune") if final == "both" else (final,)):
        config = EvalConfig(protocol="finetune" if protocol_ == "finetune" else "linear",
                            probe="fast" if spec.probe == "fast" else "svm", device=device, finetune=finetune)
        final_results(spec, out, data, record, config)
        console.print(f"final {protocol_} results: {out / 'final' / protocol_ / 'results.json'}")
    console.print(f"report: dpbench loto report --out {out}")


@app.command("report")
@friendly
def report_command(out: Path = typer.Option(Path("loto-sweep"), help="Sweep folder."),
                   baseline: list[Path] | None = typer.Option(None, help="A baseline's results.json to compare with "
                                                              "(repeatable): imagenet, scratch, joint."),
                   html: Path | None = typer.Option(None, help="Report file (default: OUT/report.html)."),
                   ) -> None:
    """HTML report: rank matrix, selections, final scores, comparison with the baselines, plots."""
    import pandas as pd

    from dpbench_baselines.final import write_comparison
    from dpbench_baselines.loto_report import write_loto_report
    from dpbench_baselines.sweep_spec import load_spec

    spec = load_spec(out)
    ours = [out / "final" / p / "results.json" for p in ("linear", "finetune")]
    frames = [write_comparison(path, list(baseline), path.parent / "comparison.json")
              for path in ours if path.is_file() and baseline]
    comparison = pd.concat(frames, ignore_index=True) if frames else None
    written = write_loto_report(spec, out, comparison, html or out / "report.html")
    console.print(f"report: {written}")
