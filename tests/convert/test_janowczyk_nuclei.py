"""Janowczyk 1 (nuclei) converter on a tiny raw tree in the flat ``nuclei.tgz`` layout."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dpbench.convert import RawDataError, converter_for
from dpbench.tasks.registry import get_task
from tests.conftest import REALDATA

TASK = get_task("Janowczyk1")
REAL_HE = REALDATA / "openslide_skimage_sources" / "he" / "cmu_small_region.svs"  # 2220x2967 tiled TIFF


def write_pair(folder: Path, base: str, mask: np.ndarray, seed: int = 0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    h, w = mask.shape
    pixels = np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(folder / f"{base}_original.tif")
    Image.fromarray(mask.astype(np.uint8) * 255).save(folder / f"{base}_mask.png")


def threshold_mask() -> np.ndarray:
    """500x500 mask whose corner tiles cover exactly 5 %, 5 % - 1 px, 5.1 % and 4.9 % of a 250 px tile."""
    mask = np.zeros((500, 500), dtype=bool)
    mask[0:25, 0:125] = True  # tile (0, 0) only: 3,125 px = 5.0 % -> nucleus
    mask[475:500, 375:500] = True  # tile (250, 250) only: 3,125 - 1 px -> background
    mask[499, 499] = False
    mask[0:25, 375:500] = True  # tile (250, 0) only: 3,125 ...
    mask[25, 375:438] = True  # ... + 63 px = 3,188 = 5.1 % -> nucleus
    mask[475:500, 0:125] = True  # tile (0, 250) only: 3,125 ...
    mask[475, 0:63] = False  # ... - 63 px = 3,062 = 4.9 % -> background
    return mask


def make_raw(raw: Path) -> Path:
    base = raw / "janowczyk_nuclei"
    write_pair(base, "12750_500_f00003", threshold_mask())
    write_pair(base, "12750_500_f00004", np.ones((300, 300), dtype=bool), seed=1)
    write_pair(base, "8913_500_f00001", np.zeros((250, 375), dtype=bool), seed=2)
    return base


def test_tiles_thresholds_and_patient_groups(tmp_path: Path) -> None:
    base = make_raw(tmp_path)
    (base / "README.txt").write_text("nuclei")
    (base / ".archives").mkdir()
    (base / ".archives" / "nuclei.tgz").write_bytes(b"x")
    conv = converter_for(TASK, tmp_path)
    samples = conv.samples()
    first = {s.coords[:2]: s.label for s in samples if s.source == "12750_500_f00003_original.tif" and s.coords}
    assert sorted(first) == [(x, y) for x in (0, 125, 250) for y in (0, 125, 250)]  # 250 px, stride 125
    assert first[(0, 0)] == 1 and first[(250, 250)] == 0  # exactly 5 % is in, one pixel less is out
    assert first[(250, 0)] == 1 and first[(0, 250)] == 0  # 5.1 % vs 4.9 %
    assert first[(125, 125)] == 0
    assert all(s.coords is not None and s.coords[2:] == (250, 250) for s in samples)
    assert len(samples) == 9 + 1 + 2  # 300 px image: one tile; 375x250 image: two
    assert {s.group for s in samples} == {"12750", "8913"}
    assert {s.label for s in samples if s.source.startswith("12750_500_f00004")} == {1}
    assert conv.skipped == {"neither a '*_original.tif' image nor a '*_mask.png' mask": 1}


def test_image_bytes_are_the_crop_and_deterministic(tmp_path: Path) -> None:
    base = make_raw(tmp_path)
    one, two = converter_for(TASK, tmp_path), converter_for(TASK, tmp_path)
    assert one.samples() == two.samples()
    sample = next(s for s in one.samples() if s.coords == (125, 250, 250, 250))
    decoded = np.asarray(Image.open(io.BytesIO(one.image(sample))))
    original = np.asarray(Image.open(base / sample.source))
    assert (decoded == original[250:500, 125:375]).all()
    assert one.image(sample) == two.image(sample)


def test_small_image_is_skipped_and_counted(tmp_path: Path) -> None:
    make_raw(tmp_path)
    write_pair(tmp_path / "janowczyk_nuclei", "9000_500_f00001", np.zeros((200, 400), dtype=bool))
    conv = converter_for(TASK, tmp_path)
    assert not any(s.group == "9000" for s in conv.samples())
    assert conv.skipped["image smaller than one 250 px tile"] == 1


def test_an_image_without_its_mask_is_skipped_as_the_tutorial_does(tmp_path: Path) -> None:
    """The tutorial's step1_make_patches.m uses only the images that have a mask (choosehappy/public)."""
    base = make_raw(tmp_path)
    (base / "8913_500_f00001_mask.png").unlink()
    conv = converter_for(TASK, tmp_path)
    samples = conv.samples()
    assert {s.source for s in samples} == {"12750_500_f00003_original.tif", "12750_500_f00004_original.tif"}
    assert conv.skipped == {"image without its '*_mask.png' mask (not annotated)": 1}


@pytest.mark.parametrize("problem", ["orphan mask", "size", "no patient", "corrupt mask"])
def test_bad_raw_input_is_an_error_naming_the_file(tmp_path: Path, problem: str) -> None:
    base = make_raw(tmp_path)
    if problem == "orphan mask":
        (base / "8913_500_f00001_original.tif").unlink()
        name = "8913_500_f00001_mask.png"
    elif problem == "size":
        Image.new("L", (250, 250)).save(base / "8913_500_f00001_mask.png")
        name = "8913_500_f00001_mask.png"
    elif problem == "no patient":
        write_pair(base, "nopatient", np.zeros((250, 250), dtype=bool))
        name = "nopatient_original.tif"
    else:
        (base / "8913_500_f00001_mask.png").write_bytes(b"not a png")
        name = "8913_500_f00001_mask.png"
    with pytest.raises(RawDataError, match=re.escape(name)):
        converter_for(TASK, tmp_path).samples()


@pytest.mark.skipif(not REAL_HE.is_file(), reason="shared/realdata is absent")
def test_real_he_tiff_is_tiled(tmp_path: Path) -> None:
    """A real H&E slide region (an Aperio TIFF) as a nuclei image, read in place through a link."""
    base = tmp_path / "janowczyk_nuclei"
    base.mkdir()
    (base / "9999_500_f00001_original.tif").symlink_to(REAL_HE)
    mask = np.zeros((2967, 2220), dtype=np.uint8)
    mask[600:700, 600:700] = 255
    Image.fromarray(mask).save(base / "9999_500_f00001_mask.png")
    conv = converter_for(TASK, tmp_path)
    samples = conv.samples()
    assert len(samples) == 16 * 22  # (size - 250) // 125 + 1 windows per axis
    positives = sorted(s.coords[:2] for s in samples if s.label == 1 and s.coords)
    assert positives == [(x, y) for x in (500, 625) for y in (500, 625)]  # overlap >= 3,125 px
    tile = next(s for s in samples if s.coords == (500, 625, 250, 250))
    decoded = np.asarray(Image.open(io.BytesIO(conv.image(tile))))
    with Image.open(REAL_HE) as slide:
        expected = np.asarray(slide.convert("RGB"))[625:875, 500:750]
    assert decoded.shape == (250, 250, 3) and (decoded == expected).all()
