"""A self-contained HTML report of a results file: per-task table, bar plot, confusion matrices."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from dpbench.errors import RegistryError
from dpbench.io import atomic_write_bytes
from dpbench.results import Results, TaskScore, scores_by_task, task_summaries
from dpbench.tasks.registry import get_task

STYLE = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}
table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f3f3f3}td.l,th.l{text-align:left}
.banner{background:#fff3cd;border:1px solid #e0b000;padding:.6em 1em;font-weight:600}
.cm td{width:2.6em;text-align:center}.grid{display:flex;flex-wrap:wrap;gap:1.5em}.grid div{font-size:90%}
.warn{color:#8a4b00}td.warn{text-align:left;max-width:32em}"""


def _bar_plot(names: list[str], means: list[float], stds: list[float], title: str) -> str:
    fig, ax = plt.subplots(figsize=(max(6.0, 0.45 * len(names) + 2), 3.6))
    ax.bar(range(len(names)), means, yerr=stds, color="tab:blue", capsize=3)
    ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("test score (ROC AUC or accuracy)")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def _class_names(results: Results, task: str, n: int) -> list[str]:
    """The class names the results file records for ``task``, else the registry's, else 0..n-1."""
    info = results.provenance.tasks.get(task)
    if info is not None and len(info.classes) == n:
        return list(info.classes)
    try:
        return list(get_task(task).class_names)
    except RegistryError:
        return [str(i) for i in range(n)]


def _tasks_html(results: Results) -> str:
    """What each task is (its card's fields for a user's task card), from the results file."""
    rows = []
    for task, info in results.provenance.tasks.items():
        card = info.card or {}
        extra = "; ".join(f"{k} {card[k]}" for k in ("organ", "organ_other", "stain", "stain_other", "um_per_px",
                                                     "patch_px", "description") if card.get(k) not in (None, ""))
        rows.append(f"<tr><td class=l>{html.escape(task)}</td><td class=l>{info.defined_by}</td>"
                    f"<td class=l>{html.escape(', '.join(info.classes))}</td><td>{info.metric}</td>"
                    f"<td>{info.split_unit}</td><td class=l>{html.escape(info.licence)}</td>"
                    f"<td class=l>{html.escape(extra)}</td></tr>")
    if not rows:
        return ""
    head = ("<tr><th class=l>task</th><th class=l>defined by</th><th class=l>classes</th><th>metric</th>"
            "<th>split by</th><th class=l>licence</th><th class=l>card</th></tr>")
    return f"<h2>Tasks</h2><table>{head}{''.join(rows)}</table>"


def _confusion_html(task: str, matrices: list[list[list[int]]], results: Results) -> str:
    total = np.sum(np.array(matrices), axis=0)
    names = _class_names(results, task, len(total))
    peak = max(int(total.max()), 1)
    rows = ["<tr><th class=l>true \\ predicted</th>" + "".join(f"<th>{html.escape(n)}</th>" for n in names) + "</tr>"]
    for name, row in zip(names, total, strict=True):
        cells = "".join(f"<td style='background:rgba(31,119,180,{0.08 + 0.8 * v / peak:.2f})'>{int(v)}</td>"
                        for v in row)
        rows.append(f"<tr><th class=l>{html.escape(name)}</th>{cells}</tr>")
    caption = f"<b>{html.escape(task)}</b> (summed over {len(matrices)} seed(s))"
    return f"<div>{caption}<table class=cm>{''.join(rows)}</table></div>"


def _warnings(scores: list[TaskScore]) -> list[str]:
    """A task's warnings over its seeds, each once, naming the seeds when not all of them have it."""
    seeds: dict[str, list[int]] = {}
    for s in scores:
        for note in s.warnings:
            seeds.setdefault(note, []).append(s.seed)
    return [note if len(found) == len(scores) else f"{note} (seed {', '.join(map(str, found))})"
            for note, found in seeds.items()]


def _selection_html(per_task: dict[str, list[TaskScore]]) -> str:
    """How each hyper-parameter was chosen: the criterion and its value over the grid, per task and seed."""
    rows = []
    for task, scores in per_task.items():
        for s in scores:
            sel = s.selection
            if sel is None:
                continue
            curve = " ".join(f"{g:g}:{'–' if v is None else f'{v:.3f}'}" for g, v in zip(sel.grid, sel.curve,
                                                                                          strict=True))
            folds = f"{sel.folds} folds" + (f", {sel.unscorable_folds} unscorable" if sel.unscorable_folds else "")
            rows.append(f"<tr><td class=l>{html.escape(task)}</td><td>{s.seed}</td><td class=l>{sel.parameter} = "
                        f"{sel.value:g}</td><td class=l>{html.escape(sel.criterion)}</td>"
                        f"<td class=l>{folds if sel.folds else ''}</td><td class=l><code>{html.escape(curve)}</code>"
                        f"</td><td class=l>{html.escape(sel.tie_rule)}</td></tr>")
    if not rows:
        return ""
    head = ("<tr><th class=l>task</th><th>seed</th><th class=l>selected</th><th class=l>criterion</th>"
            "<th class=l>CV</th><th class=l>criterion over the grid (– = could not be scored)</th>"
            "<th class=l>ties</th></tr>")
    return f"<h2>Hyper-parameter selection</h2><table>{head}{''.join(rows)}</table>"


def render_report(results: Results) -> str:
    """The HTML text of the report."""
    prov = results.provenance
    per_task = scores_by_task(results)
    summaries = task_summaries(results)
    names = list(per_task)
    means = [summaries[t].mean for t in names]
    stds = [summaries[t].std for t in names]
    title = f"{results.method} on pool {prov.pool}" + (" (SYNTHETIC data)" if prov.synthetic else "")
    if any(info.defined_by == "card" for info in prov.tasks.values()):
        title += " (your own task cards, not dpbench's benchmark tasks)"
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{STYLE}</style></head><body><h1>dpbench evaluation: {html.escape(title)}</h1>"]
    if prov.synthetic:
        parts.append("<p class=banner>SYNTHETIC pool: procedurally generated images. These scores check the "
                     "pipeline; they say nothing about performance on real histology.</p>")
    if prov.scored_split != "test":
        parts.append(f"<p class=banner>Scored on the {html.escape(prov.scored_split)} split (model selection, "
                     "§IV-D): not a test result.</p>")
    rows = "".join(f"<tr><th class=l>{html.escape(k)}</th><td class=l>{html.escape(str(v))}</td></tr>"
                   for k, v in prov.model_dump().items() if v not in (None, {}, "") and k != "tasks")
    parts.append(f"<h2>Provenance</h2><table>{rows}</table>")
    parts.append(_tasks_html(results))
    table = ["<tr><th class=l>task</th><th>metric</th><th>mean ± std</th><th>seeds</th><th class=l>selected</th>"
             "<th class=l>warnings</th></tr>"]
    for task, mean, std in zip(names, means, stds, strict=True):
        selected = "; ".join(f"{k}={v:g}" for k, v in per_task[task][0].selected.items())
        notes = _warnings(per_task[task])
        table.append(f"<tr><td class=l>{html.escape(task)}</td><td>{per_task[task][0].metric}</td>"
                     f"<td>{mean:.4f} ± {std:.4f}</td><td>{len(per_task[task])}</td>"
                     f"<td class=l>{html.escape(selected)} (seed {per_task[task][0].seed})</td>"
                     f"<td class=warn>{'<br>'.join('⚠ ' + html.escape(n) for n in notes)}</td></tr>")
    parts.append(f"<h2>Per-task test scores</h2><table>{''.join(table)}</table>")
    parts.append(_selection_html(per_task))
    parts.append(f"<img alt='per-task scores' src='data:image/png;base64,{_bar_plot(names, means, stds, title)}'>")
    if results.skipped:
        items = "".join(f"<li><b>{html.escape(k)}</b>: {html.escape(v)}</li>" for k, v in results.skipped.items())
        parts.append(f"<h2>Skipped tasks</h2><ul>{items}</ul>")
    matrices = [_confusion_html(t, [s.confusion for s in per_task[t] if s.confusion], results) for t in names
                if any(s.confusion for s in per_task[t])]
    parts.append(f"<h2>Confusion matrices (test)</h2><div class=grid>{''.join(matrices)}</div></body></html>")
    return "\n".join(parts)


def write_report(results: Results, path: Path) -> None:
    """Write the report atomically."""
    atomic_write_bytes(path, render_report(results).encode())
