"""UMCM Colorectal converter on a tiny raw tree in the Zenodo archive's layout, and on the release's 5,000 real
tile names (``fixtures/umcm_colorectal/{train,test}.csv``: ``data/colorectal/`` of GitHub EvelynChee/LO2LN at
commit 0ff1584c) with stand-in pixels."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dpbench.build import BuildOptions, build_pool
from dpbench.convert import RawDataError, converter_for
from dpbench.convert.sources.umcm_colorectal import ARCHIVE_DIR, UmcmColorectal
from dpbench.pool.splits import SplitManifest
from dpbench.pool.verify import verify_pool
from dpbench.tasks.registry import get_pool, get_task
from dpbench.tasks.samples import Sample

TASK = get_task("UmcmColorectal")
FIXTURES = Path(__file__).parent / "fixtures" / "umcm_colorectal"


def real_names() -> list[str]:
    """The 5,000 tile paths of the release (``01_TUMOR/A26A_CRC-Prim-HE-05_008.tif_Row_151_Col_1.tif``, ...)."""
    names = []
    for part in ("train.csv", "test.csv"):
        with open(FIXTURES / part, newline="") as handle:
            names += [row["image"] for row in csv.DictReader(handle)]
    return names


def make_real_raw(raw: Path) -> Path:
    """The archive's tree with every real tile name, each a 4x4 stand-in TIFF."""
    base = raw / "umcm_colorectal" / ARCHIVE_DIR
    buffer = io.BytesIO()
    Image.fromarray(np.full((4, 4, 3), 200, dtype=np.uint8)).save(buffer, format="TIFF")
    for name in real_names():
        (base / name).parent.mkdir(parents=True, exist_ok=True)
        (base / name).write_bytes(buffer.getvalue())
    return base


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
    assert {s.group for s in samples} == {"CRC-Prim-HE-00", "CRC-Prim-HE-01", "CRC-Prim-HE-02"}  # by slide
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


def test_real_names_build_verify_and_keep_each_slide_in_one_split(tmp_path: Path) -> None:
    make_real_raw(tmp_path / "raw")
    conv = converter_for(TASK, tmp_path / "raw")
    samples = conv.samples()
    assert len(samples) == 5000 and len({s.key for s in samples}) == 5000
    assert all(re.fullmatch(r"[A-Za-z0-9_-]+", s.key) for s in samples)  # no "." from the inner ".tif"
    one = next(s for s in samples if s.source.endswith("01_TUMOR/A26A_CRC-Prim-HE-05_008.tif_Row_151_Col_1.tif"))
    assert (one.key, one.group, one.label) == ("TUMOR-A26A_CRC-Prim-HE-05_008-tif_Row_151_Col_1", "CRC-Prim-HE-05", 0)
    assert {s.group for s in samples} == {f"CRC-Prim-HE-{n:02d}" for n in range(1, 11)}  # the ten slides
    report = build_pool(get_pool("mormont2020"), tmp_path / "out", ["UmcmColorectal"],
                        BuildOptions(shard_size=1000, workers=1, raw=tmp_path / "raw"))
    entry = report.tasks[0].entry
    assert sum(s.images for s in entry.splits.values()) == 5000
    assert entry.splits["train"].groups + entry.splits["test"].groups == 10 and entry.splits["val"].images == 0
    checked, problems = verify_pool(tmp_path / "out")
    assert checked == len(report.tasks[0].shards) and problems == []
    split = SplitManifest.model_validate_json((tmp_path / "out" / "UmcmColorectal" / "split.json").read_bytes())
    slide_splits: dict[str, set[str]] = {}
    for sample in samples:
        slide_splits.setdefault(sample.group, set()).add(split.samples[sample.key])
    assert all(len(splits) == 1 for splits in slide_splits.values())


def test_grouping_by_tile_is_refused_as_leakage(tmp_path: Path) -> None:
    class ByTile(UmcmColorectal):  # the old behaviour: one group per tile although the names carry the slide
        def scan(self):  # type: ignore[no-untyped-def]
            for sample in super().scan():
                yield Sample(key=sample.key, group=sample.key, label=sample.label, source=sample.source)

    make_raw(tmp_path, per_class=2)
    with pytest.raises(RawDataError, match=r"slide CRC-Prim-HE-00 in 8 groups"):
        ByTile(TASK, tmp_path / "umcm_colorectal").samples()


def test_a_tile_name_without_its_slide_is_an_error(tmp_path: Path) -> None:
    base = make_raw(tmp_path, per_class=1)
    Image.new("RGB", (4, 4)).save(base / "02_STROMA" / "tile_0001.tif")
    with pytest.raises(RawDataError, match=r"tile_0001\.tif: no slide id"):
        converter_for(TASK, tmp_path).samples()
