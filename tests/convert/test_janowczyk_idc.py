"""Janowczyk 6 (IDC) converter on a tiny raw tree in the ``IDC_regular_ps50_idx5.zip`` layout, and with the
tutorial's real case lists (``fixtures/janowczyk_idc/``: ``DL tutorial Code/6-idc/cases_{train,val,test}.txt`` of
GitHub choosehappy/public at commit 8560e48b)."""

from __future__ import annotations

import io
import json
import logging
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dpbench.build import BuildOptions, build_pool, split_task
from dpbench.convert import RawDataError, converter_for
from dpbench.tasks.registry import get_pool, get_task

TASK = get_task("Janowczyk6")
FIXTURES = Path(__file__).parent / "fixtures" / "janowczyk_idc"
PATIENTS = ("8863", "8864", "9036", "10253", "12626", "16896")
LISTS = {"train": ("8863", "8864"), "val": ("9036",), "test": ("10253", "12626")}  # 16896 is unlisted


def patch(folder: Path, pid: str, x: int, y: int, cls: int, size: tuple[int, int] = (50, 50)) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(x * 7 + y)
    path = folder / f"{pid}_idx5_x{x}_y{y}_class{cls}.png"
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


def make_raw(raw: Path, nested: bool = False, lists: bool = True) -> Path:
    root = raw / "janowczyk_idc"
    base = root / "IDC_regular_ps50_idx5" if nested else root
    for i, pid in enumerate(PATIENTS):
        for j in range(2):
            patch(base / pid / "0", pid, 51 + 50 * j, 1001 + i, 0)
        patch(base / pid / "1", pid, 1501, 2001 + i, 1)
    if lists:
        for split, ids in LISTS.items():
            (root / f"cases_{split}.txt").write_text("\n".join(ids) + "\n\n")
    return base


def test_labels_groups_and_official_splits(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    base = make_raw(tmp_path)
    patch(base / "8863" / "1", "8863", 2451, 3001, 1, size=(50, 32))  # a border patch: kept as it is
    (base / "8863" / "0" / "Thumbs.db").write_bytes(b"junk")
    (base / "__MACOSX").mkdir()
    (base / "._8863").write_bytes(b"x")
    with caplog.at_level(logging.INFO, logger="dpbench.convert"):
        conv = converter_for(TASK, tmp_path)
        samples = conv.samples()
    assert len(samples) == 6 * 3 + 1
    assert {s.group for s in samples} == set(PATIENTS)
    assert all(s.label == int(s.key[-1]) and s.source.split("/")[1] == str(s.label) for s in samples)
    assert all(s.key.startswith(s.group + "_idx5_") and s.coords is None for s in samples)
    pinned = {s.group: s.split for s in samples}
    assert pinned == {"8863": "train", "8864": "train", "9036": "val", "10253": "test", "12626": "test",
                      "16896": "train"}
    assert conv.skipped == {"not a PNG patch": 1, "folder name is not a patient id": 1}
    assert "1 patient folder(s) are in none of the case lists" in caplog.text
    small = next(s for s in samples if s.key == "8863_idx5_x2451_y3001_class1")
    assert Image.open(io.BytesIO(conv.image(small))).size == (50, 32)
    split = split_task(TASK, samples)
    assert {g for g, s in split.groups.items() if s == "test"} == set(LISTS["test"])
    assert {g for g, s in split.groups.items() if s == "val"} == set(LISTS["val"])


def test_without_case_lists_the_grouped_split_is_used(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    make_raw(tmp_path, nested=True, lists=False)
    with caplog.at_level(logging.WARNING, logger="dpbench.convert"):
        samples = converter_for(TASK, tmp_path).samples()
    assert all(s.split is None for s in samples)
    assert all(s.source.startswith("IDC_regular_ps50_idx5/") for s in samples)
    assert "no case lists" in caplog.text
    split = split_task(TASK, samples)
    for group in PATIENTS:
        assert len({split.samples[s.key] for s in samples if s.group == group}) == 1


def test_listed_patient_without_folder_is_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    make_raw(tmp_path)
    (tmp_path / "janowczyk_idc" / "cases_val.txt").write_text("9036\n99999\n")
    with caplog.at_level(logging.WARNING, logger="dpbench.convert"):
        converter_for(TASK, tmp_path).samples()
    assert "1 listed patient(s) have no folder" in caplog.text and "99999" in caplog.text


@pytest.mark.parametrize("problem", ["class mismatch", "patient mismatch", "bad name", "unknown class folder"])
def test_bad_patches_are_errors_naming_the_file(tmp_path: Path, problem: str) -> None:
    base = make_raw(tmp_path)
    if problem == "class mismatch":
        name = patch(base / "9036" / "0", "9036", 9, 9, 1).name
    elif problem == "patient mismatch":
        name = patch(base / "9036" / "1", "8863", 9, 9, 1).name
    elif problem == "bad name":
        name = "9036_x9_y9_class1.png"
        Image.new("RGB", (50, 50)).save(base / "9036" / "1" / name)
    else:
        (base / "9036" / "2").mkdir()
        name = "9036/2"
    with pytest.raises(RawDataError, match=re.escape(name)):
        converter_for(TASK, tmp_path).samples()


@pytest.mark.parametrize("problem", ["missing list", "bad line", "two lists"])
def test_bad_case_lists_are_errors(tmp_path: Path, problem: str) -> None:
    make_raw(tmp_path)
    root = tmp_path / "janowczyk_idc"
    if problem == "missing list":
        (root / "cases_val.txt").unlink()
        match = "cases_val.txt missing"
    elif problem == "bad line":
        (root / "cases_test.txt").write_text("10253\n12626.png\n")
        match = "cases_test.txt, line 2"
    else:
        (root / "cases_test.txt").write_text("10253\n12626\n9036\n")
        match = "patient 9036"
    with pytest.raises(RawDataError, match=match):
        converter_for(TASK, tmp_path).samples()


def test_build_keeps_the_official_test_set(tmp_path: Path) -> None:
    make_raw(tmp_path / "raw")
    build_pool(get_pool("mormont2020"), tmp_path / "out", ["Janowczyk6"],
               BuildOptions(shard_size=8, workers=1, raw=tmp_path / "raw"))
    split = json.loads((tmp_path / "out" / "Janowczyk6" / "split.json").read_text())
    assert split["groups"] == {"8863": "train", "8864": "train", "9036": "val", "10253": "test",
                               "12626": "test", "16896": "train"}


def test_fetched_case_lists_in_archives_are_read(tmp_path: Path) -> None:
    make_raw(tmp_path, nested=True)
    root = tmp_path / "janowczyk_idc"
    (root / ".archives").mkdir()
    for split in LISTS:
        (root / f"cases_{split}.txt").rename(root / ".archives" / f"cases_{split}.txt")
    samples = converter_for(TASK, tmp_path).samples()
    assert {s.group: s.split for s in samples}["9036"] == "val"


def make_real_raw(raw: Path) -> Path:
    """A folder for every patient of the real case lists (two 2x2 stand-in patches each) and the lists."""
    root = raw / "janowczyk_idc"
    png = io.BytesIO()
    Image.new("RGB", (2, 2), (230, 180, 210)).save(png, format="PNG")
    for split in ("train", "val", "test"):
        text = (FIXTURES / f"cases_{split}.txt").read_text()
        (root / f"cases_{split}.txt").parent.mkdir(parents=True, exist_ok=True)
        (root / f"cases_{split}.txt").write_text(text)
        for pid in text.split():
            for cls in (0, 1):
                (root / pid / str(cls)).mkdir(parents=True, exist_ok=True)
                (root / pid / str(cls) / f"{pid}_idx5_x51_y101_class{cls}.png").write_bytes(png.getvalue())
    return root


def test_real_case_lists_pin_the_tutorials_split(tmp_path: Path) -> None:
    make_real_raw(tmp_path)
    lists = {s: (FIXTURES / f"cases_{s}.txt").read_text().split() for s in ("train", "val", "test")}
    assert {s: len(ids) for s, ids in lists.items()} == {"train": 84, "val": 29, "test": 49}
    samples = converter_for(TASK, tmp_path).samples()
    assert len(samples) == 2 * 162
    pinned = {s.group: s.split for s in samples}
    assert pinned == {pid: split for split, ids in lists.items() for pid in ids}
    split = split_task(TASK, samples)
    assert split.counts() == {"train": (168, 84), "val": (58, 29), "test": (98, 49)}
