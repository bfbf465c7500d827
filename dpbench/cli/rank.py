"""``dpbench rank``: rank methods across tasks from results files or a CSV."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from dpbench.cli.support import console, friendly
from dpbench.errors import DpbenchError

if TYPE_CHECKING:
    from dpbench.ranking.ranks import Aggregate, Missing


@friendly
def rank(
    results: list[Path] = typer.Argument(..., help="results JSON files and/or CSV (method,task,seed,score[,metric])."),
    method: str = typer.Option("avg-rank", help="avg-rank (paper Eq. 2) or borda."),
    missing: str = typer.Option("error", help="missing tasks with avg-rank: error, worst or available."),
    bootstrap: int = typer.Option(1000, help="bootstrap resamples for rank intervals (0 = none)."),
    seed: int = typer.Option(0, help="bootstrap seed."),
    alpha: float = typer.Option(0.05, help="significance level."),
    plot: Path | None = typer.Option(None, help="write a critical-difference diagram (png/pdf/svg)."),
    out: Path | None = typer.Option(None, help="folder for ranking.json, board.csv and tasks.csv."),
) -> None:
    """Rank methods per task, aggregate across tasks, and say how sure the ranking is."""
    import pandas as pd

    from dpbench.ranking.report import rank_report, write_report
    from dpbench.ranking.table import read_scores

    if method not in ("avg-rank", "borda"):
        raise DpbenchError(f"unknown --method {method!r}: use avg-rank or borda")
    if missing not in ("error", "worst", "available"):
        raise DpbenchError(f"unknown --missing {missing!r}: use error, worst or available")
    agg: Aggregate = "borda" if method == "borda" else "avg-rank"
    policy: Missing = "worst" if missing == "worst" else "available" if missing == "available" else "error"
    table = read_scores(results)
    report = rank_report(table, agg, policy, bootstrap, seed, alpha=alpha)
    _print(report, len(table.tasks))
    if out:
        for path in write_report(report, out):
            console.print(f"wrote {path}")
    if plot:
        if "nemenyi" not in report:
            raise DpbenchError("a critical-difference diagram needs at least 2 tasks shared by all methods")
        from dpbench.ranking.plot import cd_diagram

        nem = report["nemenyi"]
        cd_diagram(pd.Series(nem["avg_rank_common_tasks"]), nem["cd"], nem["groups"], plot,
                   f"Nemenyi CD (α={alpha}, {nem['n_tasks']} tasks)")
        console.print(f"wrote {plot}")


def _print(report: dict[str, Any], n_tasks: int) -> None:
    settings = report["settings"]
    if report.get("synthetic"):
        console.print("[bold yellow]SYNTHETIC tasks[/]: these ranks check the pipeline, not real-data performance.")
    table = Table(title=f"ranking over {n_tasks} task(s): {settings['score']}")
    columns = ["rank", "method", "score", "borda", "cover"]
    if settings["bootstrap"]:
        columns += [f"{int(settings['level'] * 100)}% ranks", "P(1st)", "top"]
    for column in columns:
        table.add_column(column, justify="left" if column == "method" else "right", no_wrap=column == "method")
    for row in report["board"]:
        cells = [str(row["rank"]), row["method"], f"{row['score']:.3f}", f"{row['borda']:.1f}",
                 f"{row['coverage']:.0%}"]
        if settings["bootstrap"]:
            top = "yes" if row["top_group"] else ""
            cells += [f"{row['rank_low']}–{row['rank_high']}", f"{row['p_first']:.2f}", top]
        table.add_row(*cells)
    console.print(table)
    if "friedman" in report:
        fr, nem = report["friedman"], report["nemenyi"]
        f_stat = "inf" if fr["iman_davenport"] is None else f"{fr['iman_davenport']:.2f}"
        console.print(f"Friedman χ² = {fr['chi2']:.2f} (p = {fr['p_chi2']:.3g}); Iman–Davenport F = {f_stat} "
                      f"(p = {fr['p_iman_davenport']:.3g}); Nemenyi CD = {nem['cd']:.2f} at α = {nem['alpha']}")
