"""``dpbench rank``: rank methods across tasks from results files or a CSV."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import typer
from rich.table import Table

from dpbench.cli.output import FORMATS, emit, table_console
from dpbench.cli.support import choice, console, err_console, fraction, friendly, integer, writable
from dpbench.errors import DpbenchError
from dpbench.io import canonical_json

#: The values of dpbench.ranking.ranks.Aggregate and .Missing (mypy checks they agree; that module is heavy).
Aggregate = Literal["avg-rank", "borda"]
Missing = Literal["error", "worst", "available"]
METHODS, POLICIES = choice("--method", Aggregate), choice("--missing", Missing)  # their typer parsers


@friendly
def rank(
    results: list[Path] = typer.Argument(..., help="results JSON files and/or CSV (method,task,seed,score[,metric])."),
    method: Aggregate = typer.Option("avg-rank", help="avg-rank (paper Eq. 2) or borda.", parser=METHODS),
    missing: Missing = typer.Option("error", help="A task a method lacks, with avg-rank: refuse it (error), count "
                                    "it as last (worst), or average over the method's own tasks (available).",
                                    parser=POLICIES),
    bootstrap: int = typer.Option(1000, help="bootstrap resamples for rank intervals (0 = none).",
                                  parser=integer("--bootstrap", 0)),
    seed: int = typer.Option(0, help="bootstrap seed (≥ 0).", parser=integer("--seed", 0)),
    alpha: float = typer.Option(0.05, help="significance level, between 0 and 1.", parser=fraction("--alpha")),
    plot: Path | None = typer.Option(None, help="write a critical-difference diagram (png/pdf/svg)."),
    out: Path | None = typer.Option(None, help="folder for ranking.json, board.csv and tasks.csv."),
    format: str = typer.Option("table", "--format", parser=FORMATS, metavar="[table|csv|json]",
                               help="table; csv (the board, as board.csv) or json (the whole report, as "
                               "ranking.json) on stdout, with notes on stderr."),
) -> None:
    """Rank methods per task, aggregate across tasks, and say how sure the ranking is."""
    import pandas as pd

    from dpbench.ranking.report import rank_report, write_report
    from dpbench.ranking.table import read_scores

    if plot:
        from dpbench.ranking.plot import FORMATS, image_format

        if image_format(plot) not in FORMATS:
            raise DpbenchError(f"--plot {plot}: {image_format(plot)!r} is not an image format; end the name with "
                               ".png, .pdf or .svg")
        writable(plot.parent, "--plot path")
    if out:
        writable(out, "--out folder")
    table = read_scores(results)
    report = rank_report(table, method, missing, bootstrap, seed, alpha=alpha)
    if plot and "nemenyi" not in report:
        raise DpbenchError("a critical-difference diagram needs at least 2 tasks shared by all methods; drop --plot")
    notes = console if format == "table" else err_console  # stdout carries only the data for a script
    if format == "table":
        _print(report, len(table.tasks))
    elif format == "csv":
        emit(report["board"], "csv")
    else:
        typer.echo(canonical_json(report).decode(), nl=False)  # the bytes of ranking.json
    if out:
        for path in write_report(report, out):
            notes.print(f"wrote {path}")
        for page in link_reports(results, out, report):
            notes.print(f"linked {page} to this ranking")
    if plot:
        from dpbench.ranking.plot import cd_diagram

        nem = report["nemenyi"]
        cd_diagram(pd.Series(nem["avg_rank_common_tasks"]), nem["cd"], nem["groups"], plot,
                   f"Nemenyi CD (α={alpha}, {nem['n_tasks']} tasks)")
        notes.print(f"wrote {plot}")


def link_reports(files: list[Path], out: Path, report: dict[str, Any]) -> list[Path]:
    """Rewrite the report.html beside each ranked results file with a link to the ranking in ``out``."""
    from dpbench.evaluation.report import ranking_link
    from dpbench.evaluation.report import write_report as write_page
    from dpbench.results import load_results

    linked = []
    for file in files:
        page = file.parent / "report.html"
        if file.suffix.lower() != ".json" or not page.is_file():
            continue
        try:
            results = load_results(file)
            link = ranking_link(page, out, report["board"], results.method, report["settings"]["score"])
            if link is not None:
                write_page(results, page, link)
                linked.append(page)
        except (DpbenchError, OSError):  # not a results file, or a read-only folder: the ranking stands alone
            continue
    return linked


def p_value(p: float | None) -> str:
    """``p = 0.0123``; a p-value that rounded to 0 in the report (below 5e-7) is ``p < 1e-6``."""
    if p is None:
        return "p = n/a"
    return "p < 1e-6" if p == 0 else f"p = {p:.3g}"


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
    table_console().print(table)
    if "friedman" in report:
        fr, nem = report["friedman"], report["nemenyi"]
        f_stat = "inf" if fr["iman_davenport"] is None else f"{fr['iman_davenport']:.2f}"
        console.print(f"Friedman χ² = {fr['chi2']:.2f} ({p_value(fr['p_chi2'])}); Iman–Davenport F = {f_stat} "
                      f"({p_value(fr['p_iman_davenport'])}); Nemenyi CD = {nem['cd']:.2f} at α = {nem['alpha']}")
