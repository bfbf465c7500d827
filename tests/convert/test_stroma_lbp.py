"""Stroma LBP converter on a tiny raw tree in dpbench's assumed Epistroma layout (class folders, optional sets)."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dpbench.build import split_task
from dpbench.convert import RawDataError, converter_for
from dpbench.tasks.registry import get_task
from tests.conftest import REALDATA

TASK = get_task("StromaLBP")
REAL_IHC = REALDATA / "openslide_skimage_sources" / "ihc" / "ihc.png"


def write(path: Path, size: tuple[int, int], seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)


def make_raw(raw: Path) -> Path:
    base = raw / "stroma_lbp" / "epistroma"
    for s, split in enumerate(("train", "test")):
        for j in range(3):
            write(base / split / "epithelium" / f"{j + 1}.tif", (60 + 10 * j, 50), seed=s * 10 + j)
            write(base / split / "stroma" / f"{j + 1}.png", (40, 70 + 5 * j), seed=s * 10 + j + 5)
    return base


def test_labels_whole_images_and_image_groups(tmp_path: Path) -> None:
    base = make_raw(tmp_path)
    write(base / "extra" / "Stroma" / "a.b.jpg", (30, 30))  # case-insensitive folder; a dot in the stem
    write(base / "extra" / "EPI" / "c.bmp", (30, 30))
    (base / "README.txt").write_text("epistroma")
    conv = converter_for(TASK, tmp_path)
    samples = conv.samples()
    assert len(samples) == 2 * 6 + 2
    labels = {s.source: s.label for s in samples}
    assert labels["epistroma/train/epithelium/1.tif"] == 1 and labels["epistroma/test/stroma/3.png"] == 0
    assert labels["epistroma/extra/Stroma/a.b.jpg"] == 0 and labels["epistroma/extra/EPI/c.bmp"] == 1
    assert all(s.group == s.key and s.coords is None and s.split is None for s in samples)
    assert "epistroma-extra-Stroma-a-b" in {s.key for s in samples}
    assert all("." not in s.key and "/" not in s.key for s in samples)
    assert conv.skipped == {"not an image file": 1}
    sample = next(s for s in samples if s.source == "epistroma/test/epithelium/3.tif")
    decoded = np.asarray(Image.open(io.BytesIO(conv.image(sample))))
    assert decoded.shape == (50, 80, 3) and (decoded == np.asarray(Image.open(base / "test/epithelium/3.tif"))).all()
    split = split_task(TASK, samples)
    assert len(set(split.samples.values())) == 3


@pytest.mark.parametrize("where", ["epistroma/loose.tif", "epistroma/stroma/epithelium/x.tif",
                                   "epistroma/tumour/x.tif"])
def test_an_image_without_exactly_one_class_folder_is_an_error(tmp_path: Path, where: str) -> None:
    make_raw(tmp_path)
    write(tmp_path / "stroma_lbp" / where, (20, 20))
    with pytest.raises(RawDataError, match=re.escape(where.rsplit("/", 1)[1])):
        converter_for(TASK, tmp_path).samples()


def test_corrupt_image_is_an_error_naming_it(tmp_path: Path) -> None:
    base = make_raw(tmp_path)
    (base / "train" / "stroma" / "2.png").write_bytes(b"not a png")
    conv = converter_for(TASK, tmp_path)
    broken = next(s for s in conv.samples() if s.source.endswith("train/stroma/2.png"))
    with pytest.raises(RawDataError, match=r"train/stroma/2\.png"):
        conv.image(broken)


@pytest.mark.skipif(not REAL_IHC.is_file(), reason="shared/realdata is absent")
def test_real_ihc_image_is_kept_whole(tmp_path: Path) -> None:
    base = make_raw(tmp_path)
    (base / "train" / "epithelium" / "real.png").symlink_to(REAL_IHC)
    conv = converter_for(TASK, tmp_path)
    real = next(s for s in conv.samples() if s.source.endswith("real.png"))
    decoded = np.asarray(Image.open(io.BytesIO(conv.image(real))))
    with Image.open(REAL_IHC) as original:
        assert real.label == 1 and (decoded == np.asarray(original.convert("RGB"))).all()
