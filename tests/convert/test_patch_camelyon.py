"""PatchCamelyon converter on tiny HDF5 files in the Zenodo layout (plain and gzipped), and the registry's md5 pins
against the download table of the dataset's own README (``fixtures/patch_camelyon/README_download_table.md``:
README.md of GitHub basveeling/pcam at commit 09702c2e)."""

from __future__ import annotations

import csv
import gzip
import io
import re
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image

from dpbench.build import BuildOptions, build_pool
from dpbench.convert import RawDataError, converter_for
from dpbench.io import TMP_MARK
from dpbench.tasks.registry import get_pool, get_task

TASK = get_task("PatchCamelyon")
SIZES = {"train": 6, "valid": 4, "test": 4}


def name(split: str, kind: str) -> str:
    return f"camelyonpatch_level_2_split_{split}_{kind}"


def make_raw(raw: Path, gz: tuple[str, ...] = (), meta: tuple[str, ...] = ("train",), fetched: bool = False) -> Path:
    """The six HDF5 files (``gz`` splits gzipped, in ``.archives/`` when ``fetched``) and ``meta`` CSVs."""
    root = raw / "patch_camelyon"
    (root / ".archives").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for split, n in SIZES.items():
        x = rng.integers(0, 255, (n, 96, 96, 3), dtype=np.uint8)
        y = (np.arange(n) % 2).astype(np.uint8).reshape(n, 1, 1, 1)
        for kind, data in (("x", x), ("y", y)):
            path = root / f"{name(split, kind)}.h5"
            with h5py.File(path, "w") as handle:
                handle.create_dataset(kind, data=data)
            if split in gz:
                packed = (root / ".archives" if fetched else root) / f"{path.name}.gz"
                packed.write_bytes(gzip.compress(path.read_bytes(), mtime=0))
                path.unlink()
        if split in meta:
            with open((root / ".archives" if fetched else root) / f"{name(split, 'meta')}.csv", "w",
                      newline="") as handle:
                writer = csv.writer(handle)
                writer.writerow(["", "coord_y", "coord_x", "tumor_patch", "center_tumor_patch", "wsi"])
                for i in range(n):
                    writer.writerow([i, 10 * i, 20 * i, "False", str(bool(i % 2)), f"camelyon16_train_{i // 2}"])
    return root


def test_official_splits_labels_groups_and_lazy_pixels(tmp_path: Path) -> None:
    root = make_raw(tmp_path, gz=("test",))
    conv = converter_for(TASK, tmp_path)
    samples = conv.samples()
    assert len(samples) == 14
    assert {s.split for s in samples if s.key.startswith("train-")} == {"train"}
    assert sum(s.split == "val" for s in samples) == 4 and sum(s.split == "test" for s in samples) == 4
    by_key = {s.key: s for s in samples}
    assert by_key["train-000003"].label == 1 and by_key["train-000002"].label == 0
    assert by_key["train-000002"].group == by_key["train-000003"].group == "camelyon16_train_1"
    assert by_key["val-000001"].group == "val-000001"  # no metadata CSV: one group per patch
    assert by_key["test-000002"].source == f"{name('test', 'x')}.h5#2"
    assert (root / f"{name('test', 'x')}.h5").is_file()  # decompressed once, next to the .gz
    assert not list(root.glob(f"*{TMP_MARK}*"))
    with h5py.File(root / f"{name('test', 'x')}.h5") as handle:
        expected = handle["x"][2]
    decoded = np.asarray(Image.open(io.BytesIO(conv.image(by_key["test-000002"]))))
    assert (decoded == expected).all()
    again = converter_for(TASK, tmp_path).samples()  # the cached .h5 is reused
    assert again == samples


def test_slide_in_two_splits_is_grouped_per_split(tmp_path: Path) -> None:
    make_raw(tmp_path, meta=("train", "valid"))
    samples = converter_for(TASK, tmp_path).samples()
    groups = {s.group for s in samples if s.key in ("train-000000", "val-000000")}
    assert groups == {"train:camelyon16_train_0", "val:camelyon16_train_0"}


@pytest.mark.parametrize("damage, match", [
    ("short_y", "holds 4 patches but its y file 3"),
    ("bad_label", "label 2 of patch 1"),
    ("bad_meta", "line 3: malformed row"),
    ("not_h5", "cannot open .*valid_x.h5 as HDF5"),
    ("missing", "missing .*test_y.h5"),
    ("bad_gz", "cannot decompress .*test_x.h5.gz"),
    ("flipped_gz", "cannot decompress .*test_x.h5.gz"),
])
def test_bad_raw_files_are_errors_naming_them(tmp_path: Path, damage: str, match: str) -> None:
    root = make_raw(tmp_path, gz=("test",) if damage.endswith("_gz") else ())
    if damage in ("short_y", "bad_label"):
        with h5py.File(root / f"{name('valid', 'y')}.h5", "w") as handle:
            handle.create_dataset("y", data=np.array([0, 1, 0], np.uint8) if damage == "short_y"
                                  else np.array([0, 2, 0, 1], np.uint8))
    elif damage == "bad_meta":
        path = root / f"{name('train', 'meta')}.csv"
        lines = path.read_text().splitlines()
        lines[2] = "1,10"
        path.write_text("\n".join(lines) + "\n")
    elif damage == "not_h5":
        (root / f"{name('valid', 'x')}.h5").write_bytes(b"not hdf5")
    elif damage == "missing":
        (root / f"{name('test', 'y')}.h5").unlink()
    elif damage == "bad_gz":
        (root / f"{name('test', 'x')}.h5.gz").write_bytes(b"\x1f\x8b truncated")
    else:  # a damaged deflate stream (zlib.error, not OSError)
        packed = root / f"{name('test', 'x')}.h5.gz"
        data = bytearray(packed.read_bytes())
        data[12] ^= 0xFF  # just after the 10-byte header: "invalid block type"
        packed.write_bytes(bytes(data))
    with pytest.raises(RawDataError, match=match):
        converter_for(TASK, tmp_path).samples()
    assert not list(root.glob(f"*{TMP_MARK}*"))


def test_build_reads_fetched_archives_and_keeps_the_official_splits(tmp_path: Path) -> None:
    root = make_raw(tmp_path / "raw", gz=("train", "valid", "test"), fetched=True)
    report = build_pool(get_pool("public2026"), tmp_path / "out", ["PatchCamelyon"],
                        BuildOptions(shard_size=8, workers=1, raw=tmp_path / "raw"))
    splits = report.tasks[0].entry.splits
    assert (splits["train"].images, splits["val"].images, splits["test"].images) == (6, 4, 4)
    assert splits["train"].groups == 3  # the metadata CSV in .archives/ was read
    assert len(list(root.glob("*.h5"))) == 6 and not list(root.glob(f"*{TMP_MARK}*"))


def test_every_download_is_pinned_to_the_readmes_md5(tmp_path: Path) -> None:
    from dpbench.transport import fetch

    table = (Path(__file__).parent / "fixtures" / "patch_camelyon" / "README_download_table.md").read_text()
    published = dict(re.findall(r"^\| `([^`]+)`\s*\|.*\|`([0-9a-f]{32})`\|$", table, re.MULTILINE))
    assert len(published) == 9
    assert {item.name: item.md5 for item in TASK.source.downloads} == published
    item = TASK.source.downloads[1]  # a download that is not the published file is refused
    (tmp_path / item.name).write_bytes(b"not the labels")
    problem, _ = fetch._problem(tmp_path / item.name, item, None)
    assert problem is not None and f"instead of the published {published[item.name]}" in problem
