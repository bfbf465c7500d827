"""Gleason (Arvaniti) converter on a tiny tree of create_patches.py output (JPEG patches per TMA spot), in the
output layouts of the script's current and earlier versions (utils/create_patches.py of eiriniar/gleason_CNN:
``test_patches_750/patho_{1,2}`` since commit ffbac66, ``inter_observer/joint_test_patches_750/patho_{1,2}``
before)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dpbench.build import BuildOptions, build_pool
from dpbench.convert import RawDataError, converter_for
from dpbench.tasks.registry import get_pool, get_task

TASK = get_task("GleasonArvaniti")
SPOTS = {"train_validation_patches_750": ["ZT111_4_A_1_1", "ZT199_1_B_2_3", "ZT204_6_C_7_2", "ZT76_39_A_1_1"],
         "test_patches_750/patho_1": ["ZT80_38_A_1_1", "ZT80_38_A_1_2"],
         "test_patches_750/patho_2": ["ZT80_38_A_1_1"]}


EARLIER_TEST = "inter_observer/joint_test_patches_750"


def make_raw(raw: Path, size: int = 32, test_dir: str = "test_patches_750", inner: str = "") -> Path:
    root = raw / "gleason_arvaniti" / inner if inner else raw / "gleason_arvaniti"
    rng = np.random.default_rng(0)
    for folder, spots in SPOTS.items():
        folder = folder.replace("test_patches_750", test_dir)
        for spot in spots:
            (root / folder / spot).mkdir(parents=True)
            for j, grade in enumerate(range(4)):
                pixels = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(root / folder / spot / f"{spot}_patch_{3 * j}_class_{grade}.jpg")
    return root


def test_classes_array_splits_and_spot_groups(tmp_path: Path) -> None:
    root = make_raw(tmp_path)
    (root / "train_validation_patches_750" / "ZT76_39_A_1_1" / "notes.txt").write_text("x")
    conv = converter_for(TASK, tmp_path)
    samples = conv.samples()
    assert len(samples) == 6 * 4  # patho_2 is not read
    assert {s.label for s in samples} == {0, 1, 2, 3}
    split_of = {s.group: s.split for s in samples}
    assert split_of == {"ZT111_4_A_1_1": "train", "ZT199_1_B_2_3": "train", "ZT204_6_C_7_2": "train",
                        "ZT76_39_A_1_1": "val", "ZT80_38_A_1_1": "test", "ZT80_38_A_1_2": "test"}
    g5 = next(s for s in samples if s.key == "ZT80_38_A_1_2_patch_9_class_3")
    assert g5.label == 3 and g5.source == "test_patches_750/patho_1/ZT80_38_A_1_2/ZT80_38_A_1_2_patch_9_class_3.jpg"
    assert all("patho_2" not in s.source for s in samples)
    assert conv.skipped == {"not a JPEG patch": 1}


@pytest.mark.parametrize("folder, file, match", [
    ("train_validation_patches_750/ZT111_4_A_1_1", "ZT111_4_A_1_1_patch_5_class_4.jpg", "class 4 is outside"),
    ("train_validation_patches_750/ZT99_1_A_1_1", "ZT99_1_A_1_1_patch_5_class_1.jpg", "array ZT99"),
    ("train_validation_patches_750/ZT80_1_A_1_1", "ZT80_1_A_1_1_patch_5_class_1.jpg", "array ZT80 does not"),
    ("test_patches_750/patho_1/ZT80_38_A_1_1", "ZT80_38_A_1_1_patch_5.jpg", "cannot read the spot and class"),
])
def test_bad_patch_names_are_errors_naming_the_file(tmp_path: Path, folder: str, file: str, match: str) -> None:
    root = make_raw(tmp_path, size=8)
    (root / folder).mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8)).save(root / folder / file)
    with pytest.raises(RawDataError, match=match) as error:
        converter_for(TASK, tmp_path).samples()
    assert file in str(error.value)


def test_missing_test_folder_is_an_error(tmp_path: Path) -> None:
    root = make_raw(tmp_path, size=8)
    for spot in SPOTS["test_patches_750/patho_1"]:
        for path in (root / "test_patches_750/patho_1" / spot).iterdir():
            path.unlink()
        (root / "test_patches_750/patho_1" / spot).rmdir()
    (root / "test_patches_750/patho_1").rmdir()
    with pytest.raises(RawDataError, match="patho_1"):
        converter_for(TASK, tmp_path).samples()


def test_build_keeps_the_array_split(tmp_path: Path) -> None:
    make_raw(tmp_path / "raw", size=16)
    report = build_pool(get_pool("public2026"), tmp_path / "out", ["GleasonArvaniti"],
                        BuildOptions(shard_size=16, workers=1, raw=tmp_path / "raw"))
    splits = report.tasks[0].entry.splits
    assert (splits["train"].images, splits["val"].images, splits["test"].images) == (12, 4, 8)
    assert (splits["train"].groups, splits["val"].groups, splits["test"].groups) == (3, 1, 2)


@pytest.mark.parametrize(("test_dir", "inner"), [(EARLIER_TEST, ""), ("test_patches_750", "dataset_TMA")])
def test_the_scripts_other_output_layouts(tmp_path: Path, test_dir: str, inner: str) -> None:
    make_raw(tmp_path, size=8, test_dir=test_dir, inner=inner)
    samples = converter_for(TASK, tmp_path).samples()
    assert len(samples) == 6 * 4 and all("patho_2" not in s.source for s in samples)
    test = {s.group for s in samples if s.split == "test"}
    assert test == {"ZT80_38_A_1_1", "ZT80_38_A_1_2"}
    assert all(s.source.startswith(f"{inner}/" if inner else "") for s in samples)
    assert {s.source.split("/patho_1/")[0] for s in samples if s.split == "test"} == {
        f"{inner}/{test_dir}" if inner else test_dir}


def test_both_test_layouts_at_once_is_an_error(tmp_path: Path) -> None:
    root = make_raw(tmp_path, size=8)
    (root / EARLIER_TEST / "patho_1" / "ZT80_38_A_1_1").mkdir(parents=True)
    with pytest.raises(RawDataError, match=r"two runs of create_patches\.py"):
        converter_for(TASK, tmp_path).samples()
