"""Whole-slide helpers: OpenSlide reading (a real Aperio SVS), thumbnails, tissue detection, ASAP XML."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from dpbench.convert import RawDataError
from dpbench.convert import slides as slides_module
from dpbench.convert.slides import (
    SlideCache,
    open_slide,
    otsu_threshold,
    parse_asap_xml,
    rasterise,
    read_tile,
    slide_mpp,
    thumbnail,
    tissue_mask,
    to_rgb,
)
from tests.conftest import REALDATA

SVS = REALDATA / "openslide_skimage_sources" / "he" / "cmu_small_region.svs"


def write_pyramid(path: Path, pixels: np.ndarray, mpp: float = 0.243, levels: tuple[int, ...] = (4, 16)) -> Path:
    """A tiled pyramidal TIFF that OpenSlide opens as generic-tiff (level 0 plus reduced levels)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tifffile.TiffWriter(path) as writer:
        writer.write(pixels, tile=(256, 256), photometric="rgb", resolution=(1e4 / mpp, 1e4 / mpp),
                     resolutionunit="CENTIMETER")
        for factor in levels:
            writer.write(np.ascontiguousarray(pixels[::factor, ::factor]), tile=(64, 64), photometric="rgb",
                         subfiletype=1)
    return path


@pytest.mark.skipif(not SVS.is_file(), reason="shared realdata folder absent")
def test_real_svs_region_thumbnail_and_tissue() -> None:
    slide = open_slide(SVS)
    assert slide.dimensions == (2220, 2967)
    assert slide_mpp(slide) == pytest.approx(0.499)
    tile = read_tile(slide, SVS, 1000, 2000, 256, 256)
    assert tile.shape == (256, 256, 3) and tile.dtype == np.uint8
    coarse = thumbnail(slide, SVS, 32)
    assert coarse.shape == (93, 70, 3)  # ceil(2967/32), ceil(2220/32)
    mask = tissue_mask(coarse)
    assert 0.2 < mask.mean() < 0.8
    assert not mask[:10, :10].any()  # top-left corner is glass
    assert mask[60:90, 25:45].mean() > 0.9  # the epidermis strip in the lower middle
    # the thumbnail box-averages level 0: compare one coarse pixel with the mean of its 32x32 block
    block = read_tile(slide, SVS, 32 * 40, 32 * 70, 32, 32).reshape(-1, 3).mean(0)
    assert np.abs(coarse[70, 40].astype(float) - block).max() <= 2
    with pytest.raises(RawDataError, match="outside"):
        read_tile(slide, SVS, 2000, 2900, 256, 256)
    slide.close()


def test_thumbnail_strips_match_one_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    yy, xx = np.mgrid[0:1100, 0:1500]
    pixels = np.stack([xx * 255 // 1500, yy * 255 // 1100, (xx + yy) * 255 // 2600], axis=2).astype(np.uint8)
    path = write_pyramid(tmp_path / "s.tif", pixels)
    slide = open_slide(path)
    assert slide.level_count == 3
    whole = thumbnail(slide, path, 32)
    monkeypatch.setattr(slides_module, "STRIP_PIXELS", 500)  # one or two target rows per strip
    strips = thumbnail(slide, path, 32)
    assert whole.shape == strips.shape == (35, 47, 3)
    assert np.abs(whole.astype(int) - strips).max() <= 4  # within one level row of this gradient
    truth = pixels[:34 * 32, :46 * 32].reshape(34, 32, 46, 32, 3).mean(axis=(1, 3))
    assert np.abs(whole[:34, :46] - truth).max() <= 4


def test_otsu_and_tissue_mask() -> None:
    values = np.concatenate([np.full(500, 10), np.full(500, 200)]).astype(np.uint8)
    assert 10 <= otsu_threshold(values) < 200
    rgb = np.full((20, 20, 3), 245, np.uint8)
    rgb[5:15, 5:15] = (200, 90, 160)  # stained
    rgb[0:3, 0:3] = 0  # black void
    mask = tissue_mask(rgb)
    assert mask[5:15, 5:15].all() and mask.sum() == 100
    assert not tissue_mask(np.full((8, 8, 3), 250, np.uint8)).any()  # blank glass: the floor wins over Otsu


def test_transparent_pixels_are_white() -> None:
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[0, 0] = (10, 20, 30, 255)
    rgb = to_rgb(Image.fromarray(rgba, "RGBA"))
    assert tuple(rgb[0, 0]) == (10, 20, 30) and tuple(rgb[1, 1]) == (255, 255, 255)


def test_asap_xml_parsing_and_rasterising() -> None:
    xml = b"""<?xml version="1.0"?><ASAP_Annotations><Annotations>
      <Annotation Name="A" Type="Polygon" PartOfGroup="_0"><Coordinates>
        <Coordinate Order="2" X="100" Y="100"/><Coordinate Order="0" X="0" Y="0"/>
        <Coordinate Order="1" X="100,0" Y="0"/><Coordinate Order="3" X="0" Y="100"/>
      </Coordinates></Annotation>
      <Annotation Name="B" Type="Polygon" PartOfGroup="_2"><Coordinates>
        <Coordinate Order="0" X="0" Y="0"/><Coordinate Order="1" X="48" Y="0"/>
        <Coordinate Order="2" X="48" Y="100"/><Coordinate Order="3" X="0" Y="100"/>
      </Coordinates></Annotation></Annotations></ASAP_Annotations>"""
    notes = parse_asap_xml(xml, "t.xml")
    assert [(n.name, n.group) for n in notes] == [("A", "_0"), ("B", "_2")]
    assert notes[0].points.tolist() == [[0, 0], [100, 0], [100, 100], [0, 100]]  # sorted by Order
    mask = rasterise([notes[0].points], [notes[1].points], 10, 10, 0.1)
    assert mask[:, 6:].all() and not mask[:, :4].any()  # the hole clears the left half
    with pytest.raises(RawDataError, match=r"bad\.xml"):
        parse_asap_xml(b"<ASAP_Annotations><Annotation>", "bad.xml")
    with pytest.raises(RawDataError, match="not an ASAP"):
        parse_asap_xml(b"<Other/>", "o.xml")
    with pytest.raises(RawDataError, match=r"c\.xml"):
        parse_asap_xml(b'<ASAP_Annotations><Annotation><Coordinate X="a" Y="1"/></Annotation></ASAP_Annotations>',
                       "c.xml")


def test_corrupt_and_missing_slides_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tif"
    bad.write_bytes(b"II*\x00garbage" * 10)
    with pytest.raises(RawDataError, match=r"bad\.tif"):
        open_slide(bad)
    with pytest.raises(RawDataError, match="missing slide"):
        open_slide(tmp_path / "absent.tif")


def test_slide_cache_closes_the_oldest(tmp_path: Path) -> None:
    paths = [write_pyramid(tmp_path / f"s{i}.tif", np.full((300, 300, 3), i * 40, np.uint8), levels=())
             for i in range(3)]
    cache = SlideCache(size=2)
    first = cache.get(paths[0])
    assert cache.get(paths[0]) is first
    cache.get(paths[1])
    cache.get(paths[2])
    assert cache.get(paths[0]) is not first  # reopened after eviction
    cache.close()
