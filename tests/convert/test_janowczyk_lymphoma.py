"""Janowczyk 7 (lymphoma) converter on a tiny raw tree in the ``lymphoma.tar.gz`` layout, and on the archive's 374
real image names (``fixtures/janowczyk_lymphoma/``: the tutorial's fold-1 lists ``DL tutorial Code/7-lymphoma/
models/{train,test}_w32_parent_1.txt`` of GitHub choosehappy/public at commit be2fe014) with stand-in pixels."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dpbench.build import BuildOptions, build_pool, split_task
from dpbench.convert import RawDataError, converter_for
from dpbench.convert.base import ids_across_splits
from dpbench.convert.sources.janowczyk_lymphoma import CASE, TILE, centred_grid
from dpbench.tasks.registry import get_pool, get_task
from tests.conftest import REALDATA

TASK = get_task("Janowczyk7")
REAL_HE = REALDATA / "openslide_skimage_sources" / "he" / "cmu_small_region.svs"
FIXTURES = Path(__file__).parent / "fixtures" / "janowczyk_lymphoma"
LISTS = ("train_w32_parent_1.txt", "test_w32_parent_1.txt")


def real_names() -> list[str]:
    """The 374 image paths of lymphoma.tar.gz (``CLL/sj-03-2810_001.tif``, ...)."""
    return [line.strip() for name in LISTS for line in (FIXTURES / name).read_text().splitlines() if line.strip()]


def make_real_raw(raw: Path) -> Path:
    """The archive's tree with every real image name, each a 384x384 stand-in TIFF (one tile)."""
    base = raw / "janowczyk_lymphoma"
    buffer = io.BytesIO()
    Image.new("RGB", (TILE, TILE), (190, 120, 170)).save(buffer, format="TIFF", compression="tiff_deflate")
    for name in real_names():
        (base / name).parent.mkdir(parents=True, exist_ok=True)
        (base / name).write_bytes(buffer.getvalue())
    return base


def make_raw(raw: Path, per_class: int = 4, size: tuple[int, int] = (800, 400), top: str = "") -> Path:
    base = raw / "janowczyk_lymphoma" / top if top else raw / "janowczyk_lymphoma"
    rng = np.random.default_rng(0)
    for i, name in enumerate(TASK.class_names):
        (base / name).mkdir(parents=True)
        for j in range(per_class):  # two images per case
            pixels = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
            Image.fromarray(pixels).save(base / name / f"sj-05-{i}{j // 2:03d}_{j % 2 + 1:03d}.tif")
    return base


def test_the_papers_3x2_grid_is_centred() -> None:
    corners = centred_grid(1388, 1040, 384)
    assert corners == [(118 + 384 * i, 136 + 384 * j) for j in range(2) for i in range(3)]  # 374 x 6 = 2,244
    assert centred_grid(383, 1040, 384) == []


def test_tiles_labels_and_case_groups(tmp_path: Path) -> None:
    base = make_raw(tmp_path, per_class=2, size=(800, 400))
    (base / "FL" / "notes.txt").write_text("x")
    Image.new("RGB", (300, 500)).save(base / "MCL" / "tiny.tif")
    conv = converter_for(TASK, tmp_path)
    samples = conv.samples()
    assert len(samples) == 3 * 2 * 2  # 800x400 -> 2x1 tiles of 384 px
    assert {s.coords for s in samples} == {(16, 8, 384, 384), (400, 8, 384, 384)}
    assert {(s.source.split("/")[0], s.label) for s in samples} == {("CLL", 0), ("FL", 1), ("MCL", 2)}
    assert {s.group for s in samples} == {"sj-05-0000", "sj-05-1000", "sj-05-2000"}  # both images of a case
    assert conv.skipped == {"not an image file": 1, "image smaller than one 384 px tile": 1}
    tile = next(s for s in samples if s.coords == (400, 8, 384, 384))
    decoded = np.asarray(Image.open(io.BytesIO(conv.image(tile))))
    assert (decoded == np.asarray(Image.open(base / tile.source))[8:392, 400:784]).all()


def test_tiles_of_one_image_never_straddle_splits(tmp_path: Path) -> None:
    make_raw(tmp_path, per_class=12, size=(800, 400), top="lymphoma")
    samples = converter_for(TASK, tmp_path).samples()
    assert all(s.source.startswith("lymphoma/") for s in samples)
    split = split_task(TASK, samples)
    assert len(set(split.samples.values())) == 3
    by_group: dict[str, set[str]] = {}
    for sample in samples:
        by_group.setdefault(sample.group, set()).add(split.samples[sample.key])
    assert len(by_group) == 18 and all(len(s) == 1 for s in by_group.values())


def test_real_names_keep_each_case_in_one_split(tmp_path: Path) -> None:
    names = real_names()
    assert len(names) == len(set(names)) == 374
    listed = [{CASE.search(n)["id"] for n in (FIXTURES / f).read_text().split()} for f in LISTS]  # type: ignore[index]
    assert "sj-03-2810" in listed[0] & listed[1]  # the tutorial's own folds split images, not cases
    make_real_raw(tmp_path)
    samples = converter_for(TASK, tmp_path).samples()
    assert len(samples) == 374  # one 384 px tile per stand-in image
    groups = {s.group for s in samples}
    assert len(groups) == 29 and "sj-05-6124" in groups  # 30 name prefixes, 29 accessions (-R3/-R4 together)
    split = split_task(TASK, samples)
    assert set(split.samples.values()) == {"train", "val", "test"}
    assert ids_across_splits(samples, CASE, split.samples) == {}
    by_image = [replace(s, group=s.source) for s in samples]  # the old grouping: one group per image
    assert len(ids_across_splits(by_image, CASE, split_task(TASK, by_image).samples)) == 29  # every case leaks


@pytest.mark.parametrize("problem", ["unknown", "missing"])
def test_class_folder_errors(tmp_path: Path, problem: str) -> None:
    base = make_raw(tmp_path, per_class=1)
    if problem == "unknown":
        (base / "DLBCL").mkdir()
        match = "DLBCL"
    else:
        for path in (base / "FL").iterdir():
            path.unlink()
        (base / "FL").rmdir()
        match = "lacks the class folder.*FL"
    with pytest.raises(RawDataError, match=match):
        converter_for(TASK, tmp_path).samples()


def test_build_writes_six_tiles_per_paper_sized_image(tmp_path: Path) -> None:
    base = make_raw(tmp_path / "raw", per_class=3, size=(400, 400))
    Image.new("RGB", (1388, 1040), (200, 120, 180)).save(base / "CLL" / "paper_size.tif")
    report = build_pool(get_pool("mormont2020"), tmp_path / "out", ["Janowczyk7"],
                        BuildOptions(shard_size=8, workers=1, raw=tmp_path / "raw"))
    entry = report.tasks[0].entry
    assert sum(s.images for s in entry.splits.values()) == 9 + 6
    assert report.tasks[0].skipped == {}

@pytest.mark.skipif(not REAL_HE.is_file(), reason="shared/realdata is absent")
def test_real_he_region_as_a_lymphoma_image(tmp_path: Path) -> None:
    base = make_raw(tmp_path, per_class=1, size=(400, 400))
    (base / "FL" / "real.tif").symlink_to(REAL_HE)
    conv = converter_for(TASK, tmp_path)
    real = [s for s in conv.samples() if s.source == "FL/real.tif"]
    assert len(real) == (2220 // 384) * (2967 // 384) and {s.label for s in real} == {1}
    assert Image.open(io.BytesIO(conv.image(real[0]))).size == (384, 384)
