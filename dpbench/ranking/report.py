"""One ranking run: every statistic of the scorer in one JSON-serialisable report, plus CSV tables."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from dpbench.errors import DpbenchError
from dpbench.io import atomic_write_bytes, atomic_write_json
from dpbench.ranking.ranks import (
    Aggregate,
    Missing,
    average_rank,
    bootstrap_ranks,
    borda,
    coverage,
    final_order,
    loto_average_ranks,
    per_task_ranks,
)
from dpbench.ranking.significance import cd_groups, friedman, nemenyi_cd, two_std_matrix, wilcoxon_holm
from dpbench.ranking.table import ScoreTable


def _clean(value: Any) -> Any:
    """JSON-safe values: floats rounded to 6 digits, non-finite floats as None."""
    if isinstance(value, float):
        return round(value, 6) if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def rank_report(table: ScoreTable, method: Aggregate = "avg-rank", missing: Missing = "error",
                n_boot: int = 1000, seed: int = 0, level: float = 0.95, alpha: float = 0.05) -> dict[str, Any]:
    """Compute the leaderboard of ``table`` with its uncertainty and significance."""
    if not 0 < alpha < 1 or n_boot < 0 or seed < 0:
        raise DpbenchError(f"ranking needs 0 < alpha < 1, bootstrap ≥ 0 and seed ≥ 0 (got {alpha}, {n_boot}, {seed})")
    ranks = per_task_ranks(table)
    aggregate, position = final_order(ranks, method, missing)
    avg = average_rank(ranks, "available") if missing == "available" else None
    points = borda(ranks)
    cover = coverage(ranks)
    boot = bootstrap_ranks(table, n_boot, seed, level, method, missing) if n_boot else None
    board = []
    for name in sorted(table.methods, key=lambda m: (int(position[m]), m)):
        row: dict[str, Any] = {"method": name, "rank": int(position[name]), "score": float(aggregate[name]),
                               "borda": float(points[name]), "coverage": float(cover[name])}
        if avg is not None:
            row["avg_rank_available"] = float(avg[name])
        if boot:
            row.update(rank_low=int(boot.rank_low[name]), rank_high=int(boot.rank_high[name]),
                       p_first=float(boot.p_first[name]), top_group=name in boot.top_group)
        board.append(row)
    report: dict[str, Any] = {
        "settings": {"method": method, "missing": missing, "bootstrap": n_boot, "seed": seed, "level": level,
                     "alpha": alpha, "score": "average rank (lower is better)" if method == "avg-rank"
                     else "Borda points (higher is better; a missing task scores 0)"},
        "synthetic": any(t.startswith("synthetic-") for t in table.tasks),
        "board": board,
        "tasks": _task_rows(table, ranks),
        "two_std": two_std_matrix(table).to_dict(orient="records"),
    }
    complete = ranks.dropna(axis=0, how="any")
    if complete.shape[0] >= 2 and complete.shape == ranks.shape:
        loto = loto_average_ranks(ranks)
        report["loto_selection"] = {str(t): str(loto.loc[t].idxmin()) for t in loto.index}
    if complete.shape[0] >= 2:
        fr = friedman(ranks)
        cd = nemenyi_cd(fr.k, fr.n_tasks, alpha)
        mean_complete = complete.mean(axis=0)
        report["friedman"] = vars(fr)
        report["nemenyi"] = {"alpha": alpha, "k": fr.k, "n_tasks": fr.n_tasks, "cd": cd,
                             "avg_rank_common_tasks": mean_complete.to_dict(), "groups": cd_groups(mean_complete, cd)}
        report["wilcoxon_holm"] = wilcoxon_holm(table, alpha).to_dict(orient="records")
    return _clean(report)  # type: ignore[no-any-return]


def _task_rows(table: ScoreTable, ranks: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {"task": str(r.task), "method": str(r.method), "mean": float(r.mean), "std": float(r.std), "n": int(r.n),
         "higher_is_better": table.higher[str(r.task)], "rank": float(ranks.at[str(r.task), str(r.method)])}
        for r in table.summary().itertuples(index=False)
    ]


def write_report(report: dict[str, Any], out: Path) -> list[Path]:
    """Write ``ranking.json``, ``board.csv`` and ``tasks.csv`` under ``out`` (atomically)."""
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "ranking.json", report)
    atomic_write_bytes(out / "board.csv", pd.DataFrame(report["board"]).to_csv(index=False).encode())
    atomic_write_bytes(out / "tasks.csv", pd.DataFrame(report["tasks"]).to_csv(index=False).encode())
    return [out / "ranking.json", out / "board.csv", out / "tasks.csv"]
