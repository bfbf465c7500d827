"""Joint training tuned like the multi-task models (§IV-F): the Table II grid (γ, τγ, backbone, warm-up) × seeds.

Every grid point and seed is one :func:`joint_baseline` run (targets' train splits included, each checkpoint
scored on the targets' val and test splits, the iteration chosen per target on val). Then, per target, the grid
point with the best seed-averaged validation score is selected (means rounded to 4 decimals as the scorer does;
ties go to the first point in grid order and are recorded): the paper uses the targets' validation sets to tune
joint training's hyper-parameters and their test sets to evaluate the selected model. The selected point's seeds
give the target's test scores. Writes ``OUT/runs/KEY-seedS/`` (resumable runs), ``OUT/selection.json``,
``OUT/results.json`` and ``OUT/report.html``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from dpbench.errors import DpbenchError
from dpbench.io import atomic_write_json
from dpbench.ranking.ranks import DECIMALS
from dpbench.results import Results, TaskScore
from dpbench_baselines.joint import joint_baseline
from dpbench_baselines.others import _finish
from dpbench_baselines.sweep_spec import Grid
from dpbench_baselines.train import PretrainConfig

Progress = Callable[[str, int, int], None]  # (run key, iteration done, total)


def _forward(progress: Progress, key: str) -> Callable[[int, int, dict[str, Any]], None]:
    def report(done: int, total: int, record: dict[str, Any]) -> None:
        progress(key, done, total)
    return report


def joint_grid(data: Path, out: Path, base: PretrainConfig, grid: Grid, seeds: tuple[int, ...],
               targets: list[str] | None = None, *, batch_size: int = 64,
               progress: Progress = lambda key, done, total: None) -> Results:
    """Run every grid point × seed, select per target on validation, and report the selected point's test scores."""
    if not seeds:
        raise DpbenchError("joint training needs at least one seed")
    runs: dict[tuple[str, int], Results] = {}
    for config in grid.configs():
        for seed in seeds:
            key = f"{config.key}-seed{seed}"
            run = dataclasses.replace(base, arch=config.arch, lr=config.lr, tau=config.tau, warmup=config.warmup,
                                      seed=seed)
            runs[(config.key, seed)] = joint_baseline(data, out / "runs" / key, run, targets,
                                                      batch_size=batch_size, progress=_forward(progress, key))
    configs = [c.key for c in grid.configs()]
    chosen_tasks = list(dict.fromkeys(s.task for r in runs.values() for s in r.scores))
    by_cell: dict[tuple[str, str], list[TaskScore]] = {}
    for (config_key, _seed), result in runs.items():
        for score in result.scores:
            by_cell.setdefault((config_key, score.task), []).append(score)
    scores: list[TaskScore] = []
    selection: dict[str, Any] = {"configs": configs, "tasks": {}, "notes": []}
    for task in chosen_tasks:
        means: list[float | None] = []
        for config_key in configs:
            values = [s.selected.get("val_score") for s in by_cell.get((config_key, task), [])]
            finite = [float(v) for v in values if v is not None and np.isfinite(v)]
            means.append(round(float(np.mean(finite)), DECIMALS) if finite else None)
            if len(finite) < len(seeds):
                selection["notes"].append(f"{config_key} on {task}: {len(finite)} of {len(seeds)} seed(s) have a "
                                          "validation score")
        scored = [m for m in means if m is not None]
        if not scored:
            selection["notes"].append(f"{task}: no validation score; the first grid point is reported unselected")
            best = configs[0]
            tied: list[str] = []
        else:
            top = max(scored)
            winners = [c for c, m in zip(configs, means, strict=True) if m is not None and m >= top]
            best, tied = winners[0], winners[1:]
            if tied:
                selection["notes"].append(f"{task}: {len(winners)} grid points tie at validation {top:.4f}; the "
                                          f"first in grid order ({best}) was chosen")
        selection["tasks"][task] = {"means": means, "chosen": best, "tied": tied}
        for score in by_cell.get((best, task), []):
            notes = [*score.warnings, f"joint grid point {best} selected on validation"]
            scores.append(score.model_copy(update={"warnings": notes}))
    if not scores:
        raise DpbenchError("no target could be scored by the selected joint-training runs")
    first = next(iter(runs.values()))
    archs = "+".join(grid.archs)
    settings = {**first.provenance.settings, "seeds": ",".join(map(str, seeds)),
                "grid_lrs": ",".join(f"{v:g}" for v in grid.lrs), "grid_taus": ",".join(f"{v:g}" for v in grid.taus),
                "grid_archs": ",".join(grid.archs), "grid_warmups": ",".join(str(w) for w in grid.warmups),
                "selection": "grid point with the best seed-averaged validation score per target",
                **{f"selected_{t}": v["chosen"] for t, v in selection["tasks"].items()}}
    for key in ("arch", "lr", "tau", "warmup", "seed"):
        settings.pop(key, None)
    provenance = first.provenance.model_copy(update={"settings": settings, "weights_sha256": None,
                                                     "encoder": f"joint training, {archs}, selected per target"})
    results = Results(method=f"joint-{archs}", provenance=provenance, scores=scores,
                      skipped={k: v for r in runs.values() for k, v in r.skipped.items()
                               if k not in {s.task for s in scores}})
    atomic_write_json(out / "selection.json", json.loads(json.dumps(selection)))
    atomic_write_json(out / "results.json", results.model_dump(mode="json"))
    return _finish(results, out)
