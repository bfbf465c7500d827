"""Warwick CRCHistoPhenotypes converter on a tiny raw tree: BMP images and (x, y) nucleus-centre .mat files."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.io import savemat

from dpbench.build import BuildOptions, build_pool
from dpbench.convert import RawDataError, converter_for
from dpbench.tasks.registry import get_pool, get_task

TASK = get_task("WarwickCRC")
OTHER, INFLAMMATORY = TASK.class_names.index("other"), TASK.class_names.index("inflammatory")
CLASSES = ("epithelial", "fibroblast", "inflammatory", "others")


def write_image(base: Path, n: int, nuclei: dict[str, list[tuple[float, float]]] | None = None) -> None:
    """``imgN``: its BMP, the detection file and one .mat per class in ``nuclei`` (x, y rows)."""
    name = f"img{n}"
    detection, classification = base / "Detection" / name, base / "Classification" / name
    detection.mkdir(parents=True)
    classification.mkdir(parents=True)
    pixels = np.random.default_rng(n).integers(0, 255, (500, 500, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(detection / f"{name}.bmp")
    nuclei = nuclei or {}
    every = [p for points in nuclei.values() for p in points]
    savemat(detection / f"{name}_detection.mat", {"detection": np.array(every, dtype=np.float64).reshape(-1, 2)})
    for kind, points in nuclei.items():
        savemat(classification / f"{name}_{kind}.mat", {"detection": np.array(points, dtype=np.float64).reshape(-1, 2)})


def make_raw(raw: Path, extra: int = 0) -> Path:
    base = raw / "warwick_crc" / "CRCHistoPhenotypes_2016_04_28"
    write_image(base, 1, {"inflammatory": [(450.0, 50.0), (120.5, 330.2), (500.0, 250.0)],
                          "epithelial": [(50.0, 450.0), (250.0, 250.0)], "fibroblast": [], "others": [(10.0, 490.0)]})
    write_image(base, 2, {"inflammatory": [(600.0, 10.0)], "epithelial": [(30.0, 30.0)], "fibroblast": [],
                          "others": []})
    write_image(base, 3, {"epithelial": [(30.0, 30.0)]})  # no inflammatory file: labels unknown
    write_image(base, 4, {"inflammatory": [(30.0, 30.0)]})
    for path in sorted((base / "Classification" / "img4").iterdir()):
        path.unlink()
    (base / "Classification" / "img4").rmdir()  # an image with no Classification folder at all
    for n in range(10, 10 + extra):
        write_image(base, n, {kind: [(float(40 * n % 500), float(70 * n % 500))] for kind in CLASSES})
    return base


def test_tiles_labels_and_x_y_order(tmp_path: Path) -> None:
    make_raw(tmp_path)
    conv = converter_for(TASK, tmp_path)
    samples = conv.samples()
    assert len(samples) == 2 * 25
    assert all(s.coords is not None and s.coords[2:] == (100, 100) for s in samples)
    positives = {s.coords[:2] for s in samples if s.label == INFLAMMATORY and s.coords}
    # (450, 50) is column 4, row 0, never (0, 400); (120.5, 330.2) -> (100, 300); the edge point x=500 -> (400, 200)
    assert positives == {(400, 0), (100, 300), (400, 200)}
    assert all(s.group == "img1" for s in samples if s.label == INFLAMMATORY)
    assert sum(s.label == OTHER for s in samples if s.group == "img2") == 25
    assert {s.group for s in samples} == {"img1", "img2"}
    assert conv.skipped == {"annotation point outside its image": 1, "no imgN_inflammatory.mat (labels unknown)": 1,
                            "no Classification/imgN/ folder (labels unknown)": 1}
    assert all(s.source.startswith("CRCHistoPhenotypes_2016_04_28/Detection/img") for s in samples)
    tile = next(s for s in samples if s.key == "img1-y000-x400")
    decoded = np.asarray(Image.open(io.BytesIO(conv.image(tile))))
    original = np.asarray(Image.open(tmp_path / "warwick_crc" / tile.source))
    assert tile.label == INFLAMMATORY and (decoded == original[0:100, 400:500]).all()


def test_corrupt_mat_is_an_error_naming_it(tmp_path: Path) -> None:
    base = make_raw(tmp_path)
    (base / "Classification" / "img2" / "img2_inflammatory.mat").write_bytes(b"MATLAB 5.0 garbage")
    with pytest.raises(RawDataError, match=r"img2_inflammatory\.mat"):
        converter_for(TASK, tmp_path).samples()


@pytest.mark.parametrize("content", [{"points": np.zeros((2, 2))}, {"detection": np.zeros((2, 3))}])
def test_mat_without_n_by_2_detection_is_an_error(tmp_path: Path, content: dict[str, np.ndarray]) -> None:
    base = make_raw(tmp_path)
    savemat(base / "Classification" / "img1" / "img1_inflammatory.mat", content)
    with pytest.raises(RawDataError, match=r"img1_inflammatory\.mat"):
        converter_for(TASK, tmp_path).samples()


def test_unknown_folder_is_an_error(tmp_path: Path) -> None:
    base = make_raw(tmp_path)
    (base / "Classification" / "notes").mkdir()
    with pytest.raises(RawDataError, match="notes"):
        converter_for(TASK, tmp_path).samples()


def test_build_from_raw(tmp_path: Path) -> None:
    make_raw(tmp_path / "raw", extra=6)
    report = build_pool(get_pool("mormont2020"), tmp_path / "out", ["WarwickCRC"],
                        BuildOptions(shard_size=64, workers=1, raw=tmp_path / "raw"))
    (task,) = report.tasks
    assert sum(s.images for s in task.entry.splits.values()) == 8 * 25
    assert task.skipped == {"annotation point outside its image": 1, "no imgN_inflammatory.mat (labels unknown)": 1,
                            "no Classification/imgN/ folder (labels unknown)": 1}
