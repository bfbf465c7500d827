"""The embedded pool: mirrors the paper's tasks, is labelled synthetic, and leaks only image-level splits."""

from __future__ import annotations

import numpy as np
from sklearn.neighbors import KNeighborsClassifier

from dpbench.synthetic.pins import synthetic_split
from dpbench.synthetic.plan import plan_task
from dpbench.synthetic.pool import SyntheticSource
from dpbench.tasks import get_pool, get_task, pool_tasks
from dpbench.tasks.synthetic import paper_name_of


def test_synthetic_pool_mirrors_the_paper_pool() -> None:
    synthetic = pool_tasks(get_pool("synthetic"))
    assert len(synthetic) == 22 and get_pool("synthetic").synthetic
    for task in synthetic:
        paper = get_task(paper_name_of(task))
        assert task.name == f"synthetic-{paper.name}" and task.synthetic
        assert (task.n_classes, task.split_unit, task.role) == (paper.n_classes, paper.split_unit, paper.role)
        assert task.linked == tuple(f"synthetic-{n}" for n in paper.linked)
        assert task.availability == "synthetic" and "SYNTHETIC" in task.source.title
        assert task.sizes.images < paper.sizes.images
    assert sum(t.sizes.images for t in synthetic) < 8000


def test_linked_synthetic_tasks_share_their_patients() -> None:
    one, two = plan_task(get_task("Breast1")), plan_task(get_task("Breast2"))
    assert set(one.sources) & set(two.sources)
    assert not set(one.sources) & set(plan_task(get_task("Lung")).sources)


def test_images_are_deterministic_and_differ_between_samples() -> None:
    source = SyntheticSource(get_task("synthetic-Necrosis"))
    again = SyntheticSource(get_task("synthetic-Necrosis"))
    samples = source.samples()
    assert source.image(samples[3]) == again.image(samples[3])
    assert source.image(samples[3]) != source.image(samples[4])
    assert all(s.source.startswith("synthetic://") for s in samples)


def _features(tile: np.ndarray) -> np.ndarray:
    x = tile.reshape(-1, 3).astype(float) / 255
    return np.concatenate([x.mean(0), x.std(0), np.percentile(x, [10, 50, 90], axis=0).ravel()])


def test_image_level_split_leaks_and_group_split_does_not() -> None:
    """A 1-NN on colour statistics scores higher when a patient's images sit on both sides of the split."""
    gaps = []
    for name in ("MitosAtypia14", "Breast1", "Lung"):
        source = SyntheticSource(get_task(f"synthetic-{name}"))
        x = np.array([_features(source.render(i)) for i in range(len(source.plan.keys))])
        y = np.array(source.plan.labels)
        split = synthetic_split(get_task(name))
        grouped = np.array([split.samples[k] != "test" for k in source.plan.keys])
        by_image = np.random.default_rng(0).random(len(y)) < grouped.mean()
        scores = []
        for train in (grouped, by_image):
            knn = KNeighborsClassifier(1).fit(x[train], y[train])
            scores.append(knn.score(x[~train], y[~train]))
        gaps.append(scores[1] - scores[0])
    assert np.mean(gaps) > 0.08, gaps
    assert min(gaps) > 0, gaps
