"""Tests for the procedural H&E tile renderer (dpbench.synthetic.render)."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

from dpbench.synthetic.render import ClassStyle, GroupStyle, class_styles, group_style, render_tile

F64 = NDArray[np.float64]


def _tile(seed: int, size: int = 64, class_index: int = 0) -> NDArray[np.uint8]:
    rng = np.random.default_rng(seed)
    styles = class_styles(3, 1.0, rng)
    return render_tile(styles[class_index], group_style(rng), size, rng)


def _features(tile: NDArray[np.uint8]) -> F64:
    """Per-channel mean and std, plus the fraction of dark (nuclear) pixels."""
    x = tile.astype(np.float64)
    dark = float((x.mean(axis=2) < 110.0).mean())
    return np.concatenate([x.mean(axis=(0, 1)), x.std(axis=(0, 1)), [dark]])


def _class_accuracy(separation: float, seed: int, per_class: int = 40, n_groups: int = 4) -> float:
    """Nearest-centroid accuracy on cheap features; tiles of 3 classes spread over several groups."""
    rng = np.random.default_rng(seed)
    styles = class_styles(3, separation, rng)
    groups = [group_style(rng) for _ in range(n_groups)]
    feats, labels = [], []
    for c, style in enumerate(styles):
        for i in range(per_class):
            feats.append(_features(render_tile(style, groups[i % n_groups], 64, rng)))
            labels.append(c)
    x, y = np.array(feats), np.array(labels)
    train = np.arange(len(y)) % 2 == 0  # every group and class lands in both halves
    mu, sd = x[train].mean(axis=0), x[train].std(axis=0) + 1e-9
    z = (x - mu) / sd
    centroids = np.array([z[train & (y == c)].mean(axis=0) for c in range(3)])
    pred = ((z[~train][:, None, :] - centroids[None]) ** 2).sum(axis=2).argmin(axis=1)
    return float((pred == y[~train]).mean())


def _group_variance_ratio(strength: float, seed: int, n_groups: int = 6, per_group: int = 12) -> float:
    """Variance of per-group mean colours over the mean within-group variance (one class)."""
    rng = np.random.default_rng(seed)
    style = class_styles(1, 1.0, rng)[0]
    means = np.array(
        [
            [render_tile(style, g, 64, rng).reshape(-1, 3).mean(axis=0) for _ in range(per_group)]
            for g in (group_style(rng, strength) for _ in range(n_groups))
        ]
    )  # (group, tile, channel)
    between = float(means.mean(axis=1).var(axis=0).sum())
    within = float(means.var(axis=1).sum(axis=1).mean())
    return between / within


@pytest.mark.parametrize("size", [17, 64, 96])
def test_render_tile_shape_and_dtype(size: int) -> None:
    tile = _tile(0, size)
    assert tile.shape == (size, size, 3)
    assert tile.dtype == np.uint8
    assert tile.std() > 5.0  # textured, not a flat colour


def test_render_is_deterministic() -> None:
    assert _tile(3).tobytes() == _tile(3).tobytes()
    assert class_styles(4, 0.5, np.random.default_rng(1)) == class_styles(4, 0.5, np.random.default_rng(1))
    assert group_style(np.random.default_rng(1)) == group_style(np.random.default_rng(1))
    assert _tile(3).tobytes() != _tile(4).tobytes()


def test_tiles_look_like_he() -> None:
    """Pink tissue (red well above green); the darkest pixels (nuclei) are purple-blue."""
    for seed in range(5):
        for k in range(3):
            x = _tile(seed, 96, k).reshape(-1, 3).astype(np.float64)
            assert x[:, 0].mean() > x[:, 1].mean() + 15.0
            lum = x.sum(axis=1)
            nuclei = x[lum < np.quantile(lum, 0.02)]
            assert (nuclei[:, 2] > nuclei[:, 1]).mean() > 0.9
            blue_shift = (nuclei[:, 2] - nuclei[:, 0]).mean() - (x[:, 2] - x[:, 0]).mean()
            assert blue_shift > 15.0


def test_class_styles_are_distinct_and_validated() -> None:
    rng = np.random.default_rng(0)
    for n in (1, 2, 5, 12):
        styles = class_styles(n, 1.0, rng)
        assert len(styles) == n and len(set(styles)) == n
        assert all(isinstance(s, ClassStyle) for s in styles)
    assert isinstance(group_style(rng), GroupStyle)
    for bad in (0.0, -0.1, 1.5):
        with pytest.raises(ValueError):
            class_styles(3, bad, rng)
    with pytest.raises(ValueError):
        class_styles(0, 1.0, rng)


def test_separation_shrinks_class_differences() -> None:
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    wide = np.array([list(vars(s).values()) for s in class_styles(3, 1.0, rng_a)])
    narrow = np.array([list(vars(s).values()) for s in class_styles(3, 0.05, rng_b)])
    assert np.all(narrow.std(axis=0) < 0.1 * wide.std(axis=0) + 1e-12)


def test_class_signal_is_learnable_and_scales_with_separation() -> None:
    easy = _class_accuracy(1.0, seed=0)
    hard = _class_accuracy(0.02, seed=0)
    assert easy >= 0.6  # chance is 1/3
    assert hard <= 0.5
    assert easy - hard >= 0.2


def test_group_shift_clusters_mean_colour() -> None:
    assert _group_variance_ratio(1.0, seed=0) > 2.0
    assert _group_variance_ratio(0.0, seed=0) < 0.5  # no shift: groups indistinguishable
