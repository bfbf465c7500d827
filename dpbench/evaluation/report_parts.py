"""The pieces of ``report.html``: inline plots (PNG as base64), the settings table, the confusion matrices with what
their operating point means. Every number shown is read from the results file."""

from __future__ import annotations

import base64
import html
import io
import math
from dataclasses import dataclass
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from dpbench.results import Selection, TaskInfo, TaskScore

STYLE = """body{font-family:system-ui,sans-serif;overflow-wrap:anywhere;margin:2em auto;max-width:1100px;padding:0 1em}
table{border-collapse:collapse;margin:1em 0;max-width:100%}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:right;overflow-wrap:break-word;vertical-align:top}
.cm th,td.any{overflow-wrap:anywhere}
th{background:#f3f3f3}td.l,th.l{text-align:left}code{overflow-wrap:anywhere;word-break:break-all}
th.k{white-space:nowrap}
img{max-width:100%;height:auto}
.banner{background:#fff3cd;border:1px solid #e0b000;padding:.6em 1em;font-weight:600}
.note{color:#444;font-size:92%;max-width:60em}
.cm td{min-width:2.6em;text-align:center}.grid{display:flex;flex-wrap:wrap;gap:1.5em}
.grid>div{font-size:90%;max-width:100%}.card{max-width:34em}
.warn{color:#8a4b00}td.warn{text-align:left;max-width:32em}"""

#: What each evaluation setting means, for the settings table (unknown keys are shown as they are).
SETTING_NAMES = {
    "protocol": "protocol (linear: frozen features + linear probe; finetune: the whole network trained)",
    "probe": "linear probe (svm: scikit-learn LinearSVC; fast: batched solver)",
    "seeds": "seeds", "batch_size": "batch size", "precision": "feature-extraction precision",
    "channels_last": "channels-last memory format", "C_grid": "grid of the probe's regularisation C",
    "finetune_lrs": "fine-tuning learning rates", "finetune_epochs": "fine-tuning epochs",
    "finetune_batch_size": "fine-tuning batch size", "finetune_augment": "fine-tuning augmentation",
    "finetune_amp": "bf16 autocast while fine-tuning", "finetune_max_batches": "batches per epoch (empty: all)",
}
METRIC_NAMES = {"roc_auc": "ROC AUC", "accuracy": "accuracy"}


def png(fig: Any) -> str:
    """A matplotlib figure as an inline ``data:`` URL (closed afterwards)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def bar_plot(names: list[str], means: list[float], stds: list[float]) -> str:
    """Mean test score per task, with the standard deviation over seeds."""
    fig, ax = plt.subplots(figsize=(max(6.0, 0.45 * len(names) + 2), 3.6))
    ax.bar(range(len(names)), means, yerr=stds, color="tab:blue", capsize=3)
    ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("test score (ROC AUC or accuracy)")
    ax.set_title("mean test score per task (error bars: std over seeds)", fontsize=10)
    fig.tight_layout()
    return png(fig)


def curve_plot(task: str, scores: list[TaskScore]) -> str | None:
    """The selection criterion over the grid, one line per seed, the chosen value circled; None without a grid."""
    chosen = [s for s in scores if s.selection is not None and len(s.selection.grid) > 1]
    if not chosen:
        return None
    fig, ax = plt.subplots(figsize=(3.6, 2.4))
    first: Selection | None = None
    for s in chosen:
        sel = s.selection
        assert sel is not None
        first = first or sel
        y = [math.nan if v is None else v for v in sel.curve]
        ax.plot(sel.grid, y, marker=".", linewidth=1, label=f"seed {s.seed}")
        picked = sel.curve[sel.grid.index(sel.value)] if sel.value in sel.grid else None
        if picked is not None:
            ax.plot([sel.value], [picked], "o", markersize=9, markerfacecolor="none", color="black")
    assert first is not None
    if min(first.grid) > 0 and max(first.grid) / min(first.grid) >= 100:
        ax.set_xscale("log")
    ax.set_xlabel(first.parameter, fontsize=8)
    ax.set_ylabel(first.criterion.split(" on ")[0][:40], fontsize=7)
    ax.tick_params(labelsize=7)
    ax.set_title(task[:48], fontsize=8)
    if len(chosen) > 1:
        ax.legend(fontsize=6)
    fig.tight_layout()
    return png(fig)


def settings_html(settings: dict[str, Any]) -> str:
    """The evaluation settings as a readable two-column table."""
    rows = "".join(f"<tr><th class=l>{html.escape(SETTING_NAMES.get(k, k))}</th><td class=l><code>"
                   f"{html.escape('' if v is None else str(v))}</code></td></tr>" for k, v in settings.items())
    return f"<h2>Settings</h2><table>{rows}</table>" if rows else ""


def split_cells(info: TaskInfo | None) -> str:
    """Three cells, train / val / test: images (groups), from the results file; ``?`` for an older file."""
    cells = []
    for split in ("train", "val", "test"):
        size = info.splits.get(split) if info else None
        cells.append(f"<td>{size.images:,} ({size.groups:,})</td>" if size else "<td>?</td>")
    return "".join(cells)


@dataclass(frozen=True)
class Operating:
    """What the summed confusion matrix says at its operating point."""

    accuracy: float
    recalls: list[float | None]  # per true class; None for a class absent from the test split


def operating_point(total: np.ndarray) -> Operating:
    """Accuracy and per-class recall of a confusion matrix (rows: true class)."""
    rows = total.sum(axis=1)
    recalls = [None if n == 0 else float(total[i, i] / n) for i, n in enumerate(rows)]
    return Operating(accuracy=float(np.trace(total) / max(total.sum(), 1)), recalls=recalls)


def _operating_text(op: Operating, names: list[str], scores: list[TaskScore], n: int) -> str:
    metric = scores[0].metric
    kind = scores[0].prediction_kind
    positive = html.escape(names[-1])
    rule = ("the class with the highest probability" + (f" (for two classes: {positive} when its probability is "
                                                         "above 0.5)" if n == 2 else "")
            if kind == "probability" else
            "the class with the highest SVM decision value" + (f" (for two classes: {positive} when the decision "
                                                              "value is above 0)" if n == 2 else ""))
    recall = ", ".join(f"{html.escape(name)} {r:.1%}" for name, r in zip(names, op.recalls, strict=True)
                       if r is not None)
    mean = sum(s.score for s in scores) / len(scores)
    text = (f"Each image is counted under {rule}. At this operating point accuracy is {op.accuracy:.1%}; recall "
            f"per true class: {recall}.")
    if metric == "roc_auc" and n == 2:
        text += (f" The task's score, ROC AUC = {mean:.4f} (mean over seeds), does not depend on this threshold: it "
                 f"is the probability that a randomly chosen {html.escape(names[1])} image gets a higher "
                 f"{html.escape(names[1])} score than a randomly chosen {html.escape(names[0])} image. AUC and this "
                 "matrix can disagree when the scores rank the images well but the threshold sits in the wrong "
                 "place.")
    elif metric == "accuracy":
        text += f" The task's score is this accuracy per seed, {mean:.4f} on average."
    else:
        text += f" The task's score ({html.escape(metric)}) is {mean:.4f} on average."
    return text


def confusion_html(task: str, scores: list[TaskScore], names: list[str]) -> str:
    """The test confusion matrix summed over seeds, with its operating point explained next to the task's score."""
    with_cm = [s for s in scores if s.confusion]
    total = np.sum(np.array([s.confusion for s in with_cm]), axis=0)
    peak = max(int(total.max()), 1)
    rows = ["<tr><th class=l>true \\ predicted</th>" + "".join(f"<th>{html.escape(n)}</th>" for n in names) + "</tr>"]
    for name, row in zip(names, total, strict=True):
        cells = "".join(f"<td style='background:rgba(31,119,180,{0.08 + 0.8 * v / peak:.2f})'>{int(v)}</td>"
                        for v in row)
        rows.append(f"<tr><th class=l>{html.escape(name)}</th>{cells}</tr>")
    caption = f"<b>{html.escape(task)}</b>: {int(total.sum()):,} test predictions, summed over {len(with_cm)} seed(s)"
    explain = _operating_text(operating_point(total), names, with_cm, len(names))
    return (f"<div class=card data-task='{html.escape(task)}'>{caption}<table class=cm>{''.join(rows)}</table>"
            f"<p class=note>{explain}</p></div>")
