"""``dpbench audit``: check a built pool for leakage between splits and tasks."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from dpbench.cli.support import console, fail, friendly
from dpbench.errors import DpbenchError

if TYPE_CHECKING:
    from dpbench.pool.audit import AuditReport

SHOWN = 25  # findings printed on the terminal; the JSON report has them all


@friendly
def audit_command(
    root: Path = typer.Argument(..., help="Folder holding manifest.json and shards."),
    tasks: list[str] | None = typer.Option(None, "--tasks", help="Only these tasks (repeatable or comma-separated)."),
    threshold: int = typer.Option(4, help="Near duplicates: perceptual-hash Hamming distance ≤ this (of 64 bits)."),
    strict: bool = typer.Option(False, help="Also fail on duplicates across tasks (linked tasks may share slides)."),
    json_path: Path | None = typer.Option(None, "--json", help="Report file (default: ROOT/audit.json)."),
    workers: int = typer.Option(1, help="Shards decoded in parallel (processes)."),
) -> None:
    """Find groups shared across splits, exact and near-duplicate images across splits and tasks."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from dpbench.io import atomic_write_json
    from dpbench.pool.audit import audit_pool, select_tasks
    from dpbench.pool.built import BuiltPool

    if not root.is_dir():
        raise DpbenchError(f"{root} is not a folder: point dpbench audit at a built pool")
    pool = BuiltPool(root)
    manifest = pool.manifest
    chosen = select_tasks(manifest, tasks)
    total = sum(s.count for s in manifest.shards if s.task in chosen)
    columns = (TextColumn("auditing"), BarColumn(), MofNCompleteColumn(), TextColumn("images"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        bar = progress.add_task("images", total=total)
        report = audit_pool(pool, chosen, threshold, workers, on_shard=lambda n: progress.advance(bar, n),
                            )
    _print(report, strict)
    out = json_path or root / "audit.json"
    try:
        atomic_write_json(out, report.to_json(strict))
    except OSError as exc:
        raise DpbenchError(f"cannot write the report to {out}: {exc.strerror or exc}; pass --json PATH") from exc
    console.print(f"report: {out}", highlight=False)
    if report.failed(strict):
        c = report.findings.counts()
        what = [f"{c['shared_groups']} group(s) shared across splits",
                f"{c['exact_cross_split']} exact and {c['near_cross_split']} near duplicate(s) across splits"]
        if strict:
            what.append(f"{c['exact_cross_task']} exact and {c['near_cross_task']} near duplicate(s) across tasks")
        raise fail(f"leakage in {root}: {'; '.join(what)} (details in {out})", 1)


def _print(report: AuditReport, strict: bool) -> None:
    f = report.findings
    table = Table(title=f"pool {report.manifest.pool}: {f.images:,} images of {len(report.tasks)} task(s) "
                  f"audited in {report.seconds:.1f} s", caption="classes: images per class; missing: classes absent")
    for column in ("task", "split", "images", "groups", "classes", "missing"):
        table.add_column(column, justify="right" if column in ("images", "groups") else "left")
    for task, splits in f.balance.items():
        for split, row in splits.items():
            classes = ", ".join(f"{name} {count}" for name, count in row["classes"].items())
            missing = ", ".join(row["missing"])
            table.add_row(task, split, str(row["images"]), str(row["groups"]), classes,
                          f"[yellow]{missing}[/]" if missing else "")
    console.print(table)
    rows: list[tuple[bool, str, str, str]] = []  # (fails the audit, finding, task(s), images)
    for g in f.shared_groups:
        where = "; ".join(f"{split}: {', '.join(keys[:3])}{' …' if len(keys) > 3 else ''}"
                          for split, keys in g.keys.items())
        rows.append((True, "group across splits", g.task, f"group {g.group}: {where}"))
    for d in [*f.exact, *f.near]:
        kind = "exact duplicate" if d.exact else f"near duplicate, d={d.distance}"
        scope = "across splits" if d.cross_split else "across tasks" + ("" if strict else " (reported only)")
        copies = [*d.a] if d.exact else [*d.a, *d.b]
        shown = " ↔ ".join(f"{r.task}/{r}" for r in copies[:4]) + (" …" if len(copies) > 4 else "")
        tasks = ", ".join(sorted({r.task for r in copies}))
        rows.append((bool(d.cross_split) or strict, f"{kind} {scope}", tasks, shown))
    if not rows:
        console.print(f"[green]clean[/]: no group shared across splits, no exact or near (≤ {f.threshold} bits) "
                      "duplicates across splits or tasks")
        return
    rows.sort(key=lambda row: not row[0])  # stable: the findings that fail the audit come first
    failing = sum(row[0] for row in rows)
    findings = Table(title=f"{len(rows)} finding(s)" + (f", the {failing} failing the audit first" if failing else ""),
                     caption=f"… {len(rows) - SHOWN} more in the JSON report" if len(rows) > SHOWN else None)
    for column in ("finding", "task(s)", "images: task/split:key"):
        findings.add_column(column, overflow="fold")
    for fails, *cells in rows[:SHOWN]:
        findings.add_row(*cells, style="bold red" if fails else None)
    console.print(findings)
    if not report.failed(strict):
        console.print("[green]no leakage across splits[/]; duplicates across tasks are reported only "
                      "(--strict fails on them)")
