"""Grouped splitting: no group straddles splits, determinism, class coverage, fractions, pins."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dpbench.pool.splits import SampleRef, grouped_split
from dpbench.synthetic.pins import compute_pins
from dpbench.tasks import get_task
from dpbench.tasks.registry import paper_and_public_tasks
from dpbench.tasks.synthetic import load_pins

FRACTIONS = {"train": 0.6, "val": 0.15, "test": 0.25}

samples_strategy = st.lists(
    st.tuples(st.integers(0, 30), st.integers(0, 2)), min_size=1, max_size=300
).map(lambda rows: [SampleRef(f"s{i}", f"g{g}", lab) for i, (g, lab) in enumerate(rows)])


@settings(max_examples=60, deadline=None)
@given(samples_strategy, st.integers(0, 5))
def test_no_group_in_two_splits_and_order_independent(refs: list[SampleRef], seed: int) -> None:
    split = grouped_split("t", "patient", refs, FRACTIONS, 3, seed)
    for ref in refs:
        assert split.samples[ref.key] == split.groups[ref.group]
    shuffled = refs[:]
    random.Random(seed).shuffle(shuffled)
    assert grouped_split("t", "patient", shuffled, FRACTIONS, 3, seed).sha256 == split.sha256


@settings(max_examples=40, deadline=None)
@given(samples_strategy)
def test_every_class_in_every_split_where_data_allow(refs: list[SampleRef]) -> None:
    split = grouped_split("t", "patient", refs, FRACTIONS, 3)
    for label in range(3):
        holders = {r.group for r in refs if r.label == label}
        present = {split.groups[g] for g in holders}
        missing = {s for s, labels in split.missing_classes.items() if label in labels}
        assert present.isdisjoint(missing)
        if len(holders) >= 3:  # enough groups for all three splits
            assert present == {"train", "val", "test"}, (label, present)


def test_fractions_are_approached_per_class() -> None:
    rng = random.Random(1)
    refs = [SampleRef(f"k{i}", f"p{rng.randrange(400)}", rng.randrange(2)) for i in range(20_000)]
    split = grouped_split("t", "patient", refs, {"train": 0.7, "val": 0.1, "test": 0.2}, 2)
    counts = split.counts()
    for name, fraction in (("train", 0.7), ("val", 0.1), ("test", 0.2)):
        assert abs(counts[name][0] / 20_000 - fraction) < 0.01
    for label in range(2):
        in_test = sum(1 for r in refs if r.label == label and split.samples[r.key] == "test")
        assert abs(in_test / sum(r.label == label for r in refs) - 0.2) < 0.02


def test_zero_fraction_split_stays_empty_and_errors_are_clear() -> None:
    refs = [SampleRef(f"k{i}", f"g{i % 9}", i % 2) for i in range(90)]
    split = grouped_split("t", "patient", refs, {"train": 0.67, "val": 0.0, "test": 0.33}, 2)
    assert split.counts()["val"] == (0, 0)
    with pytest.raises(ValueError, match="duplicate sample key"):
        grouped_split("t", "patient", [*refs, refs[0]], FRACTIONS, 2)
    with pytest.raises(ValueError, match="outside"):
        grouped_split("t", "patient", [SampleRef("a", "g", 5)], FRACTIONS, 2)


def test_synthetic_splits_match_their_pins() -> None:
    """The split, sizes and tile size of every synthetic task are the same here as where they were pinned, and the
    registry serves exactly the pinned data."""
    pins = load_pins()
    tasks = [t for t in paper_and_public_tasks() if t.role in ("pretrain", "evaluate")]
    assert len(pins) == len(tasks) == 22
    assert compute_pins() == pins
    for paper in tasks:
        mirror = get_task(f"synthetic-{paper.name}")
        pin = pins[mirror.name]
        assert mirror.split_sha256 == pin["split_sha256"] and mirror.patch_px == pin["patch_px"]
        assert [mirror.sizes.train.images, mirror.sizes.train.groups] == pin["sizes"]["train"]
