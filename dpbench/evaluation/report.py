"""A self-contained HTML report of a results file that explains itself: what each task is and how big its splits
are, the test scores, how each hyper-parameter was chosen (with its curve over the grid), the warnings, the
settings, the confusion matrices next to the task's metric, and the ranking when one was made.

One file, no external asset: CSS inline, plots as base64 PNG. Every number comes from the results file (and the
ranking file it links to)."""

from __future__ import annotations

import html
import os
from dataclasses import dataclass
from pathlib import Path

from dpbench.errors import RegistryError
from dpbench.evaluation import report_parts as piece
from dpbench.io import atomic_write_bytes
from dpbench.results import Results, TaskScore, scores_by_task, task_summaries
from dpbench.tasks.registry import get_task


@dataclass(frozen=True)
class RankingLink:
    """Where this method stands in a ranking written by ``dpbench rank --out DIR`` (read from its ranking.json)."""

    href: str  # the ranking folder, relative to the report
    rank: int
    methods: int
    score: float
    score_name: str


def _class_names(results: Results, task: str, n: int) -> list[str]:
    """The class names the results file records for ``task``, else the registry's, else 0..n-1."""
    info = results.provenance.tasks.get(task)
    if info is not None and len(info.classes) == n:
        return list(info.classes)
    try:
        return list(get_task(task).class_names)
    except RegistryError:
        return [str(i) for i in range(n)]


def _tasks_html(results: Results, names: list[str]) -> str:
    """What each task is and its split sizes (images and groups), from the results file."""
    rows = []
    for task in names + [t for t in results.provenance.tasks if t not in names]:
        info = results.provenance.tasks.get(task)
        if info is None:
            rows.append(f"<tr><td class=l>{html.escape(task)}</td>" + "<td>?</td>" * 3 + "<td class=l></td>" * 5
                        + "</tr>")
            continue
        card = info.card or {}
        extra = "; ".join(f"{k} {card[k]}" for k in ("organ", "organ_other", "stain", "stain_other", "um_per_px",
                                                     "patch_px", "description") if card.get(k) not in (None, ""))
        rows.append(f"<tr><td class=l>{html.escape(task)}</td>{piece.split_cells(info)}"
                    f"<td class=l>{html.escape(info.split_unit)}</td>"
                    f"<td class='l any'>{html.escape(', '.join(info.classes))}</td>"
                    f"<td class=l>{piece.METRIC_NAMES.get(info.metric, html.escape(info.metric))}</td>"
                    f"<td class=l>{info.defined_by}; {html.escape(info.licence)}</td>"
                    f"<td class=l>{html.escape(extra)}</td></tr>")
    head = ("<tr><th class=l>task</th><th>train</th><th>val</th><th>test</th><th class=l>grouped by</th>"
            "<th class=l>classes</th><th class=l>metric</th><th class=l>defined by; licence</th>"
            "<th class=l>card</th></tr>")
    return ("<h2>Tasks and splits</h2><p class=note>Split sizes are images (groups): images of one group (a patient, "
            "a slide, ...) are all in the same split, so no group is seen in training and in test.</p>"
            f"<table data-testid=tasks>{head}{''.join(rows)}</table>")


def _warnings(scores: list[TaskScore]) -> list[str]:
    """A task's warnings over its seeds, each once, naming the seeds when not all of them have it."""
    seeds: dict[str, list[int]] = {}
    for s in scores:
        for note in s.warnings:
            seeds.setdefault(note, []).append(s.seed)
    return [note if len(found) == len(scores) else f"{note} (seed {', '.join(map(str, found))})"
            for note, found in seeds.items()]


def _warnings_html(per_task: dict[str, list[TaskScore]]) -> str:
    items = [f"<li><b>{html.escape(task)}</b>: {html.escape(note)}</li>" for task, scores in per_task.items()
             for note in _warnings(scores)]
    if not items:
        return ("<h2>Warnings</h2><p class=note>None: no hyper-parameter at the edge of its grid, no fallback, no "
                "unscorable fold, no constant prediction.</p>")
    return ("<h2>Warnings</h2><p class=note>Degenerate choices that make a score less trustworthy: a selected value "
            "at the edge of the grid (the best may lie outside it), a fallback when the criterion could not decide, "
            f"cross-validation folds holding a single class.</p><ul class=warn>{''.join(items)}</ul>")


def _selection_html(per_task: dict[str, list[TaskScore]]) -> str:
    """How each hyper-parameter was chosen: a small plot of the criterion over the grid per task, and the table."""
    rows, plots = [], []
    for task, scores in per_task.items():
        plot = piece.curve_plot(task, scores)
        if plot:
            plots.append(f"<div><img alt='{html.escape(task)}: selection criterion over the grid' src='{plot}'></div>")
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
    return ("<h2>Hyper-parameter selection</h2><p class=note>Each curve is the selection criterion (measured on "
            "training and validation data only, never on test) over the grid; the circle is the chosen value.</p>"
            f"<div class=grid>{''.join(plots)}</div><table>{head}{''.join(rows)}</table>")


def _ranking_html(link: RankingLink | None) -> str:
    if link is None:
        return ""
    href = html.escape(link.href.rstrip("/"))
    return (f"<h2>Ranking</h2><p>Rank <b>{link.rank}</b> of {link.methods} methods ({html.escape(link.score_name)}: "
            f"{link.score:.3f}) in <a href='{href}/ranking.json'>{href}/ranking.json</a> "
            f"(board: <a href='{href}/board.csv'>board.csv</a>, per task: <a href='{href}/tasks.csv'>tasks.csv</a>)."
            "</p>")


def render_report(results: Results, ranking: RankingLink | None = None) -> str:
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
             "<meta name=viewport content='width=device-width, initial-scale=1'>"
             f"<style>{piece.STYLE}</style></head><body><h1>dpbench evaluation: {html.escape(title)}</h1>"]
    if prov.synthetic:
        parts.append("<p class=banner>SYNTHETIC pool: procedurally generated images. These scores check the "
                     "pipeline; they say nothing about performance on real histology.</p>")
    if prov.scored_split != "test":
        parts.append(f"<p class=banner>Scored on the {html.escape(prov.scored_split)} split (model selection, "
                     "§IV-D): not a test result.</p>")
    parts.append(_ranking_html(ranking))
    table = ["<tr><th class=l>task</th><th>metric</th><th>mean ± std</th><th>seeds</th><th class=l>selected</th>"
             "<th class=l>warnings</th></tr>"]
    for task, mean, std in zip(names, means, stds, strict=True):
        selected = "; ".join(f"{k}={v:g}" for k, v in per_task[task][0].selected.items())
        notes = _warnings(per_task[task])
        table.append(f"<tr><td class=l>{html.escape(task)}</td>"
                     f"<td>{piece.METRIC_NAMES.get(per_task[task][0].metric, per_task[task][0].metric)}</td>"
                     f"<td>{mean:.4f} ± {std:.4f}</td><td>{len(per_task[task])}</td>"
                     f"<td class=l>{html.escape(selected)} (seed {per_task[task][0].seed})</td>"
                     f"<td class=warn>{'<br>'.join('⚠ ' + html.escape(n) for n in notes)}</td></tr>")
    split = html.escape(prov.scored_split)
    parts.append(f"<h2>Per-task {split} scores</h2><p class=note>{split.capitalize()} split only, mean and std over "
                 "seeds. ROC AUC (two classes) ranges from 0.5 (chance) to 1; accuracy from 1/classes (chance, for "
                 f"balanced classes) to 1.</p><table data-testid=scores>{''.join(table)}</table>")
    parts.append(f"<img alt='per-task scores' src='{piece.bar_plot(names, means, stds)}'>")
    parts.append(_tasks_html(results, names))
    parts.append(_warnings_html(per_task))
    parts.append(_selection_html(per_task))
    if results.skipped:
        items = "".join(f"<li><b>{html.escape(k)}</b>: {html.escape(v)}</li>" for k, v in results.skipped.items())
        parts.append(f"<h2>Skipped tasks</h2><ul>{items}</ul>")
    matrices = []
    for t in names:
        first = next((s.confusion for s in per_task[t] if s.confusion), None)
        if first is not None:
            matrices.append(piece.confusion_html(t, per_task[t], _class_names(results, t, len(first))))
    parts.append("<h2>Confusion matrices (test)</h2><p class=note>Rows: true class; columns: predicted class.</p>"
                 f"<div class=grid>{''.join(matrices)}</div>")
    parts.append(piece.settings_html(prov.settings))
    rows = "".join(f"<tr><th class='l k'>{html.escape(k)}</th><td class=l><code>{html.escape(str(v))}</code></td></tr>"
                   for k, v in prov.model_dump().items() if v not in (None, {}, "") and k not in ("tasks", "settings"))
    parts.append(f"<h2>Provenance</h2><table>{rows}</table></body></html>")
    return "\n".join(parts)


def write_report(results: Results, path: Path, ranking: RankingLink | None = None) -> None:
    """Write the report atomically."""
    atomic_write_bytes(path, render_report(results, ranking).encode())


def ranking_link(report: Path, ranking_dir: Path, board: list[dict[str, object]], method: str,
                 score_name: str) -> RankingLink | None:
    """The link a report at ``report`` gets to the ranking in ``ranking_dir``; None when ``method`` is not on it."""
    row = next((r for r in board if r.get("method") == method), None)
    if row is None:
        return None
    href = Path(os.path.relpath(ranking_dir.resolve(), report.resolve().parent)).as_posix()
    return RankingLink(href=href, rank=int(str(row["rank"])), methods=len(board), score=float(str(row["score"])),
                       score_name=score_name)
