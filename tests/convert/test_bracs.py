"""BRACS converter on a tiny BRACS_RoI/latest_version tree (official split folders, <k>_<CLASS> folders)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dpbench.build import BuildOptions, build_pool
from dpbench.convert import RawDataError, converter_for
from dpbench.tasks.registry import get_pool, get_task

TASK = get_task("Bracs")
#: split → slide ids (each slide holds one region of every class)
SLIDES = {"train": (1003, 1004), "val": (1283,), "test": (1500, 1501)}


def make_raw(raw: Path, nested: bool = True) -> Path:
    base = raw / "bracs" / "BRACS_RoI" / "latest_version" if nested else raw / "bracs"
    rng = np.random.default_rng(0)
    for split, slides in SLIDES.items():
        for k, name in enumerate(TASK.class_names):
            folder = base / split / f"{k}_{name}"
            folder.mkdir(parents=True)
            for slide in slides:
                height, width = 20 + k, 30 + 2 * k  # regions have variable sizes
                pixels = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"BRACS_{slide}_{name}_{k + 1}.png")
    return base


@pytest.mark.parametrize("nested", [True, False])
def test_classes_official_splits_slide_groups(tmp_path: Path, nested: bool) -> None:
    base = make_raw(tmp_path, nested)
    (base / "train" / "0_N" / "BRACS_1003_N_1.png.xml").write_text("<x/>")
    conv = converter_for(TASK, tmp_path)
    samples = conv.samples()
    assert len(samples) == 5 * 7
    assert conv.skipped == {"not a PNG region": 1}
    for sample in samples:
        split, folder, _ = sample.source.split("/")[-3:]
        assert sample.split == split and folder == f"{sample.label}_{TASK.class_names[sample.label]}"
        assert sample.group == "_".join(sample.key.split("_")[:2])
    assert {s.group for s in samples if s.split == "val"} == {"BRACS_1283"}
    dcis = next(s for s in samples if s.key == "BRACS_1500_DCIS_6")
    decoded = np.asarray(Image.open(io.BytesIO(conv.image(dcis))))
    assert dcis.label == 5 and decoded.shape == (25, 40, 3)  # native size kept


@pytest.mark.parametrize("damage, match", [
    ("unknown_class", "unknown class folder .*7_LCIS"),
    ("wrong_index", "unknown class folder .*2_PB"),
    ("unknown_split", "unknown split folder .*holdout"),
    ("misnamed", "BRACS_1003_IC_9.png is named as class IC but sits in 0_N"),
    ("unreadable_name", "cannot read slide and class from .*roi_17.png"),
])
def test_bad_layout_is_an_error_naming_the_path(tmp_path: Path, damage: str, match: str) -> None:
    base = make_raw(tmp_path)
    if damage == "unknown_class":
        (base / "test" / "7_LCIS").mkdir()
    elif damage == "wrong_index":
        (base / "val" / "2_PB").mkdir()
    elif damage == "unknown_split":
        (base / "holdout").mkdir()
    else:
        name = "BRACS_1003_IC_9.png" if damage == "misnamed" else "roi_17.png"
        Image.new("RGB", (4, 4)).save(base / "train" / "0_N" / name)
    with pytest.raises(RawDataError, match=match):
        converter_for(TASK, tmp_path).samples()


def test_missing_split_folder_is_an_error(tmp_path: Path) -> None:
    base = make_raw(tmp_path)
    (base / "val").rename(tmp_path / "elsewhere")
    with pytest.raises(RawDataError, match=r"missing official split folder .*val"):
        converter_for(TASK, tmp_path).samples()


def test_build_keeps_the_official_splits(tmp_path: Path) -> None:
    make_raw(tmp_path / "raw")
    report = build_pool(get_pool("public2026"), tmp_path / "out", ["Bracs"],
                        BuildOptions(shard_size=16, workers=1, raw=tmp_path / "raw"))
    splits = report.tasks[0].entry.splits
    assert (splits["train"].images, splits["val"].images, splits["test"].images) == (14, 7, 14)
    assert (splits["train"].groups, splits["val"].groups, splits["test"].groups) == (2, 1, 2)
