"""Linear probe: the batched solver against scikit-learn's LinearSVC, grouped CV, metrics, input checks."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import roc_auc_score
from sklearn.svm import LinearSVC

from dpbench.errors import DpbenchError
from dpbench.evaluation import probe
from dpbench.evaluation.probe import C_GRID, ProbeResult, fast_svm_weights, grouped_folds, linear_probe

Data = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def clusters(n_classes: int, n: int = 600, dim: int = 64, seed: int = 0, sep: float = 0.18) -> Data:
    """Gaussian class clusters with a per-group shift, groups of 10–30 samples; every 4th group is the test split."""
    rng = np.random.default_rng(seed)
    means = rng.normal(0.0, sep, (n_classes, dim)) + 1.0  # off-centre, like encoder features
    xs, ys, gs = [], [], []
    group = 0
    while sum(map(len, ys)) < n + n // 3:
        size, cls = int(rng.integers(10, 31)), int(rng.integers(n_classes))
        xs.append(means[cls] + rng.normal(0.0, 0.3, dim) + rng.normal(0.0, 1.0, (size, dim)))
        ys.append(np.full(size, cls))
        gs.append(np.full(size, f"patient-{group}"))
        group += 1
    x, y, g = np.concatenate(xs), np.concatenate(ys), np.concatenate(gs)
    test = np.array([int(s.split("-")[1]) % 4 == 3 for s in g])
    return x[~test], y[~test], g[~test], x[test], y[test]


@pytest.fixture(scope="module", params=[2, 3], ids=["binary", "3-class"])
def probes(request: pytest.FixtureRequest) -> tuple[Data, int, ProbeResult, ProbeResult]:
    n_classes = request.param
    data = clusters(n_classes)
    metric = "roc_auc" if n_classes == 2 else "accuracy"
    ref = linear_probe(*data, n_classes, metric, method="svm")
    fast = linear_probe(*data, n_classes, metric, method="fast")
    return data, n_classes, ref, fast


def test_fast_selects_like_the_reference(probes: tuple[Data, int, ProbeResult, ProbeResult]) -> None:
    _, _, ref, fast = probes
    assert fast.best_c == ref.best_c or abs(fast.test_score - ref.test_score) <= 0.002
    assert list(fast.cv_scores) == list(ref.cv_scores) == sorted(C_GRID)
    # the fixture is hard enough that C matters: the CV curve is not flat
    assert max(ref.cv_scores.values()) - min(ref.cv_scores.values()) > 0.005
    for c in C_GRID:
        assert fast.cv_scores[c] == pytest.approx(ref.cv_scores[c], abs=0.01)


def test_metric_is_roc_auc_for_binary_and_accuracy_for_multiclass(
        probes: tuple[Data, int, ProbeResult, ProbeResult]) -> None:
    (*_, test_y), n_classes, ref, fast = probes
    for result in (ref, fast):
        assert result.test_decision.shape == (len(test_y), n_classes)
        np.testing.assert_array_equal(result.test_pred, result.test_decision.argmax(axis=1))
        if n_classes == 2:
            np.testing.assert_array_equal(result.test_decision[:, 0], -result.test_decision[:, 1])
            assert result.test_score == roc_auc_score(test_y, result.test_decision[:, 1])
        else:
            assert result.test_score == pytest.approx(np.mean(result.test_pred == test_y))
        assert 0.6 < result.test_score < 1.0


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("c", [1e-3, 1.0])
def test_fast_weights_match_liblinear(n_classes: int, c: float) -> None:
    x, y, *_ = clusters(n_classes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref = LinearSVC(C=c, dual=True, tol=1e-10, max_iter=200_000).fit(x, y)
    coef, intercept = fast_svm_weights(x, y, n_classes, c)
    w_ref = np.hstack([ref.coef_, ref.intercept_[:, None]])
    w = np.hstack([coef, intercept[:, None]])
    assert w.shape == w_ref.shape
    assert np.linalg.norm(w - w_ref) / np.linalg.norm(w_ref) < 1e-6


def test_cuda_settings_on_cpu_give_the_same_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """float32 Hessian products and deferred convergence checks (what CUDA uses) still reach the same optimum."""
    data = clusters(3)
    exact = linear_probe(*data, 3, "accuracy", method="fast")
    monkeypatch.setattr(probe, "_HVP_DTYPE", {"cpu": torch.float32})
    monkeypatch.setattr(probe, "_CHECK_EVERY", {"cpu": 8})
    mixed = linear_probe(*data, 3, "accuracy", method="fast")
    assert mixed.best_c == exact.best_c and mixed.not_converged == 0
    for c in C_GRID:
        assert mixed.cv_scores[c] == pytest.approx(exact.cv_scores[c], abs=0.005)
    coef, intercept = fast_svm_weights(data[0], data[1], 3, 0.1)
    ref = LinearSVC(C=0.1, dual=True, tol=1e-10, max_iter=200_000).fit(data[0], data[1])
    assert np.linalg.norm(coef - ref.coef_) / np.linalg.norm(ref.coef_) < 1e-5
    np.testing.assert_allclose(intercept, ref.intercept_, rtol=1e-4)


def test_tiny_c_gives_near_zero_weights_and_the_reference_predictions() -> None:
    data = clusters(3)
    ref = linear_probe(*data, 3, "accuracy", method="svm", cs=(1e-10,))
    fast = linear_probe(*data, 3, "accuracy", method="fast", cs=(1e-10,))
    coef, intercept = fast_svm_weights(data[0], data[1], 3, 1e-10)
    assert np.abs(coef).max() < 1e-6 and np.abs(intercept).max() < 1e-6
    assert np.isfinite(fast.test_decision).all() and not np.isnan(fast.cv_scores[1e-10])
    assert np.abs(fast.test_decision).max() < 1e-5  # w ≈ 0: every decision value ≈ 0
    assert np.mean(fast.test_pred == ref.test_pred) > 0.99
    binary = clusters(2)
    scores = [linear_probe(*binary, 2, "roc_auc", method=m, cs=(1e-10,)).test_score for m in ("svm", "fast")]
    assert scores[0] == pytest.approx(scores[1], abs=1e-6)


def test_grouped_folds_never_split_a_group() -> None:
    _, y, groups, *_ = clusters(3)
    splits, _ = grouped_folds(groups, y, 5)
    assert len(splits) == 5
    seen = np.zeros(len(y), dtype=int)
    for train, val in splits:
        assert not set(groups[train]) & set(groups[val])
        assert len(train) + len(val) == len(y)
        assert set(y[train]) == {0, 1, 2}
        seen[val] += 1
    np.testing.assert_array_equal(seen, 1)  # every sample validated exactly once
    again, _ = grouped_folds(groups, y, 5)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(splits, again, strict=True))


def test_grouped_folds_use_at_most_one_fold_per_group() -> None:
    y = np.array([0, 0, 1, 1, 0, 1])
    groups = np.array(["a", "a", "b", "b", "c", "c"])
    splits, _ = grouped_folds(groups, y, 5)
    assert len(splits) == 3
    with pytest.raises(DpbenchError, match="at least 2 groups"):
        grouped_folds(np.array(["a"] * 6), y, 5)


def test_a_class_in_a_single_group_still_probes() -> None:
    x, y, groups, test_x, test_y = clusters(3)
    rare = groups == groups[y == 2][0]
    keep = (y != 2) | rare
    results = [linear_probe(x[keep], y[keep], groups[keep], test_x, test_y, 3, "accuracy", method=m)
               for m in ("svm", "fast")]
    assert results[0].best_c == results[1].best_c or abs(results[0].test_score - results[1].test_score) <= 0.002


def test_single_class_training_split_is_a_clear_error() -> None:
    x, y, groups, test_x, test_y = clusters(2)
    for method in ("svm", "fast"):
        with pytest.raises(DpbenchError, match="single class in its training split"):
            linear_probe(x, np.zeros_like(y), groups, test_x, test_y, 2, "roc_auc", method=method)


def test_nan_features_are_a_clear_error() -> None:
    x, y, groups, test_x, test_y = clusters(2)
    bad = x.copy()
    bad[3, 5] = np.nan
    with pytest.raises(DpbenchError, match="NaN"):
        linear_probe(bad, y, groups, test_x, test_y, 2, "roc_auc", method="fast")
    bad_test = test_x.copy()
    bad_test[0, 0] = np.inf
    with pytest.raises(DpbenchError, match="NaN"):
        linear_probe(x, y, groups, bad_test, test_y, 2, "roc_auc")


def test_roc_auc_needs_a_binary_task() -> None:
    with pytest.raises(DpbenchError, match="use accuracy"):
        linear_probe(*clusters(3), 3, "roc_auc")


@pytest.mark.parametrize("method", ["svm", "fast"])
def test_same_inputs_same_result(method: str) -> None:
    data = clusters(3, n=300)
    first = linear_probe(*data, 3, "accuracy", method=method)  # type: ignore[arg-type]
    second = linear_probe(*data, 3, "accuracy", method=method)  # type: ignore[arg-type]
    assert first.best_c == second.best_c and first.cv_scores == second.cv_scores
    np.testing.assert_array_equal(first.test_decision, second.test_decision)
    np.testing.assert_array_equal(first.test_pred, second.test_pred)


def test_the_probe_never_looks_at_test_data() -> None:
    """Scrambling the test labels and features changes the test score, never the C chosen on training data."""
    x, y, groups = _fixture_for_leak_check()
    train, test = groups < 30, groups >= 30
    rng = np.random.default_rng(0)
    base = linear_probe(x[train], y[train], groups[train], x[test], y[test], 2, "roc_auc")
    scrambled = linear_probe(x[train], y[train], groups[train], rng.permutation(x[test]), rng.permutation(y[test]),
                             2, "roc_auc")
    assert scrambled.best_c == base.best_c and scrambled.cv_scores == base.cv_scores


def _fixture_for_leak_check() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    groups = np.repeat(np.arange(40), 10)
    y = rng.integers(0, 2, len(groups))
    x = rng.normal(size=(len(groups), 16)) + y[:, None] * 0.7
    return x, y, groups


def separable(n_groups: int = 12, per_group: int = 8, seed: int = 0) -> Data:
    """Two classes far apart, one class per group (like a stain per slide): every C ≥ 1e-3 gives CV AUC 1.0."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n_groups) % 2
    x = np.concatenate([rng.normal(3.0 * lab, 0.2, (per_group, 16)) + 50.0 for lab in labels])
    y = np.repeat(labels, per_group)
    g = np.repeat([f"slide-{i}" for i in range(n_groups)], per_group)
    test = np.repeat(np.arange(n_groups) >= n_groups - 4, per_group)
    return x[~test], y[~test], g[~test], x[test], y[test]


@pytest.mark.parametrize("method", ["svm", "fast"])
def test_a_tie_never_selects_a_degenerate_model(method: str) -> None:
    """All C tie at CV AUC 1.0: the largest tied C is chosen, and the test AUC is the real 1.0, not rounding noise.

    The old rule took the smallest tied C (1e-10), whose decision values differ by ~1e-7: test AUC 0.2-0.5."""
    data = separable()
    result = linear_probe(*data, 2, "roc_auc", method=method)  # type: ignore[arg-type]
    tied = [c for c, s in result.cv_scores.items() if s == 1.0]
    assert len(tied) > 3 and result.best_c == max(tied)
    assert result.test_score == 1.0 and result.fallback is None


def test_folds_shrink_until_every_fold_can_be_scored() -> None:
    """One class per group and 4 groups: 4 folds would each validate one class (no AUC); 2 stratified folds can."""
    y = np.repeat([0, 1, 0, 1], 5)
    groups = np.repeat(["a", "b", "c", "d"], 5)
    splits, unscorable = grouped_folds(groups, y, 5, metric="roc_auc")
    assert (len(splits), unscorable) == (2, 0)
    assert all(set(y[va]) == {0, 1} for _, va in splits)
    assert len(grouped_folds(groups, y, 5, metric="accuracy")[0]) == 4  # accuracy can score a one-class fold


@pytest.mark.parametrize("method", ["svm", "fast"])
def test_no_scorable_fold_is_a_recorded_fallback(method: str) -> None:
    """Two groups, one class each: no CV fold has both classes; the default C is used and the result says so."""
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.normal(0, 1, (10, 4)), rng.normal(2, 1, (10, 4))])
    y, groups = np.repeat([0, 1], 10), np.repeat(["a", "b"], 10)
    result = linear_probe(x, y, groups, x[:6] + 0.1, np.array([0, 0, 0, 1, 1, 1]) * 0 + np.arange(6) % 2, 2,
                          "roc_auc", method=method)  # type: ignore[arg-type]
    assert all(np.isnan(s) for s in result.cv_scores.values())
    assert result.best_c == probe.FALLBACK_C and result.fallback and "no cross-validation fold" in result.fallback
    assert result.unscorable_folds == result.folds == 2
