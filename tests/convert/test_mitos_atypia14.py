"""MITOS-ATYPIA-14 converter on a tiny raw tree in the training archives' layout (two scanners)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dpbench.convert import RawDataError, converter_for
from dpbench.convert.imaging import read_rgb
from dpbench.tasks.registry import get_task
from dpbench.tasks.samples import Sample
from tests.conftest import REALDATA

TASK = get_task("MitosAtypia14")
NONE, OTHER, MITOSIS = (TASK.class_names.index(c) for c in ("no_annotation", "non_mitosis", "mitosis"))
SCANNERS = {"A": "Training Aperio", "H": "Training Hamamatsu"}


def write_frame(root: Path, frame: str, mitosis: str | None, not_mitosis: str | None, seed: int = 0) -> None:
    slide = frame.split("_")[0]
    inner = root / SCANNERS[slide[0]] / slide / slide
    (inner / "frames" / "x40").mkdir(parents=True, exist_ok=True)
    (inner / "mitosis").mkdir(exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 255, (400, 400, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(inner / "frames" / "x40" / f"{frame}.tiff")
    if mitosis is not None:
        (inner / "mitosis" / f"{frame}_mitosis.csv").write_text(mitosis)
    if not_mitosis is not None:
        (inner / "mitosis" / f"{frame}_not_mitosis.csv").write_text(not_mitosis)


def make_raw(raw: Path, hamamatsu: bool = True) -> Path:
    root = raw / "mitos_atypia14"
    write_frame(root, "A03_00Aa", "40,40,1\n360,360,0.8\n", "380,20,0.4\n", seed=1)
    if hamamatsu:
        write_frame(root, "H03_00Aa", "", "", seed=2)  # empty CSVs: nothing annotated
    write_frame(root, "A04_00Aa", "10,10,1\n", None, seed=3)  # no not_mitosis CSV: labels unknown
    write_frame(root, "A04_00Ab", "500,10,1\n", "", seed=4)  # mitosis outside the 400 px frame
    return root


def frame(samples: list[Sample], name: str, label: int) -> list[Sample]:
    return [s for s in samples if s.key.startswith(name + "-") and s.label == label]


def test_class_order_is_the_registry_one() -> None:
    assert TASK.class_names == ("no_annotation", "non_mitosis", "mitosis")


def test_supersampling_background_groups_and_skips(tmp_path: Path) -> None:
    make_raw(tmp_path)
    conv = converter_for(TASK, tmp_path)
    samples = conv.samples()
    mitoses, others = frame(samples, "A03_00Aa", MITOSIS), frame(samples, "A03_00Aa", OTHER)
    assert len(mitoses) == 20 and len(others) == 10  # 2 mitoses and 1 non-mitosis, 10 shifts each
    for sample, points in [(s, [(40, 40), (360, 360)]) for s in mitoses] + [(s, [(380, 20)]) for s in others]:
        assert sample.coords is not None
        x, y, w, h = sample.coords
        assert (w, h) == (323, 323)
        assert any(x <= px < x + w and y <= py < y + h for px, py in points)
    # 400 px frame, 323 px tiles, 64 px overlap: corners (0|77, 0|77); only (0, 77) holds no point
    assert [s.coords for s in frame(samples, "A03_00Aa", NONE)] == [(0, 77, 323, 323)]
    assert len(frame(samples, "H03_00Aa", NONE)) == 4 and len(frame(samples, "H03_00Aa", MITOSIS)) == 0
    assert len(frame(samples, "A04_00Ab", NONE)) == 4 and len(frame(samples, "A04_00Ab", MITOSIS)) == 0
    assert not [s for s in samples if s.key.startswith("A04_00Aa")]
    assert conv.skipped == {"annotation point outside its image": 1,
                            "x40 frame without both mitosis CSVs (labels unknown)": 1}
    groups = {s.key.split("-")[0]: s.group for s in samples}
    assert groups == {"A03_00Aa": "slide03", "H03_00Aa": "slide03", "A04_00Ab": "slide04"}
    assert all(s.source.startswith("Training ") and "/frames/x40/" in s.source for s in samples)


def test_shifts_do_not_depend_on_other_frames(tmp_path: Path) -> None:
    make_raw(tmp_path / "a")
    make_raw(tmp_path / "b", hamamatsu=False)
    both = converter_for(TASK, tmp_path / "a").samples()
    aperio = converter_for(TASK, tmp_path / "b").samples()
    assert [s for s in both if not s.key.startswith("H03")] == aperio


def test_non_mitosis_windows_never_show_a_mitosis(tmp_path: Path) -> None:
    root = tmp_path / "mitos_atypia14"
    write_frame(root, "A07_00Aa", "200,200,1\n", "230,200,0.5\n")  # a not-mitosis point 30 px from a mitosis
    write_frame(root, "A07_00Ab", "", "200,200,0.5\n")  # a lone not-mitosis point
    write_frame(root, "A07_00Ac", "", "")  # nothing annotated: background tiles
    conv = converter_for(TASK, tmp_path)
    samples = conv.samples()
    assert len(frame(samples, "A07_00Aa", MITOSIS)) == 10 and len(frame(samples, "A07_00Ab", OTHER)) == 10
    # Every window around the not-mitosis point also holds the mitosis (both stay inside a 323 px window
    # shifted by at most 80 px): none may be labelled non_mitosis.
    assert frame(samples, "A07_00Aa", OTHER) == []
    assert conv.skipped == {"non_mitosis window containing a point of an earlier class": 10}


def test_malformed_csv_is_an_error_naming_it(tmp_path: Path) -> None:
    root = make_raw(tmp_path)
    write_frame(root, "A05_01Ba", "12,x,1\n", "")
    with pytest.raises(RawDataError, match=r"A05_01Ba_mitosis\.csv, line 1"):
        converter_for(TASK, tmp_path).samples()


def test_unexpected_slide_folder_is_an_error(tmp_path: Path) -> None:
    root = make_raw(tmp_path)
    odd = root / "Training Aperio" / "scan7" / "scan7" / "frames" / "x40"
    odd.mkdir(parents=True)
    Image.new("RGB", (400, 400)).save(odd / "scan7_00Aa.tiff")
    with pytest.raises(RawDataError, match="scan7"):
        converter_for(TASK, tmp_path).samples()


def test_real_scanner_tiff_as_a_frame(tmp_path: Path) -> None:
    real = REALDATA / "openslide_skimage_sources" / "he" / "OS-1-detail.ome.tif"
    if not real.is_file():
        pytest.skip("shared/realdata is absent")
    pytest.importorskip("imagecodecs", reason="this real TIFF is JPEG-compressed: tifffile needs imagecodecs")
    inner = tmp_path / "mitos_atypia14" / "Training Aperio" / "A07" / "A07"
    (inner / "frames" / "x40").mkdir(parents=True)
    (inner / "mitosis").mkdir()
    (inner / "frames" / "x40" / "A07_00Aa.tiff").symlink_to(real)  # used in place, not copied
    (inner / "mitosis" / "A07_00Aa_mitosis.csv").write_text("550,540,1\n")
    (inner / "mitosis" / "A07_00Aa_not_mitosis.csv").write_text("200,200,0.5\n")
    conv = converter_for(TASK, tmp_path)
    samples = conv.samples()
    assert sum(s.label == MITOSIS for s in samples) == 10 and sum(s.label == OTHER for s in samples) == 10
    original = read_rgb(real)  # a JPEG-in-TIFF Pillow cannot decode: tifffile reads it
    width, height = original.shape[1], original.shape[0]
    assert all(s.coords is not None and s.coords[0] + 323 <= width and s.coords[1] + 323 <= height
               for s in samples)
    for sample in samples[:3]:
        assert sample.coords is not None
        x, y, w, h = sample.coords
        decoded = np.asarray(Image.open(io.BytesIO(conv.image(sample))))
        assert decoded.shape == (323, 323, 3) and (decoded == original[y:y + h, x:x + w]).all()
