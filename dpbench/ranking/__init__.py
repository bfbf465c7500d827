"""Rank aggregation with uncertainty: pure functions over a tidy (method, task, seed, score) table."""

from dpbench.ranking.ranks import (
    BootstrapResult,
    average_rank,
    bootstrap_ranks,
    borda,
    competition_ranks,
    coverage,
    final_order,
    loto_average_ranks,
    per_task_ranks,
)
from dpbench.ranking.significance import (
    Friedman,
    cd_groups,
    friedman,
    holm,
    nemenyi_cd,
    nemenyi_q,
    two_std_matrix,
    wilcoxon_holm,
)
from dpbench.ranking.table import ScoreTable, make_table, read_scores

__all__ = [
    "BootstrapResult",
    "Friedman",
    "ScoreTable",
    "average_rank",
    "bootstrap_ranks",
    "borda",
    "cd_groups",
    "competition_ranks",
    "coverage",
    "final_order",
    "friedman",
    "holm",
    "loto_average_ranks",
    "make_table",
    "nemenyi_cd",
    "nemenyi_q",
    "per_task_ranks",
    "read_scores",
    "two_std_matrix",
    "wilcoxon_holm",
]
