"""TUPAC16 auxiliary mitosis converter on a tiny raw tree in the challenge's layout (row, col CSVs)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dpbench.convert import RawDataError, converter_for
from dpbench.convert.points import covering_grid
from dpbench.tasks.registry import get_task
from dpbench.tasks.samples import Sample

TASK = get_task("Tupac16Mitosis")
NEG, POS = TASK.class_names.index("no_mitosis"), TASK.class_names.index("mitosis")


def write_hpf(path: Path, seed: int, side: int = 400) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 255, (side, side, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)


def write_truth(root: Path, case: str, hpf: str, text: str) -> None:
    path = root / "mitoses_ground_truth" / case / f"{hpf}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def make_raw(raw: Path) -> Path:
    root = raw / "tupac16"
    write_hpf(root / "mitoses_train_image_data_part_1" / "01" / "01.tif", 1)
    write_hpf(root / "mitoses_train_image_data_part_1" / "01" / "02.tif", 2)  # no CSV: no mitosis
    write_hpf(root / "mitoses_train_image_data_part_2" / "02" / "01.tif", 3)
    write_truth(root, "01", "01", "30,370\n")  # row 30, col 370: top-right corner
    write_truth(root, "02", "01", "200,100\n120,300\n900,10\n")  # the last one lies outside the 400 px HPF
    write_truth(root, "03", "05", "10,10\n")  # no such image
    return root


def by(samples: list[Sample], prefix: str, label: int) -> list[Sample]:
    return [s for s in samples if s.key.startswith(prefix) and s.label == label]


def test_row_col_order_counts_and_groups(tmp_path: Path) -> None:
    make_raw(tmp_path)
    conv = converter_for(TASK, tmp_path)
    samples = conv.samples()
    # 400 px HPF, 250 px tiles, 50 px overlap: starts 0 and 150 (flush with the edge) on each axis
    assert covering_grid(400, 400, 250, 50) == [(0, 0), (150, 0), (0, 150), (150, 150)]
    corner = by(samples, "01-01-", POS)
    assert len(corner) == 10
    # mitosis at x=370, y=30: every window is pushed to the top-right corner (transposed would be bottom-left)
    assert {s.coords for s in corner} == {(150, 0, 250, 250)}
    assert {s.coords[:2] for s in by(samples, "01-01-", NEG) if s.coords} == {(0, 0), (0, 150), (150, 150)}
    assert len(by(samples, "01-02-", NEG)) == 4 and not by(samples, "01-02-", POS)
    assert len(by(samples, "02-01-", POS)) == 20  # 2 mitoses in the HPF x 10 shifts
    assert {s.group for s in samples} == {"case01", "case02"}
    assert conv.skipped == {"annotation point outside its image": 1, "ground truth without a matching HPF image": 1}


def test_shifted_windows_hold_their_mitosis_and_pixels_match(tmp_path: Path) -> None:
    root = make_raw(tmp_path)
    conv = converter_for(TASK, tmp_path)
    positives = by(conv.samples(), "02-01-", POS)
    centres = [(100.0, 200.0), (300.0, 120.0)]
    for sample in positives:
        assert sample.coords is not None
        x, y, w, h = sample.coords
        assert (w, h) == (250, 250)
        assert any(x <= cx < x + w and y <= cy < y + h for cx, cy in centres)
    assert len({s.coords for s in positives}) > 2  # the shifts are random, not one repeated window
    sample = positives[0]
    assert sample.coords is not None
    x, y, w, h = sample.coords
    decoded = np.asarray(Image.open(io.BytesIO(conv.image(sample))))
    original = np.asarray(Image.open(root / sample.source))[y:y + h, x:x + w]
    assert (decoded == original).all()


def test_deterministic_and_independent_of_other_files(tmp_path: Path) -> None:
    make_raw(tmp_path / "a")
    first = converter_for(TASK, tmp_path / "a").samples()
    assert first == converter_for(TASK, tmp_path / "a").samples()
    root = make_raw(tmp_path / "b")
    (root / "mitoses_train_image_data_part_1" / "01" / "02.tif").unlink()
    second = converter_for(TASK, tmp_path / "b").samples()
    assert [s for s in first if not s.key.startswith("01-02-")] == second


@pytest.mark.parametrize("text", ["30;370\n", "row,col\n12,abc\n", "42\n"])
def test_malformed_csv_is_an_error_naming_it(tmp_path: Path, text: str) -> None:
    make_raw(tmp_path)
    write_truth(tmp_path / "tupac16", "01", "01", text)
    with pytest.raises(RawDataError, match=r"mitoses_ground_truth/01/01\.csv"):
        converter_for(TASK, tmp_path).samples()


def test_missing_layout_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "tupac16" / "mitoses_ground_truth").mkdir(parents=True)
    with pytest.raises(RawDataError, match="mitoses_train_image_data_part"):
        converter_for(TASK, tmp_path).samples()


def test_case_without_ground_truth_folder_is_skipped_not_negative(tmp_path: Path) -> None:
    root = make_raw(tmp_path)
    write_hpf(root / "mitoses_train_image_data_part_3" / "07" / "01.tif", 7)  # case 07: ground truth not extracted
    conv = converter_for(TASK, tmp_path)
    assert not [s for s in conv.samples() if s.key.startswith("07-")]
    assert conv.skipped["HPF of a case without a ground-truth folder (labels unknown)"] == 1


def test_image_zips_extracted_without_a_top_folder(tmp_path: Path) -> None:
    """The image archives' members are ``<case>/<hpf>.tif`` with no top folder: extracted side by side, the case
    folders sit in the source folder; the samples are those of the part-folder layout."""
    parted = make_raw(tmp_path / "a")
    flat = tmp_path / "b" / "tupac16"
    for image in sorted(parted.glob("mitoses_train_image_data_part_*/*/*.tif")):
        (flat / image.parent.name).mkdir(parents=True, exist_ok=True)
        (flat / image.parent.name / image.name).write_bytes(image.read_bytes())
    (flat / "mitoses_ground_truth").mkdir()
    for csv in sorted(parted.glob("mitoses_ground_truth/*/*.csv")):
        (flat / "mitoses_ground_truth" / csv.parent.name).mkdir(exist_ok=True)
        (flat / "mitoses_ground_truth" / csv.parent.name / csv.name).write_bytes(csv.read_bytes())
    expected = converter_for(TASK, tmp_path / "a").samples()
    samples = converter_for(TASK, tmp_path / "b").samples()
    assert [(s.key, s.group, s.label, s.coords) for s in samples] == [
        (s.key, s.group, s.label, s.coords) for s in expected]
    assert {s.source for s in samples} == {"01/01.tif", "01/02.tif", "02/01.tif"}
