"""Janowczyk use case 5 (mitosis) converter on a tiny raw tree: PP_NN.tif fields with _pc.png centre masks."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dpbench.convert import RawDataError, converter_for
from dpbench.convert.sources.janowczyk_mitosis import mask_centroids
from dpbench.tasks.registry import get_task
from dpbench.tasks.samples import Sample

TASK = get_task("Janowczyk5")
NEG, POS = TASK.class_names.index("no_mitosis"), TASK.class_names.index("mitosis")


def write_field(folder: Path, name: str, centres: list[tuple[int, int]] | None, side: int = 400,
                mask_side: int | None = None) -> None:
    """A field and (unless ``centres`` is None) its mask with a 3x3 blob at each (x, y) centre."""
    folder.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(len(name) + side).integers(0, 255, (side, side, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(folder / f"{name}.tif")
    if centres is not None:
        mask = np.zeros((mask_side or side, mask_side or side), dtype=np.uint8)
        for x, y in centres:
            mask[y - 1:y + 2, x - 1:x + 2] = 255
        Image.fromarray(mask).save(folder / f"{name}_pc.png")


def make_raw(raw: Path) -> Path:
    root = raw / "janowczyk_mitosis" / "mitoses"
    write_field(root, "01_01", [(350, 60), (60, 200)])
    write_field(root, "01_02", [])  # an empty mask: no mitosis
    write_field(root, "10_01", None)  # patient 10 has no mitosis and no mask
    (root / "thumbs.tif").write_bytes(b"not a field")
    return root


def keyed(samples: list[Sample], name: str, label: int) -> list[Sample]:
    return [s for s in samples if s.key.startswith(name + "-") and s.label == label]


def test_mask_centroids_are_x_y() -> None:
    mask = np.zeros((50, 60), dtype=bool)
    mask[10:13, 40:43] = True  # rows 10-12, columns 40-42
    mask[30:32, 5:7] = True
    mask[32, 7] = True  # touches the second blob diagonally: 8-connected, one component
    centroids = mask_centroids(mask)
    assert centroids.shape == (2, 2)
    assert centroids[0].tolist() == [41.0, 11.0]
    assert 5 <= centroids[1][0] <= 7 and 30 <= centroids[1][1] <= 32
    assert mask_centroids(np.zeros((5, 5), dtype=bool)).shape == (0, 2)


def test_supersampling_negatives_groups_and_skips(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    make_raw(tmp_path)
    conv = converter_for(TASK, tmp_path)
    with caplog.at_level(logging.WARNING, logger="dpbench.convert"):
        samples = conv.samples()
    positives = keyed(samples, "01_01", POS)
    assert len(positives) == 20  # 2 mitoses x 10 shifts
    # the mitosis at x=350, y=60 pushes its windows to the top-right corner (transposed: bottom-left)
    assert sum(s.coords == (150, 0, 250, 250) for s in positives) == 10
    # tiles (0|150, 0|150): (150, 0) holds (350, 60) and (0, 0), (0, 150) hold (60, 200)
    assert [s.coords for s in keyed(samples, "01_01", NEG)] == [(150, 150, 250, 250)]
    assert len(keyed(samples, "01_02", NEG)) == 4 and len(keyed(samples, "10_01", NEG)) == 4
    assert not keyed(samples, "10_01", POS)
    assert {s.group for s in samples} == {"patient01", "patient10"}
    assert conv.skipped == {"TIFF not named PP_NN": 1}
    assert "1 field(s) have no _pc.png mask" in caplog.text


def test_mask_of_another_size_is_an_error_naming_it(tmp_path: Path) -> None:
    root = make_raw(tmp_path)
    write_field(root, "02_01", [(100, 100)], mask_side=300)
    with pytest.raises(RawDataError, match=r"02_01_pc\.png"):
        converter_for(TASK, tmp_path).samples()


def test_corrupt_mask_is_an_error_naming_it(tmp_path: Path) -> None:
    root = make_raw(tmp_path)
    (root / "01_02_pc.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(RawDataError, match=r"01_02_pc\.png"):
        converter_for(TASK, tmp_path).samples()


def test_no_ground_truth_at_all_is_an_error(tmp_path: Path) -> None:
    root = tmp_path / "janowczyk_mitosis"
    write_field(root, "01_01", None)
    write_field(root, "02_01", None)
    with pytest.raises(RawDataError, match=r"no _pc\.png ground-truth mask"):
        converter_for(TASK, tmp_path).samples()
