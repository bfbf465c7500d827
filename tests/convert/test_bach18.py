"""BACH 2018 microscopy converter on a tiny raw tree in the Zenodo archive's layout (2048x1536 TIFF photos)."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dpbench.build import BuildOptions, build_pool
from dpbench.convert import RawDataError, converter_for
from dpbench.tasks.registry import get_pool, get_task

TASK = get_task("Bach18Micro")
PREFIX = {"Normal": "n", "Benign": "b", "InSitu": "is", "Invasive": "iv"}


def make_raw(raw: Path, per_class: int = 2) -> Path:
    photos = raw / "bach18" / "ICIAR2018_BACH_Challenge" / "Photos"
    yy, xx = np.mgrid[0:1536, 0:2048]
    truth = []
    for c, (name, prefix) in enumerate(PREFIX.items()):
        (photos / name).mkdir(parents=True)
        for j in range(per_class):
            pixels = np.stack([xx % 251, yy % 241, np.full_like(xx, 40 * c + j)], axis=2).astype(np.uint8)
            Image.fromarray(pixels).save(photos / name / f"{prefix}{j + 1:03d}.tif")
            truth.append(f"{prefix}{j + 1:03d}.tif,{name}")
    (photos / "microscopy_ground_truth.csv").write_text("\n".join(truth) + "\n")
    return photos


def test_twelve_tiles_per_photo_classes_and_photo_groups(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    photos = make_raw(tmp_path)
    (photos / "Benign" / "Thumbs.db").write_bytes(b"junk")
    caplog.set_level(logging.WARNING, "dpbench.convert")
    conv = converter_for(TASK, tmp_path)
    samples = conv.samples()
    assert len(samples) == 8 * 12
    assert {s.label for s in samples} == {0, 1, 2, 3}
    assert all(s.coords is not None and s.coords[2:] == (512, 512) for s in samples)
    b001 = [s for s in samples if s.source.endswith("Benign/b001.tif")]
    grid = [(x, y) for x in (0, 512, 1024, 1536) for y in (0, 512, 1024)]
    assert sorted(s.coords[:2] for s in b001 if s.coords) == grid
    assert {s.group for s in b001} == {"b001"} and {s.label for s in b001} == {TASK.class_names.index("Benign")}
    assert conv.skipped == {"not a TIFF photo": 1}
    assert "patient leakage possible" in caplog.text
    tile = next(s for s in b001 if s.coords == (1024, 512, 512, 512))
    decoded = np.asarray(Image.open(io.BytesIO(conv.image(tile))))
    original = np.asarray(Image.open(photos / "Benign" / "b001.tif"))
    assert (decoded == original[512:1024, 1024:1536]).all()
    assert all(s.um_per_px == 0.42 for s in samples)


def test_patients_file_groups_all_tiles_of_a_patient(tmp_path: Path) -> None:
    photos = make_raw(tmp_path)
    rows = ["Image,Patient"] + [f"{p}{j:03d}.tif,{7 if j == 1 else 9}" for p in PREFIX.values() for j in (1, 2)]
    (tmp_path / "bach18" / "patients.csv").write_text("\n".join(rows) + "\n")
    samples = converter_for(TASK, tmp_path).samples()
    assert {s.group for s in samples} == {"patient-7", "patient-9"}
    assert {s.group for s in samples if "/b001" in s.source} == {"patient-7"}
    (tmp_path / "bach18" / "patients.csv").write_text("\n".join(rows[:-1]) + "\n")
    with pytest.raises(RawDataError, match="iv002"):
        converter_for(TASK, tmp_path).samples()
    (tmp_path / "bach18" / "patients.csv").write_text("photo;id\nb001;1\n")
    with pytest.raises(RawDataError, match="'image' and 'patient'"):
        converter_for(TASK, tmp_path).samples()
    assert photos.is_dir()


def test_ground_truth_disagreement_and_unknown_folder(tmp_path: Path) -> None:
    photos = make_raw(tmp_path, per_class=1)
    (photos / "microscopy_ground_truth.csv").write_text("n001.tif,Normal\nb001.tif,Invasive\n")
    with pytest.raises(RawDataError, match=r"b001\.tif is in folder Benign"):
        converter_for(TASK, tmp_path).samples()
    (photos / "microscopy_ground_truth.csv").unlink()
    (photos / "Malignant").mkdir()
    with pytest.raises(RawDataError, match="Malignant"):
        converter_for(TASK, tmp_path).samples()


def test_corrupt_photo_names_the_file(tmp_path: Path) -> None:
    photos = make_raw(tmp_path, per_class=1)
    (photos / "InSitu" / "is001.tif").write_bytes(b"not a tiff")
    with pytest.raises(RawDataError, match=r"is001\.tif"):
        converter_for(TASK, tmp_path).samples()


def test_build_from_raw_is_not_redistributable(tmp_path: Path) -> None:
    make_raw(tmp_path / "raw", per_class=3)
    report = build_pool(get_pool("mormont2020"), tmp_path / "out", ["Bach18Micro"],
                        BuildOptions(shard_size=32, workers=1, raw=tmp_path / "raw"))
    entry = report.tasks[0].entry
    assert entry.name == "Bach18Micro" and not entry.redistributable
    assert sum(s.images for s in entry.splits.values()) == 12 * 12
    assert sum(s.groups for s in entry.splits.values()) == 12  # the 12 tiles of a photo share one group
