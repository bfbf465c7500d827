"""``dpbench loto report``: one self-contained HTML page of a LOTO sweep, in the spirit of the paper's Figs. 2-6.

Sections: what ran (protocol and its hash, grid, scheduler, unfinished trials), the rank matrix (seed-averaged
validation scores and ranks, Eq. 2's average rank), the configuration selected per task (ties and degenerate
cases listed), the final test scores, the comparison with the baselines (paper's 2σ rule), and plots: score
differences with error bars per task, validation score per learning rate, mean rank per τγ × warm-up.
The selection shown is recomputed from the trial records and checked against ``selection.json``.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from dpbench.evaluation.report_parts import STYLE
from dpbench.io import atomic_write_bytes
from dpbench.results import load_results, task_summaries
from dpbench_baselines.selection import SELECTION, SelectionRecord, select
from dpbench_baselines.sweep import pending
from dpbench_baselines.sweep_spec import SweepSpec


def _png(fig: Figure) -> str:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return f'<img alt="plot" src="data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}">'


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _per_lr_plot(spec: SweepSpec, record: SelectionRecord) -> str:
    """Fig. 5 style: per task, the best seed-averaged validation score reached at each learning rate."""
    configs = spec.grid.configs()
    fig, ax = plt.subplots(figsize=(6, 3.4))
    for i, task in enumerate(record.tasks):
        best: list[float] = []
        for lr in spec.grid.lrs:
            values = [v for c, v in zip(configs, record.means[i], strict=True) if c.lr == lr and v is not None]
            best.append(max(values) if values else np.nan)
        ax.plot(range(len(spec.grid.lrs)), best, marker="o", label=task)
    ax.set_xticks(range(len(spec.grid.lrs)), [f"{lr:g}" for lr in spec.grid.lrs])
    ax.set_xlabel("learning rate γ")
    ax.set_ylabel("best validation score")
    ax.legend(fontsize=7)
    return _png(fig)


def _tau_warmup_plot(spec: SweepSpec, record: SelectionRecord) -> str:
    """Fig. 6 style: mean rank over tasks and the other settings, per τγ × warm-up."""
    configs = spec.grid.configs()
    ranks = np.array(record.ranks) if record.tasks else np.zeros((0, len(configs)))
    grid = np.full((len(spec.grid.warmups), len(spec.grid.taus)), np.nan)
    for a, warm in enumerate(spec.grid.warmups):
        for b, tau in enumerate(spec.grid.taus):
            cols = [j for j, c in enumerate(configs) if c.warmup == warm and c.tau == tau]
            if ranks.size and cols:
                grid[a, b] = float(ranks[:, cols].mean())
    fig, ax = plt.subplots(figsize=(4.5, 2.8))
    image = ax.imshow(grid, cmap="viridis_r")
    ax.set_xticks(range(len(spec.grid.taus)), [f"τγ={t:g}" for t in spec.grid.taus])
    ax.set_yticks(range(len(spec.grid.warmups)), ["warm-up" if w else "no warm-up" for w in spec.grid.warmups])
    for (a, b), value in np.ndenumerate(grid):
        ax.text(b, a, f"{value:.2f}", ha="center", va="center", color="white", fontsize=8)
    fig.colorbar(image, ax=ax, label="mean rank (lower is better)")
    return _png(fig)


def _difference_plot(rows: pd.DataFrame) -> str:
    """Figs. 2-4 style: per task, our mean minus each baseline's, error bar = the larger std, 2σ band marked."""
    fig, ax = plt.subplots(figsize=(7, 3.4))
    pairs = list(dict.fromkeys(zip(rows["method"], rows["baseline"], strict=True)))
    tasks = list(dict.fromkeys(rows["task"]))
    width = 0.8 / max(1, len(pairs))
    for k, (ours, baseline) in enumerate(pairs):
        part = rows[(rows["method"] == ours) & (rows["baseline"] == baseline)].set_index("task").reindex(tasks)
        spread = np.maximum(part["ours_std"], part["theirs_std"])
        ax.errorbar(np.arange(len(tasks)) + k * width, part["difference"], yerr=2 * spread, fmt="o", capsize=3,
                    label=f"{ours} vs {baseline}")
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xticks(np.arange(len(tasks)) + 0.4 - width / 2, tasks, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("score difference\n(bars: 2 × larger std)")
    ax.legend(fontsize=7)
    return _png(fig)


def render(spec: SweepSpec, folder: Path, comparison: pd.DataFrame | None) -> str:
    """The report's HTML."""
    record = select(spec, folder)
    stored = folder / SELECTION
    parts = [f"<h1>LOTO sweep: {html.escape(spec.protocol.name)}</h1>"]
    if spec.protocol.pool == "synthetic":
        parts.append('<p class="banner">SYNTHETIC pool: these numbers check the pipeline, not real-data '
                     "performance.</p>")
    if spec.scheduler == "asha":
        parts.append('<p class="banner">ASHA successive halving: NOT the paper\'s protocol; trials stopped early '
                     "have no score and rank last on their tasks.</p>")
    left = pending(spec, folder)
    parts.append(f"<p>protocol {html.escape(spec.protocol.name)} (sha256 {spec.protocol_sha256}), sweep "
                 f"{spec.sha256()}, {len(spec.trials())} trials ({len(left)} unfinished), {spec.iterations} "
                 f"iterations, batch {spec.batch_size}, seeds {', '.join(map(str, spec.seeds))}; validation "
                 "scores (probe trained on train, scored on val).</p>")
    if stored.is_file():
        same = SelectionRecord.model_validate_json(stored.read_bytes()) == record
        parts.append(f"<p>stored selection.json {'matches' if same else '<b>DIFFERS FROM</b>'} the selection "
                     "recomputed from the trial records.</p>")
    header = ["task", *record.configs]
    rows = [[html.escape(t)] + [("–" if m is None else f"{m:.4f}") + f" ({r:g})" for m, r in zip(
        record.means[i], record.ranks[i], strict=True)] for i, t in enumerate(record.tasks)]
    rows.append(["<b>average rank (Eq. 2)</b>", *[f"{v:.3f}" for v in record.average_rank]])
    parts += ["<h2>Rank matrix: validation score (rank)</h2>", _table(header, rows)]
    parts += ["<h2>Selected configuration per task (own column excluded)</h2>", _table(
        ["task", "configuration", "average rank on the other tasks", "tied with"],
        [[html.escape(c.task), html.escape(c.config or "none"), "–" if c.loto_rank is None else f"{c.loto_rank:.3f}",
          html.escape(", ".join(c.tied))] for c in record.choices])]
    if record.notes:
        parts.append("<h3>Notes (degenerate choices)</h3><ul>" + "".join(
            f"<li>{html.escape(n)}</li>" for n in record.notes) + "</ul>")
    for protocol in ("linear", "finetune"):
        path = folder / "final" / protocol / "results.json"
        if path.is_file():
            summaries = task_summaries(load_results(path))
            parts += [f"<h2>Final test scores ({protocol})</h2>", _table(
                ["task", "metric", "mean", "std", "seeds"],
                [[html.escape(t), s.metric, f"{s.mean:.4f}", f"{s.std:.4f}", str(s.n)] for t, s in summaries.items()])]
    if comparison is not None and len(comparison):
        parts += ["<h2>Comparison with the baselines (paper's rule: |Δ| > 2 × the larger std)</h2>", _table(
            ["task", "ours", "baseline", "our score", "baseline score", "difference", "verdict"],
            [[html.escape(str(r.task)), html.escape(str(r.method)), html.escape(str(r.baseline)),
              f"{r.ours:.4f} ± {r.ours_std:.4f}", f"{r.theirs:.4f} ± {r.theirs_std:.4f}", f"{r.difference:+.4f}",
              str(r.verdict)]
             for r in comparison.itertuples(index=False)]), _difference_plot(comparison)]
    if record.tasks:
        parts += ["<h2>Validation score per learning rate</h2>", _per_lr_plot(spec, record),
                  "<h2>Mean rank per τγ × warm-up</h2>", _tau_warmup_plot(spec, record)]
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>LOTO {html.escape(spec.protocol.name)}"
            f"</title><style>{STYLE}</style></head><body>{''.join(parts)}</body></html>")


def write_loto_report(spec: SweepSpec, folder: Path, comparison: pd.DataFrame | None, out: Path) -> Path:
    atomic_write_bytes(out, render(spec, folder, comparison).encode())
    return out
