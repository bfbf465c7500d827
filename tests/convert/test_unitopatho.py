"""UniToPatho converter on a tiny 800/ subset: class folders of PNG crops plus train.csv and test.csv."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dpbench.build import BuildOptions, build_pool
from dpbench.convert import RawDataError, converter_for
from dpbench.convert.sources.unitopatho import UniToPatho, image_key
from dpbench.tasks.registry import get_pool, get_task

TASK = get_task("UniToPatho")
HEADER = ["image_id", "roi", "wsi", "mpp", "x", "y", "w", "h", "top_label_name", "top_label"]


def crop_name(wsi: str, label: str, i: int) -> str:
    return f"{wsi}-{label.replace('.', '')}.ndpi_ROI__mpp0.44_reg00{i}_crop_sk0000{i}_({i * 1812},0,1812,1812).png"


def make_raw(raw: Path, wrapped: bool = False, size: int = 24) -> Path:
    """Two slides per class in train.csv, one in test.csv, two crops per slide."""
    base = raw / "unitopatho" / ("unitopath-public/800" if wrapped else "800")
    rng = np.random.default_rng(0)
    tables: dict[str, list[list[object]]] = {"train.csv": [], "test.csv": []}
    for k, label in enumerate(TASK.class_names):
        (base / label).mkdir(parents=True)
        for s, table in enumerate(("train.csv", "train.csv", "test.csv")):
            wsi = f"{100 + 3 * k + s}-B{s}"
            for i in range(2):
                name = crop_name(wsi, label, i)
                Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(base / label / name)
                tables[table].append([name, "roi", wsi, 0.4415, i * 1812, 0, 1812, 1812, label, k])
    for table, rows in tables.items():
        with open(base / table, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(HEADER)
            writer.writerows(rows)
    return base


def test_labels_official_test_slide_groups_and_resize(tmp_path: Path) -> None:
    base = make_raw(tmp_path, wrapped=True)
    Image.new("RGB", (24, 24)).save(base / "HP" / "stray.png")
    conv = converter_for(TASK, tmp_path)
    samples = conv.samples()
    assert len(samples) == 6 * 6
    assert conv.skipped == {"not listed in train.csv or test.csv": 1}
    for sample in samples:
        label = TASK.class_names[sample.label]
        assert sample.source.startswith(f"800/{label}/") and label.replace(".", "") in sample.source
        assert "." not in sample.key and "(" not in sample.key
    test = [s for s in samples if s.split == "test"]
    assert len(test) == 12 and {s.group for s in test} == {f"{102 + 3 * k}-B2" for k in range(6)}
    assert all(s.split is None for s in samples if s not in test)
    decoded = np.asarray(Image.open(io.BytesIO(conv.image(samples[0]))))
    assert decoded.shape == (906, 906, 3)


def test_image_keys_are_safe_and_unique() -> None:
    assert image_key("plain_name-1.png") == "plain_name-1"
    a, b = image_key("a.b(1,2).png"), image_key("a_b_1_2_.png")
    assert a != b and a.startswith("a_b_1_2_-")


@pytest.mark.parametrize("damage, match", [
    ("unknown_folder", "unknown class folder .*TA.XX"),
    ("bad_label", r"train.csv line 3: malformed row .*'ADENOMA'"),
    ("no_wsi", r"test.csv line 2: malformed row .*wsi ''"),
    ("missing_image", r"missing raw file .*listed on .*train.csv line 2"),
    ("no_column", "train.csv lacks column.*wsi"),
])
def test_bad_raw_input_is_an_error_naming_the_file(tmp_path: Path, damage: str, match: str) -> None:
    base = make_raw(tmp_path, size=8)
    if damage == "unknown_folder":
        (base / "TA.XX").mkdir()
    elif damage == "missing_image":
        next(iter(sorted((base / "HP").iterdir()))).unlink()
    else:
        table = base / ("test.csv" if damage == "no_wsi" else "train.csv")
        rows = list(csv.reader(table.open()))
        if damage == "bad_label":
            rows[2][8] = "ADENOMA"
        elif damage == "no_wsi":
            rows[1][2] = ""
        else:
            rows = [[c for j, c in enumerate(r) if j != 2] for r in rows]
        with open(table, "w", newline="") as handle:
            csv.writer(handle).writerows(rows)
    with pytest.raises(RawDataError, match=match):
        converter_for(TASK, tmp_path).samples()


def test_build_pins_test_and_carves_val_by_slide(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(UniToPatho, "resize_to", 16)  # encoding 906 px crops is the slow part, not under test
    make_raw(tmp_path / "raw", size=8)
    report = build_pool(get_pool("public2026"), tmp_path / "out", ["UniToPatho"],
                        BuildOptions(shard_size=64, workers=1, raw=tmp_path / "raw"))
    splits = report.tasks[0].entry.splits
    assert (splits["test"].images, splits["test"].groups) == (12, 6)
    assert splits["train"].images + splits["val"].images == 24 and splits["val"].groups > 0
