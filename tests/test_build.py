"""Building shards: determinism, manifest contents, resume after a crash or a kill, pins, corruption."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from dpbench.build import BuildOptions, build_pool
from dpbench.errors import DpbenchError
from dpbench.io import sha256_file
from dpbench.pool.manifest import ShardEntry, load_manifest
from dpbench.pool.tarstream import iter_tar_samples
from dpbench.pool.verify import check_shard, verify_pool
from dpbench.pool.write import encode_sample
from dpbench.tasks import get_pool, get_task
from tests.conftest import SMALL_OPTIONS, SMALL_TASKS, build_small, tree_bytes


def test_manifest_describes_every_shard(small_pool: Path) -> None:
    manifest = load_manifest(small_pool)
    assert manifest.pool == "synthetic" and manifest.synthetic
    assert [t.name for t in manifest.tasks] == [n for n in get_pool("synthetic").tasks if n in SMALL_TASKS]
    for entry in manifest.tasks:
        task = get_task(entry.name)
        assert entry.split_sha256 == task.split_sha256
        assert {s: (c.images, c.groups) for s, c in entry.splits.items()} == {
            s: (task.sizes[s].images, task.sizes[s].groups) for s in ("train", "val", "test")}
        total = sum(s.count for s in manifest.shards if s.task == entry.name)
        assert total == task.sizes.images
    assert len(manifest.shards) > len(SMALL_TASKS) * 3  # shard_size 32 gives several shards per split
    assert (small_pool / "manifest.json").stat().st_mode & 0o777 == 0o644  # readable by other users
    for shard in manifest.shards:
        assert (small_pool / shard.path).stat().st_size == shard.bytes
        assert shard.count <= SMALL_OPTIONS.shard_size


def test_shards_hold_image_label_and_record(small_pool: Path) -> None:
    manifest = load_manifest(small_pool)
    shard = manifest.shards_of("synthetic-Janowczyk7", "test")[0]
    split = json.loads((small_pool / "synthetic-Janowczyk7" / "split.json").read_text())
    seen = 0
    for key, parts in iter_tar_samples(small_pool / shard.path):
        record = json.loads(parts["json"])
        assert set(parts) == {"png", "cls", "json"}
        assert record["key"] == key and record["task"] == "synthetic-Janowczyk7"
        assert int(parts["cls"]) == record["label"]
        assert record["class_name"] == get_task("synthetic-Janowczyk7").class_names[record["label"]]
        assert record["synthetic"] is True and record["licence"] == "CC0-1.0"
        assert split["samples"][key] == "test" and split["groups"][record["group"]] == "test"
        seen += 1
    assert seen == shard.count


def test_two_builds_are_byte_identical_whatever_the_worker_count(small_pool: Path, tmp_path: Path) -> None:
    build_pool(get_pool("synthetic"), tmp_path / "b", SMALL_TASKS, BuildOptions(shard_size=32, workers=2))
    assert tree_bytes(tmp_path / "b") == tree_bytes(small_pool)


def test_crash_mid_shard_leaves_no_partial_shard_and_resume_finishes(
        small_pool: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "b"
    original = encode_sample
    calls = {"n": 0}

    def failing(*args: object, **kwargs: object) -> dict[str, object]:
        calls["n"] += 1
        if calls["n"] == 150:
            raise KeyboardInterrupt  # like Ctrl-C in the middle of a shard
        return original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr("dpbench.build.builder.encode_sample", failing)
    with pytest.raises(KeyboardInterrupt):
        build_small(root)
    monkeypatch.setattr("dpbench.build.builder.encode_sample", original)
    assert not (root / "manifest.json").exists()
    leftovers = [p for p in root.rglob("*") if ".tmp-" in p.name]
    assert leftovers == []
    finished = sorted(root.rglob("*.tar"))
    assert finished and all(p.read_bytes() == (small_pool / p.relative_to(root)).read_bytes() for p in finished)
    stamps = {p: p.stat().st_mtime_ns for p in finished}
    report = build_small(root)
    assert sum(r.reused for r in report.tasks) == len(finished)
    assert all(p.stat().st_mtime_ns == stamps[p] for p in finished)  # finished shards were not redone
    assert tree_bytes(root) == tree_bytes(small_pool)


def test_killed_build_process_resumes(small_pool: Path, tmp_path: Path) -> None:
    """SIGKILL a real `dpbench build` once some shards exist; the rerun completes to the same bytes."""
    root = tmp_path / "b"
    args = [sys.executable, "-m", "dpbench", "build", "--pool", "synthetic", "--out", str(root),
            "--shard-size", "8", "--workers", "1", *[a for t in SMALL_TASKS for a in ("--tasks", t)]]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(root.rglob("*.tar"))) < 5:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert not (root / "manifest.json").exists(), "build finished before it could be killed"
    for path in root.rglob("*.tar"):  # every shard under a final name is complete
        with tarfile.open(path) as tar:
            assert len(tar.getnames()) == 3 * 8
    subprocess.run(args, check=True, capture_output=True, timeout=300)
    assert not [p for p in root.rglob("*") if ".tmp-" in p.name]
    fresh = tmp_path / "fresh"
    build_pool(get_pool("synthetic"), fresh, SMALL_TASKS, BuildOptions(shard_size=8, workers=1))
    assert tree_bytes(root) == tree_bytes(fresh)


def test_verify_names_bad_shards_and_rebuild_repairs_only_them(small_pool: Path, tmp_path: Path) -> None:
    root = tmp_path / "b"
    shutil.copytree(small_pool, root)
    checked, problems = verify_pool(root)
    assert problems == [] and checked == len(load_manifest(root).shards)
    manifest = load_manifest(root)
    flipped, truncated, removed = (root / manifest.shards[i].path for i in (0, 3, 5))
    data = bytearray(flipped.read_bytes())
    data[len(data) // 2] ^= 0xFF
    flipped.write_bytes(bytes(data))
    truncated.write_bytes(truncated.read_bytes()[:1000])
    removed.unlink()
    _, problems = verify_pool(root)
    bad = {p.path: p.what for p in problems}
    assert set(bad) == {manifest.shards[i].path for i in (0, 3, 5)}
    assert "sha256" in bad[manifest.shards[0].path] and "size" in bad[manifest.shards[3].path]
    assert bad[manifest.shards[5].path] == "missing"
    assert all("dpbench build --pool synthetic" in p.fix for p in problems)
    untouched = root / manifest.shards[1].path
    stamp = untouched.stat().st_mtime_ns
    report = build_small(root)
    assert sum(r.written for r in report.tasks) == 3
    assert untouched.stat().st_mtime_ns == stamp
    assert verify_pool(root)[1] == [] and tree_bytes(root) == tree_bytes(small_pool)


def test_undecodable_image_is_caught(small_pool: Path, tmp_path: Path) -> None:
    """A shard whose hash matches a manifest but whose image bytes are garbage fails decoding."""
    root = tmp_path / "b"
    shutil.copytree(small_pool, root)
    manifest = load_manifest(root)
    entry = manifest.shards[0]
    path = root / entry.path
    with tarfile.open(path) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar]  # type: ignore[union-attr]
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
        for member, data in members:
            if member.name.endswith(".png"):
                data = b"\x89PNG" + b"\x00" * (len(data) - 4)
            import io

            tar.addfile(member, io.BytesIO(data))
    fixed = entry.model_copy(update={"sha256": sha256_file(path), "bytes": path.stat().st_size})
    assert check_shard(root, fixed, 2) is not None
    assert check_shard(root, fixed, 2, decode=False) is None


def test_pin_mismatch_stops_the_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    task = get_task("synthetic-Necrosis")
    wrong = task.model_copy(update={"split_sha256": "f" * 64})
    monkeypatch.setattr("dpbench.build.builder.get_task", lambda name: wrong)
    with pytest.raises(DpbenchError, match="differs from the registry pin"):
        build_pool(get_pool("synthetic"), tmp_path / "b", ["synthetic-Necrosis"], SMALL_OPTIONS)
    assert not list((tmp_path / "b").rglob("*.tar"))


def test_subset_builds_merge_into_one_manifest(small_pool: Path, tmp_path: Path) -> None:
    root = tmp_path / "b"
    build_pool(get_pool("synthetic"), root, SMALL_TASKS[:1], SMALL_OPTIONS)
    build_pool(get_pool("synthetic"), root, SMALL_TASKS[1:], SMALL_OPTIONS)
    assert tree_bytes(root) == tree_bytes(small_pool)


def test_bad_output_and_real_pool_fail_before_writing(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(DpbenchError, match="cannot write to"):
        build_pool(get_pool("synthetic"), blocker / "out", SMALL_TASKS[:1], SMALL_OPTIONS)
    with pytest.raises(DpbenchError, match="no --raw folder given"):
        build_pool(get_pool("mormont2020"), tmp_path / "real", ["Lung"], SMALL_OPTIONS)
    assert not (tmp_path / "real").exists()
    other = tmp_path / "other"
    build_pool(get_pool("synthetic"), other, SMALL_TASKS[:1], SMALL_OPTIONS)
    manifest = json.loads((other / "manifest.json").read_text())
    (other / "manifest.json").write_text(json.dumps({**manifest, "pool": "elsewhere"}))
    with pytest.raises(DpbenchError, match="already holds pool"):
        build_pool(get_pool("synthetic"), other, SMALL_TASKS[:1], SMALL_OPTIONS)


def test_rebuild_with_other_options_never_reuses_mismatched_shards(small_pool: Path, tmp_path: Path) -> None:
    """Shards of an earlier build with another shard size or shuffle seed are rewritten, not kept."""
    root = tmp_path / "b"
    shutil.copytree(small_pool, root)
    build_pool(get_pool("synthetic"), root, SMALL_TASKS, BuildOptions(shard_size=32, shuffle_seed=1, workers=1))
    fresh = tmp_path / "fresh"
    build_pool(get_pool("synthetic"), fresh, SMALL_TASKS, BuildOptions(shard_size=32, shuffle_seed=1, workers=1))
    assert tree_bytes(root) == tree_bytes(fresh) != tree_bytes(small_pool)
    build_pool(get_pool("synthetic"), root, SMALL_TASKS, BuildOptions(shard_size=20, shuffle_seed=1, workers=1))
    assert verify_pool(root)[1] == [] and all(s.count <= 20 for s in load_manifest(root).shards)


def test_manifest_paths_cannot_leave_the_pool() -> None:
    from pydantic import ValidationError

    good = {"path": "synthetic-Lung/train-00000.tar", "task": "synthetic-Lung", "split": "train",
            "sha256": "0" * 64, "count": 1, "bytes": 1}
    ShardEntry.model_validate(good)
    for path in ("../x.tar", "/etc/x.tar", "synthetic-Lung/../../x.tar", "other/train-00000.tar"):
        with pytest.raises(ValidationError):
            ShardEntry.model_validate({**good, "path": path})


def test_verify_checks_split_files_against_the_manifest(small_pool: Path, tmp_path: Path) -> None:
    root = tmp_path / "b"
    shutil.copytree(small_pool, root)
    split_file = root / "synthetic-Necrosis" / "split.json"
    record = json.loads(split_file.read_text())
    first = next(iter(record["samples"]))
    record["samples"][first] = "test" if record["samples"][first] != "test" else "train"
    split_file.write_text(json.dumps(record))
    _, problems = verify_pool(root)
    assert [p.path for p in problems] == ["synthetic-Necrosis/split.json"] and "sha256" in problems[0].what
