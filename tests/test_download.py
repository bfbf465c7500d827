"""download_pool against real HTTP mirrors on 127.0.0.1 that inject faults: drops, bad bytes, 404, slowness."""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from servers import Fault, Mirror

from dpbench.build import BuildOptions, build_pool
from dpbench.errors import DpbenchError
from dpbench.io import TMP_MARK
from dpbench.pool.manifest import MANIFEST, Manifest, load_manifest
from dpbench.pool.verify import verify_pool
from dpbench.tasks import get_pool
from dpbench.transport.download import DownloadReport, download_pool, resolve_mirrors, stream_urls
from tests.conftest import flip_shard_labels

TASKS = ["synthetic-Necrosis", "synthetic-WarwickCRC"]
SHARD = "synthetic-Necrosis/train-00000.tar"  # 337920 bytes
FAST: dict[str, Any] = {"retries": 1, "backoff": 0.01, "timeout": 5.0, "workers": 4}


@pytest.fixture(autouse=True)
def no_leftover_threads() -> Iterator[None]:
    """Every server (and its handler threads) and every download worker has stopped after each test."""
    before = set(threading.enumerate())
    yield
    left = [t for t in threading.enumerate() if t not in before and t.is_alive() and t.name != "tqdm_monitor"]
    assert not left, left


@pytest.fixture(scope="session")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A published synthetic pool; tests must not modify it."""
    root = tmp_path_factory.mktemp("published") / "pool"
    build_pool(get_pool("synthetic"), root, TASKS, BuildOptions(shard_size=32, workers=1))
    return root


@pytest.fixture(autouse=True)
def pinned(source: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, dict[str, str]]:
    """This dpbench 'release' pins the published pool's manifest, as the package's published_manifests.json does."""
    manifest = load_manifest(source)
    pins = {manifest.pool: {manifest.pool_version: hashlib.sha256((source / MANIFEST).read_bytes()).hexdigest()}}
    monkeypatch.setattr("dpbench.transport.download.published_manifests", lambda: pins)
    return pins


@pytest.fixture
def mirror(source: Path) -> Iterator[Mirror]:
    server = Mirror(source)
    yield server
    server.stop()


@pytest.fixture
def mirror2(source: Path) -> Iterator[Mirror]:
    server = Mirror(source)
    yield server
    server.stop()


def files(root: Path) -> dict[str, bytes]:
    """The pool's files (``.cache/``, a machine's own caches and build journal, is not part of a pool)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not str(p.relative_to(root)).startswith(".cache/")}


def pool_files(manifest: Manifest, tasks: list[str] = TASKS) -> set[str]:
    return {s.path for s in manifest.shards if s.task in tasks} | {f"{t}/split.json" for t in tasks}


def assert_complete(out: Path, source: Path) -> None:
    """``out`` equals the published pool byte for byte and verifies."""
    assert files(out) == files(source)
    assert verify_pool(out) == (len(load_manifest(source).shards), [])


def assert_no_partials(out: Path, source: Path) -> None:
    """Whatever sits under a final name is the published file."""
    for rel in pool_files(load_manifest(source)):
        if (out / rel).exists():
            assert (out / rel).read_bytes() == (source / rel).read_bytes(), rel


def test_clean_download_then_everything_is_reused(source: Path, mirror: Mirror, tmp_path: Path) -> None:
    seen: dict[str, tuple[int, int]] = {}
    report = download_pool(tmp_path, [mirror.url], progress=lambda n, d, t: seen.__setitem__(n, (d, t)), **FAST)
    expected = pool_files(load_manifest(source))
    assert set(report.fetched) == expected and report.reused == [] and report.failed_attempts == 0
    assert report.per_mirror() == {mirror.url: len(expected)}
    assert report.bytes_fetched >= sum(len(b) for b in files(source).values())
    assert seen[SHARD] == (337920, 337920)
    assert_complete(tmp_path, source)
    mirror.log.clear()
    again = download_pool(tmp_path, [mirror.url], **FAST)
    assert again.fetched == [] and set(again.reused) == expected
    assert [p for p, _ in mirror.log] == [MANIFEST]
    assert_complete(tmp_path, source)


def test_dropped_connection_is_resumed_with_range(source: Path, mirror: Mirror, tmp_path: Path) -> None:
    mirror.fault(SHARD, Fault("drop", times=1, after=100_000))
    report = download_pool(tmp_path, [mirror.url], **FAST)
    assert mirror.ranges(SHARD) == [None, "bytes=100000-"]
    assert report.failed_attempts == 1
    assert_complete(tmp_path, source)


def test_leftover_partial_file_is_resumed(source: Path, mirror: Mirror, tmp_path: Path) -> None:
    (tmp_path / SHARD).parent.mkdir(parents=True)
    (tmp_path / f"{SHARD}{TMP_MARK}partial").write_bytes((source / SHARD).read_bytes()[:1000])
    download_pool(tmp_path, [mirror.url], **FAST)
    assert mirror.ranges(SHARD) == ["bytes=1000-"]
    assert_complete(tmp_path, source)


def test_corrupt_leftover_partial_is_discarded(source: Path, mirror: Mirror, tmp_path: Path) -> None:
    (tmp_path / SHARD).parent.mkdir(parents=True)
    (tmp_path / f"{SHARD}{TMP_MARK}partial").write_bytes(b"x" * 1000)
    report = download_pool(tmp_path, [mirror.url], **FAST)
    assert mirror.ranges(SHARD) == ["bytes=1000-", None] and report.failed_attempts == 1
    assert_complete(tmp_path, source)


def test_server_ignoring_range_restarts_from_zero(source: Path, mirror: Mirror, tmp_path: Path) -> None:
    mirror.fault(SHARD, Fault("drop", times=1, after=100_000), Fault("ignore_range"))
    report = download_pool(tmp_path, [mirror.url], **FAST)
    assert mirror.ranges(SHARD) == [None, "bytes=100000-"]
    assert report.bytes_fetched >= sum(len(b) for b in files(source).values()) + 100_000
    assert_complete(tmp_path, source)


def test_wrong_bytes_fail_over_to_second_mirror(source: Path, mirror: Mirror, mirror2: Mirror,
                                                tmp_path: Path) -> None:
    mirror.fault(SHARD, Fault("flip"))
    report = download_pool(tmp_path, [mirror.url, mirror2.url], **FAST)
    assert len(mirror.ranges(SHARD)) == 2 and mirror2.ranges(SHARD) == [None]  # 1 + 1 retry, then failover
    assert report.mirror_of[SHARD] == mirror2.url and report.failed_attempts == 2
    assert report.per_mirror()[mirror.url] == len(pool_files(load_manifest(source))) - 1
    assert_complete(tmp_path, source)


def test_404_fails_over_without_retrying(source: Path, mirror: Mirror, mirror2: Mirror, tmp_path: Path) -> None:
    mirror.fault(SHARD, Fault("404"))
    report = download_pool(tmp_path, [mirror.url, mirror2.url], **FAST)
    assert mirror.ranges(SHARD) == [None] and mirror2.ranges(SHARD) == [None]
    assert report.mirror_of[SHARD] == mirror2.url
    assert_complete(tmp_path, source)


def test_slow_mirror_times_out_and_fails_over(source: Path, mirror: Mirror, mirror2: Mirror, tmp_path: Path) -> None:
    mirror.fault(SHARD, Fault("slow", delay=1.2))
    started = time.perf_counter()
    report = download_pool(tmp_path, [mirror.url, mirror2.url], **{**FAST, "timeout": 0.4})
    assert time.perf_counter() - started < 5
    assert len(mirror.ranges(SHARD)) == 2 and report.mirror_of[SHARD] == mirror2.url
    assert_complete(tmp_path, source)


def test_manifest_mismatch_is_one_clear_error(source: Path, mirror: Mirror, mirror2: Mirror,
                                              tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An unpinned pool version, accepted with --trust-mirror: the files must still match the manifest."""
    monkeypatch.setattr("dpbench.transport.download.published_manifests", lambda: {})
    doc = json.loads((source / MANIFEST).read_bytes())
    bad = next(s for s in doc["shards"] if s["path"] == SHARD)
    bad["sha256"] = "0" * 64
    for server in (mirror, mirror2):
        server.fault(MANIFEST, Fault("body", body=json.dumps(doc).encode()))
    out = tmp_path / "out"
    with pytest.raises(DpbenchError) as info:
        download_pool(out, [mirror.url, mirror2.url], trust_mirror=True, **FAST)
    message = str(info.value)
    assert SHARD in message and mirror.url in message and mirror2.url in message and "sha256" in message
    assert not (out / SHARD).exists() and not (out / MANIFEST).exists()
    assert not [p for p in out.rglob("*") if TMP_MARK in p.name]  # the bad temp file was deleted
    others = pool_files(load_manifest(source)) - {SHARD}
    assert all((out / rel).read_bytes() == (source / rel).read_bytes() for rel in others)
    assert_no_partials(out, source)


def test_split_json_is_verified(source: Path, mirror: Mirror, mirror2: Mirror, tmp_path: Path,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    split = "synthetic-Necrosis/split.json"
    mirror.fault(split, Fault("body", body=(source / "synthetic-WarwickCRC" / "split.json").read_bytes()))
    report = download_pool(tmp_path, [mirror.url, mirror2.url], **FAST)
    assert len(mirror.ranges(split)) == 2 and report.mirror_of[split] == mirror2.url
    assert_complete(tmp_path, source)
    mirror.faults.clear()
    text = (tmp_path / split).read_text()
    (tmp_path / split).write_text(text.replace('"train"', '"test"', 1))  # tampered: its own hash breaks
    assert download_pool(tmp_path, [mirror.url], **FAST).fetched == [split]
    assert_complete(tmp_path, source)
    doc = json.loads((source / MANIFEST).read_bytes())
    doc["tasks"][0]["split_sha256"] = "0" * 64
    mirror.fault(MANIFEST, Fault("body", body=json.dumps(doc).encode()))
    with pytest.raises(DpbenchError, match="altered the benchmark"):  # the pin refuses it first
        download_pool(tmp_path, [mirror.url], **FAST)
    monkeypatch.setattr("dpbench.transport.download.published_manifests", lambda: {})
    with pytest.raises(DpbenchError, match=f"{split}.*split_sha256"):
        download_pool(tmp_path / "other", [mirror.url], trust_mirror=True, **FAST)
    assert not (tmp_path / "other" / split).exists()


def test_mirror_file_that_never_arrives_whole(source: Path, mirror: Mirror, tmp_path: Path) -> None:
    mirror.fault(SHARD, Fault("drop", after=50_000), Fault("ignore_range"))
    with pytest.raises(DpbenchError, match="connection closed") as info:
        download_pool(tmp_path, [mirror.url], **FAST)
    assert SHARD in str(info.value) and not (tmp_path / SHARD).exists()
    assert (tmp_path / f"{SHARD}{TMP_MARK}partial").stat().st_size == 50_000  # kept for resumption
    assert_no_partials(tmp_path, source)
    mirror.faults.clear()
    download_pool(tmp_path, [mirror.url], **FAST)
    assert mirror.ranges(SHARD)[-1] == "bytes=50000-"
    assert_complete(tmp_path, source)


def test_subset_then_merge(source: Path, mirror: Mirror, tmp_path: Path) -> None:
    manifest = load_manifest(source)
    report = download_pool(tmp_path, [mirror.url], ["synthetic-WarwickCRC"], **FAST)
    wanted = pool_files(manifest, ["synthetic-WarwickCRC"])
    assert {p for p, _ in mirror.log} == wanted | {MANIFEST} and set(report.fetched) == wanted
    assert [t.name for t in load_manifest(tmp_path).tasks] == ["synthetic-WarwickCRC"]
    assert verify_pool(tmp_path)[1] == []
    second = download_pool(tmp_path, [mirror.url], ["synthetic-Necrosis"], **FAST)
    assert set(second.fetched) == pool_files(manifest, ["synthetic-Necrosis"])
    assert_complete(tmp_path, source)  # merged manifest == the published one
    (tmp_path / "synthetic-WarwickCRC" / "val-00000.tar").write_bytes(b"broken")
    third = download_pool(tmp_path, [mirror.url], ["synthetic-Necrosis"], **FAST)
    assert third.fetched == [] and [t.name for t in third.manifest.tasks] == ["synthetic-Necrosis"]
    assert verify_pool(tmp_path)[1] == []


def test_selection_errors(source: Path, mirror: Mirror, tmp_path: Path) -> None:
    with pytest.raises(DpbenchError, match=r"unknown task.*synthetic-Nope.*synthetic-Necrosis"):
        download_pool(tmp_path, [mirror.url], ["synthetic-Nope"], **FAST)
    with pytest.raises(DpbenchError, match="not 'paper'"):
        download_pool(tmp_path, [mirror.url], expected_pool="paper", **FAST)
    doc = json.loads((source / MANIFEST).read_bytes())
    (tmp_path / MANIFEST).write_text(json.dumps({**doc, "pool_version": "000000000000"}))
    with pytest.raises(DpbenchError, match="choose another --out"):
        download_pool(tmp_path, [mirror.url], **FAST)
    assert [p for p, _ in mirror.log] == [MANIFEST] * 3  # nothing else was fetched


def test_unreachable_mirrors(source: Path, tmp_path: Path) -> None:
    server = Mirror(source)
    server.stop()
    with pytest.raises(DpbenchError, match=r"no mirror served .*cannot connect.*--mirror"):
        download_pool(tmp_path, [server.url], **FAST)
    with pytest.raises(DpbenchError, match="--mirror URL or set DPBENCH_MIRRORS"):
        download_pool(tmp_path, [], **FAST)


def test_offline(source: Path, tmp_path: Path) -> None:
    with pytest.raises(DpbenchError, match=r"--offline.*run without --offline"):
        download_pool(tmp_path, [], offline=True)
    server = Mirror(source)
    try:
        download_pool(tmp_path, [server.url], **FAST)
    finally:
        server.stop()
    report = download_pool(tmp_path, [server.url], offline=True)
    assert report.fetched == [] and set(report.reused) == pool_files(load_manifest(source))
    assert_complete(tmp_path, source)
    assert download_pool(tmp_path, [], ["synthetic-Necrosis"], offline=True).fetched == []
    (tmp_path / SHARD).unlink()
    with pytest.raises(DpbenchError, match=f"offline.*{SHARD} \\(missing\\).*run without --offline"):
        download_pool(tmp_path, [], offline=True)


@pytest.mark.parametrize("form", ["file-url", "path"])
def test_local_mirrors(source: Path, tmp_path: Path, form: str) -> None:
    report = download_pool(tmp_path / "out", [source.as_uri() if form == "file-url" else str(source)], **FAST)
    assert report.per_mirror() == {source.as_uri() + "/": len(pool_files(load_manifest(source)))}
    assert_complete(tmp_path / "out", source)


def test_resolve_mirrors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DPBENCH_MIRRORS", "https://env.example/a, https://env.example/b\nhttps://env.example/c/")
    pool = ("https://default.example/pool",)
    assert resolve_mirrors(["https://flag.example/x", "local"], pool) == [
        "https://flag.example/x/", (tmp_path / "local").as_uri() + "/"]
    assert resolve_mirrors([], pool) == [f"https://env.example/{c}/" for c in "abc"]
    monkeypatch.delenv("DPBENCH_MIRRORS")
    assert resolve_mirrors([], pool) == ["https://default.example/pool/"]
    assert resolve_mirrors([], ("http://127.0.0.1:8000/p", "file:///srv/p")) == [
        "http://127.0.0.1:8000/p/", "file:///srv/p/"]
    with pytest.raises(DpbenchError, match="--mirror URL or set DPBENCH_MIRRORS"):
        resolve_mirrors([], ())
    for bad, why in [("s3://bucket/pool", "scheme"), ("hf://datasets/x", "scheme"), ("ftp://h/p", "scheme"),
                     ("http://example.com/pool", "https://"), ("https:///nohost", "no host"),
                     ("file://server/share", "local")]:
        with pytest.raises(DpbenchError, match=why):
            resolve_mirrors([bad], ())


def test_stream_urls_work_with_webdataset(source: Path, mirror: Mirror) -> None:
    import webdataset as wds

    manifest = load_manifest(source)
    urls = stream_urls(mirror.url, manifest, "synthetic-Necrosis", "train")
    assert urls == [mirror.url + s.path for s in manifest.shards_of("synthetic-Necrosis", "train")]
    count = sum(s.count for s in manifest.shards_of("synthetic-Necrosis", "train"))
    for shards in (urls, stream_urls(str(source), manifest, "synthetic-Necrosis", "train")):
        samples = list(wds.WebDataset(shards, shardshuffle=False))
        assert len(samples) == count and {"png", "cls", "json"} <= set(samples[0])
    with pytest.raises(DpbenchError, match="unknown split"):
        stream_urls(mirror.url, manifest, "synthetic-Necrosis", "training")


def test_shards_load_with_hf_datasets(source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import datasets
    from PIL import Image

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True)
    report: DownloadReport = download_pool(tmp_path / "out", [str(source)], **FAST)
    shards = report.manifest.shards
    ds = datasets.load_dataset("webdataset", data_files={"train": [str(tmp_path / "out" / s.path) for s in shards]},
                               split="train", cache_dir=str(tmp_path / "hf"))
    assert ds.num_rows == sum(s.count for s in shards)
    keys = set()
    for row in ds:
        assert isinstance(row["png"], Image.Image) and row["png"].size[0] > 0
        record = row["json"]
        assert record["key"] == row["__key__"] and record["label"] == row["cls"]
        assert record["task"] in TASKS and record["group"]
        keys.add((record["task"], record["key"]))
    assert len(keys) == ds.num_rows


def flip_test_labels(root: Path) -> None:
    """A self-consistent rewrite: test labels flipped, shards re-hashed, the manifest updated to match."""
    manifest = json.loads((root / MANIFEST).read_text())
    for entry in manifest["shards"]:
        if entry["split"] != "test":
            continue
        path = root / entry["path"]
        flip_shard_labels(path)
        entry["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
        entry["bytes"] = path.stat().st_size
    (root / MANIFEST).write_text(json.dumps(manifest))


def test_a_mirror_that_rewrites_the_benchmark_is_refused(source: Path, tmp_path: Path) -> None:
    """Flipped test labels with a matching manifest verify on their own; the package's pin refuses them."""
    forged = tmp_path / "forged"
    shutil.copytree(source, forged)
    flip_test_labels(forged)
    assert verify_pool(forged)[1] == []  # self-consistent: the mirror's own manifest cannot tell
    with pytest.raises(DpbenchError, match="the mirror altered the benchmark"):
        download_pool(tmp_path / "out", [str(forged)], **FAST)
    assert not (tmp_path / "out" / MANIFEST).exists()
    with pytest.raises(DpbenchError, match="altered"):  # --trust-mirror never overrides a pin
        download_pool(tmp_path / "out", [str(forged)], trust_mirror=True, **FAST)


def test_an_unpinned_pool_version_needs_trust_mirror(source: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("dpbench.transport.download.published_manifests", lambda: {})
    with pytest.raises(DpbenchError, match=r"no pinned manifest\.json.*--trust-mirror"):
        download_pool(tmp_path / "out", [str(source)], **FAST)
    report = download_pool(tmp_path / "out", [str(source)], trust_mirror=True, **FAST)
    assert len(report.warnings) == 1 and "only trust root" in report.warnings[0]
    assert_complete(tmp_path / "out", source)
