"""Checking a submission against its board, and re-scoring it from the server's own test labels.

A submission is refused (with the one reason) when its results come from another benchmark version, name other
split hashes, score tasks the board lacks, use another metric, repeat a (task, seed), hold a score outside its
metric's range, or carry predictions that do not cover exactly the board's test keys. Otherwise every (task, seed)
with predictions is re-scored by :func:`dpbench.evaluation.rescore.rescore_one` and the board keeps its own number
("verified"); a submitted score that disagrees is reported back, never shown. Results without predictions are kept
as submitted ("self-reported").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from dpbench.errors import DpbenchError
from dpbench.evaluation.rescore import rescore_one
from dpbench.ranking.table import METRICS, RANGE_SLACK
from dpbench.results import Results, TaskScore
from dpbench_leaderboard.boards import BoardSpec, ServedPool
from dpbench_leaderboard.schemas import ModelCard

MAX_SEEDS = 100  # per task
AGREE = 1e-9  # a reported score this close to the re-scored one agrees


class Rejection(DpbenchError):
    """A request the service refuses: an HTTP status, a stable code and a one-line reason."""

    def __init__(self, status: int, code: str, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.retry_after = retry_after


@dataclass(frozen=True)
class Cell:
    """The board's number for one (task, seed), beside the submitted one."""

    task: str
    seed: int
    metric: str
    score: float
    reported: float


@dataclass(frozen=True)
class Checked:
    """A submission that passed every check: its status and the numbers the board keeps."""

    status: str  # verified | self-reported
    cells: list[Cell]
    discrepancies: list[dict[str, object]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def check_version(spec: BoardSpec, results: Results) -> list[str]:
    """Refuse results of another pool, pool version, protocol or split; returns the warnings (none yet)."""
    prov = results.provenance
    if prov.scored_split != "test":
        raise Rejection(422, "scored_split", f"the results are scored on the {prov.scored_split} split (model "
                        "selection, dpbench eval --score-on val); a board ranks test scores: evaluate with "
                        "--score-on test")
    if (prov.pool, prov.pool_version) != (spec.pool, spec.pool_version):
        raise Rejection(409, "benchmark_version", f"benchmark version mismatch: the results are from pool "
                        f"{prov.pool} {prov.pool_version}, board {spec.slug} ranks {spec.pool} {spec.pool_version}")
    if prov.synthetic != spec.synthetic:
        kind = "a SYNTHETIC" if spec.synthetic else "a real-data"
        raise Rejection(409, "synthetic", f"board {spec.slug} is {kind} board; the results say synthetic="
                        f"{str(prov.synthetic).lower()}")
    if prov.protocol != spec.protocol:
        raise Rejection(409, "protocol", f"the results were produced with protocol {prov.protocol!r}; board "
                        f"{spec.slug} ranks the {spec.protocol!r} protocol")
    for task in dict.fromkeys(s.task for s in results.scores):
        entry = spec.task(task)
        if entry is None:
            raise Rejection(422, "unknown_task", f"task {task} is not on board {spec.slug} (its tasks: "
                            f"{', '.join(t.name for t in spec.tasks)})")
        used = prov.split_sha256.get(task)
        if used is None:
            raise Rejection(422, "split_missing", f"the results do not name the split sha256 of task {task} "
                            "(provenance.split_sha256); evaluate with dpbench eval, which records it")
        if used != entry.split_sha256:
            raise Rejection(409, "split_mismatch", f"split hash mismatch on task {task}: the results used "
                            f"{used[:16]}…, board {spec.slug} has {entry.split_sha256[:16]}…; evaluate on the "
                            "board's pool version")
    return []


def _check_cells(spec: BoardSpec, results: Results) -> None:
    seen: set[tuple[str, int]] = set()
    per_task: dict[str, int] = {}
    for entry in results.scores:
        task = spec.task(entry.task)
        assert task is not None  # check_version ran first
        if entry.metric != task.metric:
            raise Rejection(422, "metric", f"task {entry.task} is scored with {task.metric} on this board, the "
                            f"results use {entry.metric}")
        if (entry.task, entry.seed) in seen:
            raise Rejection(422, "duplicate_seed", f"task {entry.task} seed {entry.seed} appears twice")
        seen.add((entry.task, entry.seed))
        per_task[entry.task] = per_task.get(entry.task, 0) + 1
        if entry.seed < 0 or per_task[entry.task] > MAX_SEEDS:
            raise Rejection(422, "seeds", f"task {entry.task}: seeds must be ≥ 0, at most {MAX_SEEDS} per task")
        bounds = METRICS[task.metric]
        if not (math.isfinite(entry.score) and bounds.low - RANGE_SLACK <= entry.score <= bounds.high + RANGE_SLACK):
            raise Rejection(422, "score_range", f"score {entry.score!r} of task {entry.task} seed {entry.seed} is "
                            f"outside [{bounds.low:g}, {bounds.high:g}], the range of {task.metric}")


def _check_predictions(spec: BoardSpec, entry: TaskScore, labels: dict[str, int]) -> None:
    """Refuse predictions that do not cover exactly the test keys with one finite row of n-classes scores each."""
    task = spec.task(entry.task)
    assert task is not None and entry.predictions is not None
    keys = set(entry.predictions)
    missing, unknown = len(set(labels) - keys), len(keys - set(labels))
    if missing or unknown:
        example = sorted(keys - set(labels))[:1] or sorted(set(labels) - keys)[:1]
        raise Rejection(422, "sample_keys", f"predictions of task {entry.task} seed {entry.seed} cover "
                        f"{len(keys)} keys, the board's test split has {len(labels)} ({missing} missing, {unknown} "
                        f"unknown, e.g. {example[0][:40]!r})")
    widths = {len(row) for row in entry.predictions.values()}
    if widths != {len(task.classes)}:
        raise Rejection(422, "prediction_shape", f"predictions of task {entry.task} must hold {len(task.classes)} "
                        f"scores per sample (one per class), found rows of {sorted(widths)}")
    matrix = np.array(list(entry.predictions.values()), dtype=np.float64)
    if not np.isfinite(matrix).all():
        raise Rejection(422, "prediction_values", f"predictions of task {entry.task} seed {entry.seed} hold NaN or "
                        "infinite values")


def check_submission(served: ServedPool, spec: BoardSpec, card: ModelCard, results: Results) -> Checked:
    """Every check of a submission to ``spec``, then the re-scoring; raises :class:`Rejection`."""
    warnings = check_version(spec, results)
    declared = results.provenance.manifest_sha256
    if declared and served.manifest_sha256 and declared != served.manifest_sha256:
        warnings.append(f"the results name pool manifest {declared[:12]}…, the board's is "
                        f"{served.manifest_sha256[:12]}…; the split hashes agree, so the test sets are the same")
    _check_cells(spec, results)
    if card.unseen_tasks is not None:
        extra = sorted(set(card.unseen_tasks) - {s.task for s in results.scores})
        if extra:
            raise Rejection(422, "unseen_tasks", f"unseen_tasks names task(s) the results do not score: "
                            f"{', '.join(extra[:5])}")
    with_predictions = [s.predictions is not None for s in results.scores]
    if any(with_predictions) and not all(with_predictions):
        raise Rejection(422, "partial_predictions", "some scores carry predictions and some do not; send all of "
                        "them (verified) or none (self-reported)")
    if not all(with_predictions):
        cells = [Cell(s.task, s.seed, s.metric, s.score, s.score) for s in results.scores]
        return Checked("self-reported", cells, [], [*warnings, "no predictions: scores are self-reported"])
    cells, discrepancies = [], []
    for entry in results.scores:
        labels = served.labels[entry.task]
        _check_predictions(spec, entry, labels)
        try:
            checked = rescore_one(entry, labels)
        except (ValueError, ArithmeticError) as exc:
            raise Rejection(422, "unscorable", f"task {entry.task} seed {entry.seed} cannot be scored "
                            f"({exc.__class__.__name__}: {str(exc)[:200]})") from None
        if checked.problem is not None or checked.rescored is None:
            raise Rejection(422, "unscorable", f"task {entry.task} seed {entry.seed}: {checked.problem}")
        if abs(checked.rescored - entry.score) > AGREE:
            discrepancies.append({"task": entry.task, "seed": entry.seed, "reported": entry.score,
                                  "verified": checked.rescored})
        cells.append(Cell(entry.task, entry.seed, entry.metric, checked.rescored, entry.score))
    if discrepancies:
        warnings.append(f"{len(discrepancies)} reported score(s) differ from the board's re-scoring; the board shows "
                        "its own numbers")
    return Checked("verified", cells, discrepancies, warnings)
