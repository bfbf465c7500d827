"""A built pool opened as a Hugging Face dataset: same rows, order, labels and pixels as the webdataset loader."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import datasets
import huggingface_hub.constants
import numpy as np
import pytest
from conftest import SMALL_TASKS

from dpbench.errors import DpbenchError
from dpbench.pool import BuiltPool
from dpbench.pool.hf import PROVENANCE, _row, hf_dataset
from dpbench.pool.manifest import MANIFEST


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test here may need the network: the Hub clients are switched to offline mode."""
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


def reference(root: Path, task: str, split: str) -> list[tuple[np.ndarray, int, dict[str, Any]]]:
    """(pixels, label, record) of each sample through the webdataset loader, in its (shard) order."""
    return [(np.asarray(image), label, meta) for image, label, meta in BuiltPool(root).dataset(task, split)]


def row_of(row: dict[str, Any]) -> tuple[np.ndarray, int, dict[str, Any]]:
    return np.asarray(row["image"].convert("RGB")), row["label"], {k: v for k, v in row.items() if k != "image"}


def assert_same_rows(rows: list[dict[str, Any]], expected: list[tuple[np.ndarray, int, dict[str, Any]]]) -> None:
    assert [r["key"] for r in rows] == [meta["key"] for _, _, meta in expected]
    for row, (pixels, label, meta) in zip(rows, expected, strict=True):
        got_pixels, got_label, fields = row_of(row)
        assert got_label == label == meta["label"]
        assert np.array_equal(got_pixels, pixels)
        assert fields["group"] == meta["group"]
        assert {k: fields[k] for k in PROVENANCE} == {k: meta.get(k) for k in PROVENANCE}


@pytest.mark.parametrize(("task", "split"), [(SMALL_TASKS[0], "train"), (SMALL_TASKS[2], "val")])
def test_map_style_dataset_matches_the_manifest_and_the_webdataset_loader(
        small_pool: Path, tmp_path: Path, task: str, split: str) -> None:
    pool = BuiltPool(small_pool)
    ds = pool.hf_dataset(task, split, cache_dir=tmp_path / "cache")
    assert isinstance(ds, datasets.Dataset)
    entry = pool.task(task)
    assert len(ds) == entry.splits[split].images == sum(s.count for s in pool.manifest.shards_of(task, split))
    assert ds.features["label"].names == entry.classes
    assert set(ds.column_names) == {"image", "label", "key", "group", *PROVENANCE}
    expected = reference(small_pool, task, split)
    assert_same_rows(list(ds), expected)
    assert ds[0]["coords"] is not None and len(ds[0]["coords"]) == 4 and ds[0]["source_id"]
    assert any(f.is_file() for f in (tmp_path / "cache").rglob("*.arrow"))  # generated where it was asked


def test_streaming_yields_the_same_rows(small_pool: Path, tmp_path: Path) -> None:
    task = SMALL_TASKS[1]
    stream = hf_dataset(small_pool, task, "train", streaming=True)
    assert isinstance(stream, datasets.IterableDataset)
    assert stream.features is not None and stream.features["label"].names == BuiltPool(small_pool).task(task).classes
    rows = list(stream)
    assert_same_rows(rows, reference(small_pool, task, "train"))
    mapped = hf_dataset(small_pool, task, "train", cache_dir=tmp_path / "cache")
    assert [r["key"] for r in rows] == mapped["key"] and [r["label"] for r in rows] == mapped["label"]


def test_the_cache_follows_the_shard_bytes(small_pool: Path, tmp_path: Path) -> None:
    """Same paths, other shard contents (a rebuild): the dataset is regenerated, never served stale."""
    root = tmp_path / "pool"
    shutil.copytree(small_pool, root)
    task, cache = SMALL_TASKS[2], tmp_path / "cache"
    before = hf_dataset(root, task, "train", cache_dir=cache)["key"]
    first, second = root / task / "train-00000.tar", root / task / "train-00001.tar"
    data = first.read_bytes()
    first.write_bytes(second.read_bytes())
    second.write_bytes(data)
    manifest = json.loads((root / MANIFEST).read_text())
    entries = [s for s in manifest["shards"] if s["path"] in (f"{task}/train-00000.tar", f"{task}/train-00001.tar")]
    for field in ("sha256", "count", "bytes"):
        entries[0][field], entries[1][field] = entries[1][field], entries[0][field]
    (root / MANIFEST).write_text(json.dumps(manifest))
    after = hf_dataset(root, task, "train", cache_dir=cache)["key"]
    assert sorted(after) == sorted(before) and after != before
    assert after == [meta["key"] for _, _, meta in BuiltPool(root).dataset(task, "train")]


def test_bad_task_or_split_is_one_clear_error(small_pool: Path, tmp_path: Path) -> None:
    with pytest.raises(DpbenchError, match="not in this build"):
        hf_dataset(small_pool, "synthetic-Nope", "train", cache_dir=tmp_path)
    with pytest.raises(DpbenchError, match="unknown split 'training'"):
        BuiltPool(small_pool).hf_dataset(SMALL_TASKS[0], "training", cache_dir=tmp_path)
    with pytest.raises(DpbenchError, match=r"no manifest\.json"):
        hf_dataset(tmp_path / "nowhere", SMALL_TASKS[0], "train")


@pytest.mark.parametrize("streaming", [False, True])
def test_broken_or_missing_shards_are_one_clear_error(small_pool: Path, tmp_path: Path, streaming: bool) -> None:
    root = tmp_path / "pool"
    shutil.copytree(small_pool, root)
    task = SMALL_TASKS[0]
    shard = root / task / "train-00001.tar"
    shard.write_bytes(shard.read_bytes()[:5000])  # cut inside a member
    with pytest.raises(DpbenchError, match=r"train-00001\.tar: .*run dpbench verify"):
        list(hf_dataset(root, task, "train", streaming=streaming, cache_dir=tmp_path / "cache"))
    shard.unlink()
    with pytest.raises(DpbenchError, match=r"train-00001\.tar is missing"):
        hf_dataset(root, task, "train", streaming=streaming, cache_dir=tmp_path / "cache")


def test_a_sample_that_is_not_dpbench_s_is_refused() -> None:
    record = json.dumps({"group": "g"}).encode()
    assert _row("k", {"png": b"x", "cls": b"1", "json": record}, "s.tar", 2)["label"] == 1
    with pytest.raises(DpbenchError, match="lacks its image"):
        _row("k", {"cls": b"1", "json": record}, "s.tar", 2)
    with pytest.raises(DpbenchError, match="label 2"):
        _row("k", {"png": b"x", "cls": b"2", "json": record}, "s.tar", 2)
    with pytest.raises(DpbenchError, match="unreadable"):
        _row("k", {"png": b"x", "cls": b"one", "json": record}, "s.tar", 2)
