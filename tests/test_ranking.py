"""The scorer: rank aggregation, its uncertainty and significance, as properties and worked numbers."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from dpbench.errors import DpbenchError
from dpbench.ranking import (
    average_rank,
    bootstrap_ranks,
    borda,
    competition_ranks,
    final_order,
    friedman,
    holm,
    loto_average_ranks,
    make_table,
    nemenyi_cd,
    nemenyi_q,
    per_task_ranks,
    two_std_matrix,
    wilcoxon_holm,
)
from dpbench.ranking.report import rank_report
from dpbench.results import RESULTS_SCHEMA, Provenance, Results, TaskScore, load_results
from tests.conftest import run_cli

#: Demšar (2006), Table 5(a): Nemenyi q_0.05 for k = 2..10.
DEMSAR_Q05 = [1.960, 2.343, 2.569, 2.728, 2.850, 2.949, 3.031, 3.102, 3.164]


def tidy(scores: np.ndarray, seeds: int = 1, metric: str = "accuracy", noise: float = 0.0) -> pd.DataFrame:
    """tasks × methods matrix → tidy frame; optional per-seed noise around each cell (kept within [0, 1])."""
    rng = np.random.default_rng(0)
    rows = [{"method": f"m{j}", "task": f"t{i}", "seed": s, "metric": metric,
             "score": float(np.clip(scores[i, j] + (rng.normal(0, noise) if noise else 0.0), 0, 1))}
            for i in range(scores.shape[0]) for j in range(scores.shape[1]) for s in range(seeds)]
    return pd.DataFrame(rows)


matrices = st.tuples(st.integers(2, 6), st.integers(2, 5)).flatmap(
    lambda shape: arrays(np.float64, shape, elements=st.floats(0, 1).map(lambda x: round(x, 3))))


@settings(max_examples=60, deadline=None)
@given(matrices, st.randoms(use_true_random=False))
def test_ranks_follow_the_labels_when_methods_and_tasks_are_renamed(scores: np.ndarray, rnd: random.Random) -> None:
    """Relabel methods and tasks with a random permutation: every method keeps its own average rank."""
    frame = tidy(scores)
    methods, tasks = sorted(frame["method"].unique()), sorted(frame["task"].unique())
    new_methods, new_tasks = methods[:], tasks[:]
    rnd.shuffle(new_methods)
    rnd.shuffle(new_tasks)
    rename_m, rename_t = dict(zip(methods, new_methods, strict=True)), dict(zip(tasks, new_tasks, strict=True))
    renamed = frame.assign(method=frame["method"].map(rename_m), task=frame["task"].map(rename_t))
    before = average_rank(per_task_ranks(make_table(frame)))
    after = average_rank(per_task_ranks(make_table(renamed)))
    for old, new in rename_m.items():
        assert after[new] == pytest.approx(before[old])


@settings(max_examples=80, deadline=None)
@given(matrices, st.data())
def test_raising_a_score_never_worsens_that_methods_rank(scores: np.ndarray, data: st.DataObject) -> None:
    i = data.draw(st.integers(0, scores.shape[0] - 1))
    j = data.draw(st.integers(0, scores.shape[1] - 1))
    bump = data.draw(st.floats(0.0001, 1))
    raised = scores.copy()
    raised[i, j] += bump * (1 - raised[i, j])  # still an accuracy: within [0, 1]
    for method in ("avg-rank", "borda"):
        before = final_order(per_task_ranks(make_table(tidy(scores))), method, "error")  # type: ignore[arg-type]
        after = final_order(per_task_ranks(make_table(tidy(raised))), method, "error")  # type: ignore[arg-type]
        assert after[1][f"m{j}"] <= before[1][f"m{j}"]


@settings(max_examples=60, deadline=None)
@given(matrices)
def test_borda_and_average_rank_agree_on_complete_tables(scores: np.ndarray) -> None:
    ranks = per_task_ranks(make_table(tidy(scores)))
    pd.testing.assert_series_equal(final_order(ranks, "avg-rank", "error")[1],
                                   final_order(ranks, "borda", "error")[1])
    n, k = ranks.shape
    np.testing.assert_allclose(borda(ranks), n * k - n * average_rank(ranks))


@given(st.integers(2, 10), st.integers(2, 8))
def test_all_equal_scores_give_middle_ranks_and_zero_friedman(k: int, n: int) -> None:
    ranks = per_task_ranks(make_table(tidy(np.full((n, k), 0.5))))
    assert np.allclose(average_rank(ranks), (k + 1) / 2)
    result = friedman(ranks)
    assert result.chi2 == pytest.approx(0.0, abs=1e-9) and result.p_chi2 == pytest.approx(1.0)
    assert competition_ranks(average_rank(ranks)).tolist() == [1] * k


@pytest.mark.parametrize(("k", "q"), list(zip(range(2, 11), DEMSAR_Q05, strict=True)))
def test_nemenyi_matches_the_tabulated_q_values(k: int, q: float) -> None:
    assert nemenyi_q(k) == pytest.approx(q, abs=1.5e-3)
    assert nemenyi_cd(k, 22) == pytest.approx(q * np.sqrt(k * (k + 1) / (6 * 22)), abs=1e-3)


def test_worked_example_ranks_ties_and_friedman() -> None:
    # 4 tasks × 3 methods; task t3 has a tie between m0 and m1.
    scores = np.array([[0.9, 0.8, 0.7], [0.6, 0.7, 0.5], [0.8, 0.9, 0.6], [0.75, 0.75, 0.7]])
    ranks = per_task_ranks(make_table(tidy(scores)))
    assert ranks.loc["t3"].tolist() == [1.5, 1.5, 3.0]
    avg = average_rank(ranks)
    assert avg.tolist() == pytest.approx([1.625, 1.375, 3.0])
    assert competition_ranks(pd.Series([1.0, 2.0, 2.0, 3.0])).tolist() == [1, 2, 2, 4]
    # χ² = 12N/(k(k+1)) (Σ R̄² − k(k+1)²/4) = 12·4/12 · (1.625² + 1.375² + 9 − 12) = 4 · 1.53125
    assert friedman(ranks).chi2 == pytest.approx(6.125)
    loto = loto_average_ranks(ranks)
    assert loto.loc["t0", "m0"] == pytest.approx((2 + 2 + 1.5) / 3)  # t0's own rank is left out


def test_lower_is_better_metrics_are_flipped() -> None:
    frame = tidy(np.array([[0.1, 0.3], [0.2, 0.4]]), metric="error_rate")
    assert average_rank(per_task_ranks(make_table(frame))).to_dict() == {"m0": 1.0, "m1": 2.0}


def test_missing_tasks_follow_the_stated_policy() -> None:
    frame = tidy(np.array([[0.9, 0.8, 0.7], [0.9, 0.8, 0.7], [0.5, 0.6, 0.7]]))
    frame = frame[~((frame["method"] == "m0") & (frame["task"] == "t2"))]  # m0 skips its worst task
    ranks = per_task_ranks(make_table(frame))
    with pytest.raises(DpbenchError, match="m0 has no score on t2"):
        average_rank(ranks, "error")
    available = average_rank(ranks, "available")
    worst = average_rank(ranks, "worst")
    assert available["m0"] == 1.0  # skipping a task is rewarded ...
    assert worst["m0"] == pytest.approx((1 + 1 + 3) / 3)  # ... unless it counts as last
    points = borda(ranks)
    assert points["m0"] == 2 + 2 + 0 and points["m2"] == 0 + 0 + 1  # a missing task earns 0 points
    board = rank_report(make_table(frame), "borda", n_boot=0)["board"]
    assert [(row["method"], row["coverage"]) for row in board] == [("m0", pytest.approx(2 / 3)), ("m1", 1.0),
                                                                  ("m2", 1.0)]


def test_a_task_only_one_method_has_is_ranked_under_each_policy() -> None:
    frame = tidy(np.array([[0.9, 0.6], [0.8, 0.9], [0.7, 0.5], [0.6, 0.8]]))
    frame = frame[~((frame["method"] == "m1") & frame["task"].isin(["t2", "t3"]))]  # m1 has t0 and t1 only
    table = make_table(frame)
    ranks = per_task_ranks(table)
    assert ranks.loc["t2", "m0"] == 1.0 and np.isnan(ranks.loc["t2", "m1"])  # alone on a task: rank 1 of 1
    with pytest.raises(DpbenchError, match="m1 has no score on t2"):
        average_rank(ranks, "error")
    assert average_rank(ranks, "worst").tolist() == pytest.approx([(1 + 2 + 1 + 1) / 4, (2 + 1 + 2 + 2) / 4])
    assert average_rank(ranks, "available").tolist() == pytest.approx([5 / 4, 3 / 2])
    assert borda(ranks).tolist() == [1.0, 1.0]  # a lone method earns 1 − 1 = 0 points, as a missing one does
    for method, missing in (("avg-rank", "worst"), ("avg-rank", "available"), ("borda", "error")):
        boot = bootstrap_ranks(table, 300, seed=3, method=method, missing=missing)  # type: ignore[arg-type]
        assert set(boot.rank_low) | set(boot.rank_high) <= {1, 2}, (method, missing)
        assert (boot.rank_low <= boot.rank_high).all() and boot.p_first.between(0, 1).all()
    report = rank_report(table, "avg-rank", "available", n_boot=50)
    assert [row["method"] for row in report["board"]] == ["m0", "m1"] and "friedman" in report
    assert report["friedman"]["n_tasks"] == 2  # significance uses the tasks both methods have


def test_bootstrap_is_reproducible_and_brackets_the_point_ranking() -> None:
    rng = np.random.default_rng(1)
    scores = rng.random((12, 4)) * 0.1 + np.array([0.8, 0.79, 0.6, 0.5])
    table = make_table(tidy(scores, seeds=3, noise=0.01))
    first = bootstrap_ranks(table, 300, seed=5)
    again = bootstrap_ranks(table, 300, seed=5)
    pd.testing.assert_series_equal(first.rank_low, again.rank_low)
    pd.testing.assert_series_equal(first.p_first, again.p_first)
    point = final_order(per_task_ranks(table), "avg-rank", "error")[1]
    for m in table.methods:
        assert first.rank_low[m] <= point[m] <= first.rank_high[m]
    assert first.p_first.sum() >= 1.0 - 1e-9
    assert set(first.top_group) <= {"m0", "m1"} and "m0" in first.top_group
    assert first.rank_low["m3"] >= 3


def test_wilcoxon_holm_and_two_std_rule() -> None:
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    rng = np.random.default_rng(2)
    scores = np.column_stack([rng.random(15) * 0.1 + 0.8, rng.random(15) * 0.1 + 0.5, rng.random(15) * 0.1 + 0.5])
    table = make_table(tidy(scores, seeds=5, noise=0.005))
    pairs = wilcoxon_holm(table).set_index(["a", "b"])
    assert pairs.loc[("m0", "m1"), "significant"] and pairs.loc[("m0", "m2"), "significant"]
    matrix = two_std_matrix(table).set_index(["a", "b"])
    assert matrix.loc[("m0", "m1"), "wins"] == 15 and matrix.loc[("m1", "m0"), "losses"] == 15
    assert matrix.loc[("m1", "m2")].sum() == 15


def test_bad_tables_give_clear_errors() -> None:
    good = tidy(np.array([[0.9, 0.8], [0.6, 0.7]]))
    with pytest.raises(DpbenchError, match="not a finite number"):
        make_table(good.assign(score=[0.1, np.nan, 0.3, 0.4]))
    with pytest.raises(DpbenchError, match="duplicate rows"):
        make_table(pd.concat([good, good.iloc[:1]]))
    with pytest.raises(DpbenchError, match="single method"):
        make_table(good[good["method"] == "m0"])
    with pytest.raises(DpbenchError, match=r"no task has scores of two methods \(m0, m1 share none\)"):
        make_table(good[(good["method"] == "m0") == (good["task"] == "t0")])
    with pytest.raises(DpbenchError, match=r"score 1\.5 of m0 on task t0 \(seed 0\) is outside \[0, 1\], the range of "
                                           r"accuracy"):
        make_table(good.assign(score=[1.5, 0.8, 0.6, 0.7]))
    with pytest.raises(DpbenchError, match=r"outside \[0, inf\]"):
        make_table(good.assign(metric="log_loss", score=[-0.1, 0.8, 0.6, 0.7]))
    assert make_table(good.assign(metric="log_loss", score=[3.5, 0.8, 0.6, 0.7])).higher == {"t0": False, "t1": False}
    with pytest.raises(DpbenchError, match="unknown metric direction"):
        make_table(good.assign(metric="dice"))
    with pytest.raises(DpbenchError, match="unknown metric direction for task t0"):
        make_table(good.drop(columns="metric"))
    registry_named = good.drop(columns="metric").assign(task=lambda f: f["task"].map({"t0": "Lung", "t1": "Necrosis"}))
    assert make_table(registry_named).higher == {"Lung": True, "Necrosis": True}


def test_rank_cli_reads_results_and_csv(tmp_path: Path) -> None:
    provenance = Provenance(dpbench_version="0", pool="synthetic", pool_version="x", synthetic=True)
    for name, level in (("strong", 0.9), ("weak", 0.6)):
        scores = [TaskScore(task=t, seed=s, metric="roc_auc", score=level + 0.01 * s) for t in ("a", "b", "c")
                  for s in range(3)]
        (tmp_path / f"{name}.json").write_text(Results(method=name, provenance=provenance, scores=scores)
                                               .model_dump_json())
    extra = pd.DataFrame([{"method": "csv", "task": t, "seed": 0, "score": 0.7, "metric": "roc_auc"}
                          for t in ("a", "b", "c")])
    extra.to_csv(tmp_path / "extra.csv", index=False)
    result = run_cli("rank", str(tmp_path / "strong.json"), str(tmp_path / "weak.json"), str(tmp_path / "extra.csv"),
                     "--bootstrap", "200", "--out", str(tmp_path / "out"), "--plot", str(tmp_path / "cd.png"))
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "out" / "ranking.json").read_text())
    assert [row["method"] for row in report["board"]] == ["strong", "csv", "weak"]
    assert (tmp_path / "cd.png").read_bytes()[:4] == b"\x89PNG"
    assert "Friedman" in result.stdout and (tmp_path / "out" / "board.csv").exists()
    assert report["loto_selection"] == {"a": "strong", "b": "strong", "c": "strong"}
    assert report["synthetic"] is False
    bad = run_cli("rank", str(tmp_path / "strong.json"))
    assert bad.returncode == 2 and "single method" in bad.stderr and "Traceback" not in bad.stderr
    (tmp_path / "broken.json").write_text('{"method": "x"}')
    bad = run_cli("rank", str(tmp_path / "broken.json"), str(tmp_path / "weak.json"))
    assert bad.returncode == 2 and "not a dpbench results file" in bad.stderr


@settings(max_examples=30, deadline=None)
@given(matrices)
def test_report_is_json_serialisable(scores: np.ndarray) -> None:
    assume(scores.shape[0] >= 2)
    report = rank_report(make_table(tidy(scores, seeds=2, noise=0.01)), n_boot=20)
    json.dumps(report, allow_nan=False)


def test_results_of_an_earlier_schema_read_and_of_a_later_one_are_refused_by_name(tmp_path: Path) -> None:
    """A file without the fields later schemas added still reads; one from a newer dpbench (which may carry fields
    this one does not know) fails on its schema number, in one line naming the fix, not on its first new field."""
    for name, scores in (("old", {"a": 0.9, "b": 0.8}), ("new", {"a": 0.7, "b": 0.6})):
        record = {"schema_version": 1, "method": name, "scores": [
            {"task": t, "seed": 0, "metric": "roc_auc", "score": s} for t, s in scores.items()],
            "provenance": {"dpbench_version": "0.1", "pool": "synthetic", "pool_version": "x"}}
        (tmp_path / f"{name}.json").write_text(json.dumps(record))
    assert load_results(tmp_path / "old.json").schema_version == 1
    ok = run_cli("rank", str(tmp_path / "old.json"), str(tmp_path / "new.json"), "--bootstrap", "0")
    assert ok.returncode == 0, ok.stderr
    later = json.loads((tmp_path / "new.json").read_text())
    later["schema_version"] = RESULTS_SCHEMA + 1
    later["provenance"]["tasks"] = {"a": {"a_field_of_the_future": 1}}
    (tmp_path / "new.json").write_text(json.dumps(later))
    bad = run_cli("rank", str(tmp_path / "old.json"), str(tmp_path / "new.json"), "--bootstrap", "0")
    lines = [line for line in bad.stderr.splitlines() if line.strip()]
    assert bad.returncode == 2 and len(lines) == 1 and "Traceback" not in bad.stderr, bad.stderr
    assert f"results schema {RESULTS_SCHEMA + 1} is newer" in lines[0] and "upgrade dpbench-pathology" in lines[0]
