"""UMCM Colorectal converter on a tiny raw tree in the Zenodo archive's layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dpbench.build import BuildOptions, build_pool
from dpbench.convert import RawDataError, converter_for
from dpbench.tasks.registry import get_pool, get_task

TASK = get_task("UmcmColorectal")


def make_raw(raw: Path, per_class: int = 3) -> Path:
    base = raw / "umcm_colorectal" / "Kather_texture_2016_image_tiles_5000"
    rng = np.random.default_rng(0)
    for i, name in enumerate(TASK.class_names):
        folder = base / f"{i + 1:02d}_{name}"
        folder.mkdir(parents=True)
        for j in range(per_class):
            pixels = rng.integers(0, 255, (150, 150, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"{j:04X}_CRC-Prim-HE-0{j}_{i}.tif")
    return base


def test_classes_keys_and_whole_tiles(tmp_path: Path) -> None:
    base = make_raw(tmp_path)
    (base / "01_TUMOR" / "Thumbs.db").write_bytes(b"junk")
    conv = converter_for(TASK, tmp_path)
    samples = conv.samples()
    assert len(samples) == 8 * 3
    assert {s.label for s in samples} == set(range(8))
    assert all(s.group == s.key for s in samples)  # no patient ids: image-level groups
    assert conv.skipped == {"not an image file": 1}
    tumour = next(s for s in samples if s.label == 0)
    decoded = np.asarray(Image.open(__import__("io").BytesIO(conv.image(tumour))))
    original = np.asarray(Image.open(tmp_path / "umcm_colorectal" / tumour.source))
    assert decoded.shape == (150, 150, 3) and (decoded == original).all()


def test_unknown_class_folder_is_an_error_naming_it(tmp_path: Path) -> None:
    base = make_raw(tmp_path, per_class=1)
    (base / "09_BLOOD").mkdir()
    with pytest.raises(RawDataError, match="09_BLOOD"):
        converter_for(TASK, tmp_path).samples()


def test_build_from_raw_reports_missing_sources(tmp_path: Path) -> None:
    make_raw(tmp_path / "raw", per_class=4)
    report = build_pool(get_pool("mormont2020"), tmp_path / "out", None,
                        BuildOptions(shard_size=16, workers=1, raw=tmp_path / "raw"))
    assert [t.entry.name for t in report.tasks] == ["UmcmColorectal"]
    assert "Camelyon16" in report.missing
    entry = report.tasks[0].entry
    assert sum(s.images for s in entry.splits.values()) == 32


def test_cli_build_reports_missing_sources_and_audit_passes(tmp_path: Path) -> None:
    from conftest import run_cli

    make_raw(tmp_path / "raw", per_class=3)
    out = tmp_path / "out"
    built = run_cli("build", "--pool", "mormont2020", "--raw", str(tmp_path / "raw"), "--out", str(out),
                    "--workers", "1")
    assert built.returncode == 0, built.stderr
    assert "not built: Camelyon16" in built.stdout and "dpbench sources fetch" in built.stdout
    assert "not built: Lung" in built.stdout and "private" in built.stdout
    audit = run_cli("audit", str(out))
    assert audit.returncode == 0, audit.stdout + audit.stderr


def test_a_class_without_any_sample_stops_the_conversion(tmp_path: Path) -> None:
    base = make_raw(tmp_path, per_class=1)
    for tile in (base / "08_EMPTY").iterdir():
        tile.unlink()
    with pytest.raises(RawDataError, match="no sample of class EMPTY"):
        converter_for(TASK, tmp_path).samples()
