"""Final evaluation (§IV-E): each left-out task k gets the seed models of the configuration selected for it
(its own validation column excluded) transferred to it, and its *test* split scores them.

This is the only stage of the LOTO protocol that reads a test split. Per protocol (``linear``: features + linear
SVM; ``finetune``) it writes ``SWEEP/final/PROTOCOL/results.json`` (method ``loto-multitask-PROTOCOL``; a score's
seed is the pre-training seed) and ``report.html``; per (task, seed) runs are kept under ``runs/`` and reused.
Then :func:`compare` puts it beside the baselines with the paper's rule (a difference counts when it exceeds twice
the larger standard deviation) and the scorer's statistics.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pandas as pd

from dpbench.encoders import load_encoder
from dpbench.errors import DpbenchError
from dpbench.evaluation.report import write_report
from dpbench.evaluation.run import EvalConfig, evaluate
from dpbench.io import atomic_write_json
from dpbench.ranking.significance import two_std_matrix
from dpbench.ranking.table import read_scores
from dpbench.results import Results, TaskScore
from dpbench_baselines.selection import SelectionRecord
from dpbench_baselines.sweep_spec import SweepSpec
from dpbench_baselines.train import ENCODER
from dpbench_baselines.trial import SCORES, stopped_trials, trial_folder

FINAL = "final"


def final_results(spec: SweepSpec, folder: Path, data: Path, selection: SelectionRecord, config: EvalConfig,
                  ) -> Results:
    """Transfer the selected seed models to each task's test split under ``config.protocol``."""
    if selection.spec_sha256 != spec.sha256():
        raise DpbenchError(f"{folder}/selection.json belongs to another sweep; rerun dpbench loto run --out {folder}")
    out = folder / FINAL / config.protocol
    scores: list[TaskScore] = []
    skipped: dict[str, str] = {}
    parts: list[Results] = []
    stopped = set(stopped_trials(folder))
    for choice in selection.choices:
        if choice.config is None:
            skipped[choice.task] = "no configuration was selected for it (see selection notes)"
            continue
        trials = [t for t in spec.trials() if t.config.key == choice.config and choice.task in t.left_out]
        for trial in trials:
            where = trial_folder(folder, trial)
            if not (where / SCORES).is_file():
                why = "stopped early by ASHA" if trial.key in stopped else "missing: rerun dpbench loto run"
                skipped.setdefault(choice.task, f"seed model(s) of {choice.config} {why}")
                continue
            if json.loads((where / SCORES).read_text()).get("diverged"):  # that seed has no model
                skipped.setdefault(choice.task, f"pre-training of {choice.config} diverged (seed {trial.seed})")
                continue
            encoder = load_encoder(f"checkpoint:{where / 'pretrain' / ENCODER}")
            part = evaluate(encoder, data, [choice.task], dataclasses.replace(config, seeds=(trial.seed,),
                                                                               score_on="test"),
                            out / "runs" / trial.key, name=f"loto-multitask-{config.protocol}")
            parts.append(part)
            scores += part.scores
            skipped.update(part.skipped)
    if not parts:
        raise DpbenchError("no selected seed model could be evaluated; run the sweep first (dpbench loto run)")
    first = parts[0].provenance
    provenance = first.model_copy(update={
        "encoder": f"LOTO-selected multi-task encoders ({spec.protocol.name}), one configuration per task",
        "weights_sha256": None,
        "split_sha256": {k: v for p in parts for k, v in p.provenance.split_sha256.items()},
        "tasks": {k: v for p in parts for k, v in p.provenance.tasks.items()},
        "wall_seconds": round(sum(p.provenance.wall_seconds or 0.0 for p in parts), 2),
        "settings": {**first.settings, "seeds": ",".join(map(str, spec.seeds)), "loto_protocol": spec.protocol.name,
                     "loto_protocol_sha256": spec.protocol_sha256, "loto_sweep_sha256": spec.sha256(),
                     "loto_scheduler": spec.scheduler}})
    results = Results(method=f"loto-multitask-{config.protocol}", provenance=provenance, scores=scores,
                      skipped={k: v for k, v in skipped.items() if k not in {s.task for s in scores}})
    atomic_write_json(out / "results.json", results.model_dump(mode="json"))
    write_report(results, out / "report.html")
    return results


def compare(ours: Path, baselines: list[Path]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per task and baseline: means, stds, difference and the paper's verdict; wins/ties/losses counts).

    Only the tasks of ``ours`` are compared; the verdict is ``better``/``worse`` when |Δ| > 2·max(σ) else ``tie``.
    """
    table = read_scores([ours, *baselines])
    ours_method = Results.model_validate_json(ours.read_bytes()).method
    summary = table.summary()
    stats = {(str(r.task), str(r.method)): (float(r.mean), float(r.std), int(r.n))
             for r in summary.itertuples(index=False)}
    rows: list[dict[str, Any]] = []
    for task in table.tasks:
        if (task, ours_method) not in stats:
            continue
        mean_a, std_a, n_a = stats[(task, ours_method)]
        for method in table.methods:
            if method == ours_method or (task, method) not in stats:
                continue
            mean_b, std_b, n_b = stats[(task, method)]
            delta = (mean_a - mean_b) * (1 if table.higher[task] else -1)
            verdict = "tie" if abs(delta) <= 2 * max(std_a, std_b) else "better" if delta > 0 else "worse"
            rows.append({"task": task, "method": ours_method, "baseline": method, "ours": mean_a, "ours_std": std_a,
                         "ours_seeds": n_a, "theirs": mean_b, "theirs_std": std_b, "theirs_seeds": n_b,
                         "difference": delta, "verdict": verdict})
    counts = two_std_matrix(table)
    return pd.DataFrame(rows), counts[counts["a"] == ours_method].reset_index(drop=True)


def write_comparison(ours: Path, baselines: list[Path], out: Path) -> pd.DataFrame:
    """:func:`compare`, stored as ``out`` (JSON)."""
    rows, counts = compare(ours, baselines)
    atomic_write_json(out, {"per_task": json.loads(rows.to_json(orient="records")),
                            "counts": json.loads(counts.to_json(orient="records"))})
    return rows
