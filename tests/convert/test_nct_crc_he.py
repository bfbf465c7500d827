"""NCT-CRC-HE-100K + CRC-VAL-HE-7K converter on a written raw tree and on real NCT tiles."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dpbench.build import BuildOptions, build_pool
from dpbench.convert import RawDataError, converter_for
from dpbench.tasks.registry import get_pool, get_task
from tests.conftest import REALDATA

TASK = get_task("NctCrcHe")
REAL = REALDATA / "nct_crc_he_100k_samples"


def write_tiles(base: Path, per_class: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for name in TASK.class_names:
        folder = base / name
        folder.mkdir(parents=True)
        for j in range(per_class):
            pixels = rng.integers(0, 255, (224, 224, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"{name}-{seed}{j:07X}.tif")


def make_raw(raw: Path, train: int = 3, test: int = 2) -> Path:
    root = raw / "nct_crc_he"
    write_tiles(root / "NCT-CRC-HE-100K", train, 1)
    write_tiles(root / "CRC-VAL-HE-7K", test, 2)
    return root


def test_classes_official_test_and_image_groups(tmp_path: Path) -> None:
    root = make_raw(tmp_path)
    (root / "NCT-CRC-HE-100K" / "ADI" / "Thumbs.db").write_bytes(b"junk")
    (root / "NCT-CRC-HE-100K" / "__MACOSX").mkdir()
    samples = converter_for(TASK, tmp_path).samples()
    assert len(samples) == 9 * 5
    assert {s.label for s in samples} == set(range(9))
    test = [s for s in samples if s.split == "test"]
    assert len(test) == 18 and all(s.source.startswith("CRC-VAL-HE-7K/") and s.key.startswith("val7k-")
                                   for s in test)
    assert all(s.split is None for s in samples if s.source.startswith("NCT-CRC-HE-100K/"))
    assert all(s.group == s.key for s in samples)
    tum = next(s for s in samples if s.source.startswith("NCT-CRC-HE-100K/TUM/"))
    assert TASK.class_names[tum.label] == "TUM" and tum.um_per_px == 0.5


def test_unknown_class_folder_and_misnamed_tile_are_errors(tmp_path: Path) -> None:
    root = make_raw(tmp_path, 1, 1)
    (root / "CRC-VAL-HE-7K" / "BLOOD").mkdir()
    with pytest.raises(RawDataError, match="BLOOD"):
        converter_for(TASK, tmp_path).samples()
    (root / "CRC-VAL-HE-7K" / "BLOOD").rmdir()
    stray = root / "NCT-CRC-HE-100K" / "ADI" / "TUM-ZZZZ.tif"
    Image.new("RGB", (224, 224)).save(stray)
    with pytest.raises(RawDataError, match="TUM-ZZZZ"):
        converter_for(TASK, tmp_path).samples()


def test_missing_test_archive_is_an_error(tmp_path: Path) -> None:
    write_tiles(tmp_path / "nct_crc_he" / "NCT-CRC-HE-100K", 1, 1)
    with pytest.raises(RawDataError, match="CRC-VAL-HE-7K"):
        converter_for(TASK, tmp_path).samples()


@pytest.mark.skipif(not REAL.is_dir(), reason="shared/realdata is absent")
def test_real_nct_tiles(tmp_path: Path) -> None:
    root = tmp_path / "nct_crc_he"
    (root / "NCT-CRC-HE-100K").mkdir(parents=True)
    for folder in sorted(p for p in REAL.iterdir() if p.is_dir()):
        (root / "NCT-CRC-HE-100K" / folder.name).symlink_to(folder, target_is_directory=True)
    write_tiles(root / "CRC-VAL-HE-7K", 1, 2)
    conv = converter_for(TASK, tmp_path)
    real = [s for s in conv.samples() if s.split is None]
    assert len(real) == 9
    for sample in real:
        name = Path(sample.source).name
        assert name.startswith(TASK.class_names[sample.label] + "-")
        decoded = np.asarray(Image.open(io.BytesIO(conv.image(sample))))
        original = np.asarray(Image.open(REAL / TASK.class_names[sample.label] / name).convert("RGB"))
        assert decoded.shape == (224, 224, 3) and (decoded == original).all()
    assert conv.image(real[0]) == converter_for(TASK, tmp_path).image(real[0])  # deterministic bytes


def test_build_pins_the_official_test_set(tmp_path: Path) -> None:
    make_raw(tmp_path / "raw", train=6, test=2)
    report = build_pool(get_pool("public2026"), tmp_path / "out", ["NctCrcHe"],
                        BuildOptions(shard_size=64, workers=1, raw=tmp_path / "raw"))
    entry = report.tasks[0].entry
    assert entry.splits["test"].images == 18
    assert entry.splits["train"].images + entry.splits["val"].images == 54
    assert entry.splits["val"].images > 0
