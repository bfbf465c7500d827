"""MHIST converter on a tiny raw tree: images/*.png + annotations.csv in the BMIRDS layout."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dpbench.build import BuildOptions, build_pool
from dpbench.convert import RawDataError, converter_for
from dpbench.tasks.registry import get_pool, get_task

TASK = get_task("Mhist")
HEADER = ["Image Name", "Majority Vote Label", "Number of Annotators who Selected SSA (Out of 7)", "Partition"]
#: (label, SSA votes, partition)
ROWS = [("HP", 0, "train"), ("SSA", 6, "train"), ("HP", 2, "train"), ("SSA", 4, "train"), ("HP", 1, "train"),
        ("SSA", 7, "train"), ("HP", 3, "test"), ("SSA", 5, "test"), ("HP", 0, "test")]


def make_raw(raw: Path, rows: list[tuple[str, int, str]] = ROWS) -> Path:
    root = raw / "mhist"
    (root / "images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    with open(root / "annotations.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for i, (label, votes, partition) in enumerate(rows):
            name = f"MHIST_a{chr(97 + i)}{chr(97 + i)}.png"
            Image.fromarray(rng.integers(0, 255, (224, 224, 3), dtype=np.uint8)).save(root / "images" / name)
            writer.writerow([name, label, votes, partition])
    return root


def test_labels_official_test_and_skips(tmp_path: Path) -> None:
    root = make_raw(tmp_path)
    Image.new("RGB", (224, 224)).save(root / "images" / "MHIST_zzz.png")
    conv = converter_for(TASK, tmp_path)
    samples = conv.samples()
    assert len(samples) == 9
    by_key = {s.key: s for s in samples}
    assert by_key["MHIST_abb"].label == 1 and by_key["MHIST_aaa"].label == 0  # SSA is the positive class
    assert [s.key for s in samples if s.split == "test"] == ["MHIST_agg", "MHIST_ahh", "MHIST_aii"]
    assert all(s.split is None for s in samples if s.key < "MHIST_agg")
    assert all(s.group == s.key and s.source == f"images/{s.key}.png" for s in samples)
    assert conv.skipped == {"not listed in annotations.csv": 1}


def test_vote_contradicting_the_label_is_skipped(tmp_path: Path) -> None:
    make_raw(tmp_path, [*ROWS, ("HP", 5, "train")])
    conv = converter_for(TASK, tmp_path)
    assert len(conv.samples()) == 9
    assert conv.skipped == {"majority label contradicts the annotator count": 1}


@pytest.mark.parametrize("edit, match", [
    (lambda rows: rows.__setitem__(2, ("TA", 0, "train")), r"line 4: malformed row .*'TA'"),
    (lambda rows: rows.__setitem__(3, ("SSA", 6, "valid")), r"line 5: malformed row .*'valid'"),
])
def test_malformed_rows_are_errors_naming_the_line(tmp_path: Path, edit: object, match: str) -> None:
    rows = list(ROWS)
    edit(rows)  # type: ignore[operator]
    make_raw(tmp_path, rows)
    with pytest.raises(RawDataError, match=match):
        converter_for(TASK, tmp_path).samples()


def test_missing_image_and_missing_column_are_errors(tmp_path: Path) -> None:
    root = make_raw(tmp_path)
    (root / "images" / "MHIST_acc.png").unlink()
    with pytest.raises(RawDataError, match=r"MHIST_acc\.png .*line 4"):
        converter_for(TASK, tmp_path).samples()
    (root / "annotations.csv").write_text("Image Name,Label\nMHIST_aaa.png,HP\n")
    with pytest.raises(RawDataError, match=r"lacks column.*Majority Vote Label"):
        converter_for(TASK, tmp_path).samples()


def test_build_pins_test_and_carves_val(tmp_path: Path) -> None:
    make_raw(tmp_path / "raw")
    report = build_pool(get_pool("public2026"), tmp_path / "out", ["Mhist"],
                        BuildOptions(shard_size=8, workers=1, raw=tmp_path / "raw"))
    splits = report.tasks[0].entry.splits
    assert splits["test"].images == 3
    assert splits["train"].images + splits["val"].images == 6 and splits["train"].images >= 4
