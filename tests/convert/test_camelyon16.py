"""Camelyon16 converter on tiny pyramidal-TIFF slides with ASAP XML outlines, in the challenge layout."""

from __future__ import annotations

import io
import logging
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dpbench.build import BuildOptions, build_pool
from dpbench.convert import RawDataError, converter_for
from dpbench.convert.slides import open_slide
from dpbench.convert.sources.camelyon16 import Camelyon16
from dpbench.tasks.registry import get_pool, get_task
from tests.convert.test_slides import write_pyramid

TASK = get_task("Camelyon16")
T = 768
TISSUE = (205, 110, 170)
GLASS = (242, 242, 240)


def slide_pixels(cols: int, rows: int, glass: list[tuple[int, int]], seed: int) -> np.ndarray:
    """A cols x rows tile slide of stained tissue (with texture), the listed (col, row) tiles being glass."""
    rng = np.random.default_rng(seed)
    pixels = np.empty((rows * T, cols * T, 3), np.uint8)
    pixels[:] = TISSUE
    pixels += rng.integers(0, 30, pixels.shape, dtype=np.uint8)
    for col, row in glass:
        pixels[row * T:(row + 1) * T, col * T:(col + 1) * T] = GLASS
    return pixels


def rect(x0: float, y0: float, x1: float, y1: float) -> list[tuple[float, float]]:
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]


def asap(annotations: list[tuple[str, str, list[tuple[float, float]]]]) -> bytes:
    parts = []
    for name, group, points in annotations:
        coords = "".join(f'<Coordinate Order="{i}" X="{x}" Y="{y}"/>' for i, (x, y) in enumerate(points))
        parts.append(f'<Annotation Name="{name}" Type="Polygon" PartOfGroup="{group}" Color="#F4FA58">'
                     f"<Coordinates>{coords}</Coordinates></Annotation>")
    return (f'<?xml version="1.0"?><ASAP_Annotations><Annotations>{"".join(parts)}</Annotations>'
            "<AnnotationGroups/></ASAP_Annotations>").encode()


#: tumor_001 outlines (4x3 tiles): tile (0,0) fully tumour, (1,0) a 2 % sliver, (2,0) full but a _2 hole
#: leaves ~3 %, (3,0) 30 %, and the glass tile (3,2) fully outlined (a tumour tile is never background).
TUMOUR_OUTLINES = [
    ("A", "Tumor", rect(0, 0, T, T)),
    ("B", "_0", rect(T, 0, 2 * T, 16)),
    ("C", "_1", rect(2 * T, 0, 3 * T, T)),
    ("D", "_2", rect(2 * T - 10, -10, 3 * T + 10, T - 24)),
    ("E", "_0", rect(3 * T, 0, 4 * T, 0.3 * T)),
    ("F", "Tumor", rect(3 * T, 2 * T, 4 * T, 3 * T)),
]


def make_raw(raw: Path, zipped: bool = False) -> Path:
    base = raw / "camelyon16"
    training = base / "training"
    write_pyramid(training / "normal" / "normal_001.tif", slide_pixels(4, 3, [(0, 0), (0, 1), (0, 2)], 1))
    write_pyramid(training / "tumor" / "tumor_001.tif", slide_pixels(4, 3, [(1, 2), (3, 2)], 2))
    write_pyramid(training / "tumor" / "tumor_002.tif", slide_pixels(2, 2, [], 3))  # no outline file
    xml = asap(TUMOUR_OUTLINES)
    if zipped:
        with zipfile.ZipFile(training / "lesion_annotations.zip", "w") as zf:
            zf.writestr("lesion_annotations/tumor_001.xml", xml)
    else:
        (training / "lesion_annotations").mkdir()
        (training / "lesion_annotations" / "tumor_001.xml").write_bytes(xml)
    return base


def by_key(conv: Camelyon16) -> dict[str, int]:
    return {s.key: s.label for s in conv.samples()}


def test_tiles_labels_background_and_groups(tmp_path: Path) -> None:
    make_raw(tmp_path)
    conv = converter_for(TASK, tmp_path)
    assert isinstance(conv, Camelyon16)
    samples = conv.samples()
    labels = by_key(conv)
    normal = {k: v for k, v in labels.items() if k.startswith("normal_001")}
    assert len(normal) == 9 and set(normal.values()) == {0}  # the glass column is removed
    assert "normal_001_x000000_y000000" not in labels
    tumour = {k: v for k, v in labels.items() if k.startswith("tumor_001")}
    expected_tumour = {"tumor_001_x000000_y000000", "tumor_001_x002304_y000000", "tumor_001_x002304_y001536"}
    assert {k for k, v in tumour.items() if v == 1} == expected_tumour
    assert tumour["tumor_001_x000768_y000000"] == 0  # 2 % sliver: under the 10 % threshold
    assert tumour["tumor_001_x001536_y000000"] == 0  # the _2 hole clears the lesion
    assert "tumor_001_x000768_y001536" not in tumour  # glass, not outlined: background
    assert len(tumour) == 11
    assert not any(k.startswith("tumor_002") for k in labels)
    assert conv.skipped["tumour slide without a lesion annotation file"] == 1
    assert conv.skipped["background tile (under 25 % tissue)"] == 4
    assert {s.group for s in samples} == {"normal_001", "tumor_001"}
    assert all(s.coords is not None and s.coords[2:] == (T, T) and s.split is None for s in samples)
    assert samples[0].um_per_px == pytest.approx(0.486)


def test_area_threshold_is_measured_finely_near_ten_percent(tmp_path: Path) -> None:
    base = tmp_path / "camelyon16" / "training"
    write_pyramid(base / "tumor" / "tumor_009.tif", slide_pixels(3, 1, [], 4))
    (base / "lesion_annotations").mkdir(parents=True)
    (base / "normal").mkdir()
    strips = [("a", "Tumor", rect(14, 0, 14 + 0.07 * T, T)),  # 7 %: normal (read as 12.5 % on the 1/32 mask)
              ("b", "Tumor", rect(T + 5, 0, T + 5 + 0.12 * T, T)),  # 12 %: tumour
              ("c", "Tumor", rect(2 * T + 3, 0, 2 * T + 3 + 0.095 * T, T))]  # 9.5 %: normal
    (base / "lesion_annotations" / "tumor_009.xml").write_bytes(asap(strips))
    labels = by_key(converter_for(TASK, tmp_path))  # type: ignore[arg-type]
    assert labels == {"tumor_009_x000000_y000000": 0, "tumor_009_x000768_y000000": 1,
                      "tumor_009_x001536_y000000": 0}


def test_tile_pixels_are_the_resized_region(tmp_path: Path) -> None:
    base = make_raw(tmp_path)
    conv = converter_for(TASK, tmp_path)
    sample = next(s for s in conv.samples() if s.key == "tumor_001_x002304_y000768")
    conv.prepare([sample])
    encoded = conv.image(sample)
    decoded = np.asarray(Image.open(io.BytesIO(encoded)))
    assert decoded.shape == (384, 384, 3)
    region = np.asarray(open_slide(base / "training/tumor/tumor_001.tif").read_region((2304, 768), 0, (T, T)))[..., :3]
    expected = np.asarray(Image.fromarray(region).resize((384, 384), Image.Resampling.LANCZOS))
    assert (decoded == expected).all()
    again = converter_for(TASK, tmp_path)
    assert again.samples() == conv.samples() and again.image(sample) == encoded  # deterministic bytes

    def no_whole_slide(rel: str) -> np.ndarray:
        raise AssertionError("whole slide decoded")

    conv.read = no_whole_slide  # type: ignore[method-assign]
    conv.prepare(conv.samples()[:3])
    assert all(conv.image(s) for s in conv.samples()[:3])


def test_per_slide_cap_is_seeded_and_order_free(tmp_path: Path) -> None:
    base = make_raw(tmp_path)
    capped = Camelyon16(TASK, base, max_per_class=2).samples()
    for slide in ("normal_001", "tumor_001"):
        for label in (0, 1):
            assert len([s for s in capped if s.group == slide and s.label == label]) <= 2
    assert len(capped) == 2 + 2 + 2
    assert Camelyon16(TASK, base, max_per_class=2).samples() == capped
    (base / "training/normal/normal_001.tif").unlink()  # another slide's presence does not change the draw
    alone = Camelyon16(TASK, base, max_per_class=2).samples()
    assert alone == [s for s in capped if s.group == "tumor_001"]


def test_zipped_outlines_and_official_test(tmp_path: Path) -> None:
    base = make_raw(tmp_path, zipped=True)
    testing = base / "testing"
    write_pyramid(testing / "images" / "test_001.tif", slide_pixels(2, 1, [], 4))
    write_pyramid(testing / "images" / "test_002.tif", slide_pixels(2, 1, [], 5))
    (testing / "reference.csv").write_text("Test_001,Tumor,Macro,Annotated\nTest_002,Normal,,\n")
    with zipfile.ZipFile(testing / "lesion_annotations.zip", "w") as zf:
        zf.writestr("test_001.xml", asap([("T", "Tumor", rect(0, 0, T, T))]))
    default = converter_for(TASK, tmp_path).samples()
    assert {s.group for s in default} == {"normal_001", "tumor_001"}  # the paper used training slides only
    assert by_key(Camelyon16(TASK, base))["tumor_001_x000000_y000000"] == 1  # read from the zip
    official = Camelyon16(TASK, base, official_test=True).samples()
    test = {s.key: (s.label, s.split) for s in official if s.group.startswith("test")}
    assert test == {"test_001_x000000_y000000": (1, "test"), "test_001_x000768_y000000": (0, "test"),
                    "test_002_x000000_y000000": (0, "test"), "test_002_x000768_y000000": (0, "test")}
    (testing / "reference.csv").write_text("Test_001,Maybe,,\n")
    with pytest.raises(RawDataError, match=r"reference\.csv line 1"):
        Camelyon16(TASK, base, official_test=True).samples()


@pytest.mark.parametrize(("outline", "message"), [
    (("X", "Metastasis", rect(0, 0, 100, 100)), "unknown group 'Metastasis'"),
    (("Y", "Tumor", rect(50_000, 50_000, 50_100, 50_100)), "lies outside"),
])
def test_bad_outlines_are_errors_naming_the_file(tmp_path: Path, outline: tuple[str, str, list[tuple[float, float]]],
                                                 message: str) -> None:
    base = make_raw(tmp_path)
    (base / "training/lesion_annotations/tumor_001.xml").write_bytes(asap([outline]))
    with pytest.raises(RawDataError, match=message) as info:
        converter_for(TASK, tmp_path).samples()
    assert "tumor_001.xml" in str(info.value)


def test_corrupt_slide_and_missing_folder(tmp_path: Path) -> None:
    base = make_raw(tmp_path)
    (base / "training/normal/normal_002.tif").write_bytes(b"II*\x00" + b"\x00" * 64)
    with pytest.raises(RawDataError, match=r"normal_002\.tif"):
        converter_for(TASK, tmp_path).samples()
    empty = tmp_path / "other" / "camelyon16"
    empty.mkdir(parents=True)
    with pytest.raises(RawDataError, match="training"):
        converter_for(TASK, tmp_path / "other").samples()


def test_build_from_raw(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    make_raw(tmp_path / "raw")
    caplog.set_level(logging.WARNING, "dpbench.convert")
    report = build_pool(get_pool("mormont2020"), tmp_path / "out", ["Camelyon16"],
                        BuildOptions(shard_size=8, workers=1, raw=tmp_path / "raw"))
    entry = report.tasks[0].entry
    assert entry.name == "Camelyon16" and entry.redistributable
    assert sum(s.images for s in entry.splits.values()) == 20
    assert report.tasks[0].skipped["background tile (under 25 % tissue)"] == 4
    assert "tumour slide without a lesion annotation file" in caplog.text
