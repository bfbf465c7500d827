"""A build trusts only what it can check: reused shards, its own worker processes, splits that can be evaluated."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dpbench.build import split_task
from dpbench.errors import DpbenchError
from dpbench.pool.manifest import load_manifest
from dpbench.pool.verify import verify_pool
from dpbench.tasks import get_task
from dpbench.tasks.samples import Sample
from tests.conftest import build_small


def test_a_rebuild_without_manifest_rewrites_a_corrupt_shard(small_pool: Path, tmp_path: Path) -> None:
    """Before: the corrupt shard held the planned keys, so it was kept and its bad hash written into the new
    manifest, and `dpbench verify` then passed on corrupted data."""
    root = tmp_path / "b"
    shutil.copytree(small_pool, root)
    shard = root / load_manifest(root).shards[0].path
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF  # inside an image: the tar headers and keys still read
    shard.write_bytes(bytes(data))
    (root / "manifest.json").unlink()
    report = build_small(root)
    assert sum(r.written for r in report.tasks) == 1
    assert shard.read_bytes() == (small_pool / shard.relative_to(root)).read_bytes()
    assert verify_pool(root)[1] == []


def test_a_shard_with_no_record_is_not_trusted(small_pool: Path, tmp_path: Path) -> None:
    """No manifest and no build journal (e.g. shards copied in from elsewhere): nothing vouches for them."""
    root = tmp_path / "b"
    shutil.copytree(small_pool, root)
    (root / "manifest.json").unlink()
    shutil.rmtree(root / ".cache")
    report = build_small(root)
    assert sum(r.reused for r in report.tasks) == 0
    assert verify_pool(root)[1] == []


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signals are Linux's")
def test_a_killed_build_leaves_no_worker_running(tmp_path: Path) -> None:
    args = [sys.executable, "-m", "dpbench", "build", "--pool", "synthetic", "--out", str(tmp_path / "b"),
            "--workers", "2", "--tasks", "synthetic-Necrosis", "--tasks", "synthetic-Lung",
            "--tasks", "synthetic-Breast1", "--tasks", "synthetic-BoneMarrow"]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    workers: list[int] = []
    while time.monotonic() < deadline and not list((tmp_path / "b").rglob("*.tar")):
        workers = _children(process.pid)
        time.sleep(0.05)
    workers = _children(process.pid) or workers
    assert workers and process.poll() is None, "the build ended before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(_alive(w) for w in workers):
        time.sleep(0.1)
    left = [w for w in workers if _alive(w)]
    for pid in left:  # clean up before failing
        os.kill(pid, signal.SIGKILL)
    assert left == []


def test_a_split_with_no_test_group_is_refused_at_build_time() -> None:
    """One slide cannot fill train and test: before, the build wrote it (with a note) and eval crashed with a
    KeyError on the missing test split."""
    task = get_task("synthetic-Necrosis").model_copy(update={"split_sha256": None})
    samples = [Sample(key=f"s-{i}", group="slide-0", label=i % 2, source="slide-0") for i in range(6)]
    with pytest.raises(DpbenchError, match=r"1 slide group\(s\) leave the test split empty; .* at least 3 groups"):
        split_task(task, samples)
    two = [Sample(key=f"s{g}-{i}", group=f"slide-{g}", label=i % 2, source=f"slide-{g}") for g in range(2)
           for i in range(6)]
    split = split_task(task, two)  # train and test filled, val empty: allowed (the linear probe can run)
    assert split.counts()["test"][1] == 1 and split.counts()["val"][1] == 0
