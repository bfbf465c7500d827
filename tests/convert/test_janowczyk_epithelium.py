"""Janowczyk 2 (epithelium) converter on a tiny raw tree in the ``epi.tgz`` layout (masks in ``masks/``)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dpbench.build import split_task
from dpbench.convert import RawDataError, converter_for
from dpbench.errors import DpbenchError
from dpbench.tasks.registry import get_task

TASK = get_task("Janowczyk2")


def write_pair(base: Path, name: str, mask: np.ndarray, seed: int = 0) -> None:
    (base / "masks").mkdir(parents=True, exist_ok=True)
    h, w = mask.shape
    pixels = np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(base / f"{name}.tif")
    Image.fromarray(mask.astype(np.uint8) * 255).save(base / "masks" / f"{name}_mask.png")


def threshold_mask() -> np.ndarray:
    """400x400 mask: corner tiles hold exactly 10 %, 10 % - 1 px, 10.1 % and 9.9 % of a 200 px tile."""
    mask = np.zeros((400, 400), dtype=bool)
    mask[0:40, 0:100] = True  # tile (0, 0) only: 4,000 px = 10 % -> epithelium
    mask[360:400, 300:400] = True  # tile (200, 200) only: 3,999 px -> stroma
    mask[399, 399] = False
    mask[0:40, 300:400] = True  # tile (200, 0) only: 4,000 ...
    mask[40, 300:340] = True  # ... + 40 px = 10.1 % -> epithelium
    mask[360:400, 0:100] = True  # tile (0, 200) only: 4,000 ...
    mask[360, 0:40] = False  # ... - 40 px = 9.9 % -> stroma
    return mask


def make_raw(raw: Path) -> Path:
    base = raw / "janowczyk_epithelium"
    write_pair(base, "10262_500_f00182_original", threshold_mask())
    write_pair(base, "10264_500_f00001_original", np.ones((200, 200), dtype=bool), seed=1)
    write_pair(base, "10279_500_f00010_original", np.zeros((200, 200), dtype=bool), seed=2)
    return base


def test_tiles_thresholds_and_groups(tmp_path: Path) -> None:
    make_raw(tmp_path)
    conv = converter_for(TASK, tmp_path)
    samples = conv.samples()
    first = {s.coords[:2]: s.label for s in samples if s.group == "10262" and s.coords}
    assert sorted(first) == [(x, y) for x in (0, 100, 200) for y in (0, 100, 200)]  # 200 px, stride 100
    assert first[(0, 0)] == 1 and first[(200, 200)] == 0  # exactly 10 % is in, one pixel less is out
    assert first[(200, 0)] == 1 and first[(0, 200)] == 0  # 10.1 % vs 9.9 %
    assert first[(100, 100)] == 0
    assert all(s.coords is not None and s.coords[2:] == (200, 200) for s in samples)
    assert {s.group: s.label for s in samples if s.group != "10262"} == {"10264": 1, "10279": 0}
    assert all(s.source.endswith(".tif") and "/" not in s.source for s in samples)


def test_a_1000_px_image_gives_the_papers_81_tiles(tmp_path: Path) -> None:
    base = tmp_path / "janowczyk_epithelium"
    mask = np.zeros((1000, 1000), dtype=bool)
    mask[:, :500] = True
    write_pair(base, "12345_500_f00001", mask)
    samples = converter_for(TASK, tmp_path).samples()
    assert len(samples) == 81  # 42 images x 81 = 3,402, the paper's count
    assert sum(s.label for s in samples) == 5 * 9  # windows starting at x <= 400 reach into the left half
    assert len({s.group for s in samples}) == 1  # one patient: all its tiles in one group
    with pytest.raises(DpbenchError, match="leave the test split empty"):  # and one group cannot fill a split
        split_task(TASK, samples)


@pytest.mark.parametrize("problem", ["missing mask", "size", "orphan mask", "duplicate"])
def test_bad_raw_input_is_an_error_naming_the_file(tmp_path: Path, problem: str) -> None:
    base = make_raw(tmp_path)
    name = "10279_500_f00010_original_mask.png"
    if problem == "missing mask":
        (base / "masks" / name).unlink()
    elif problem == "size":
        Image.new("L", (200, 100)).save(base / "masks" / name)
    elif problem == "orphan mask":
        (base / "10279_500_f00010_original.tif").unlink()
    else:
        (base / "copy").mkdir()
        (base / "masks" / name).rename(base / "copy" / name)
        Image.new("L", (200, 200)).save(base / "masks" / name)
    with pytest.raises(RawDataError, match=re.escape(name)):
        converter_for(TASK, tmp_path).samples()
