"""The leakage audit: a clean pool passes; planted group leaks, exact and near duplicates are caught by key."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from dpbench.errors import DpbenchError
from dpbench.io import sha256_file
from dpbench.pool.audit import audit_pool, near_pairs
from dpbench.pool.audit.index import bands, popcount
from dpbench.pool.manifest import IMAGE_EXTS
from dpbench.pool.tarstream import iter_tar_samples
from tests.conftest import run_cli

NEC, JAN, CRC = "synthetic-Necrosis", "synthetic-Janowczyk7", "synthetic-WarwickCRC"
Samples = list[tuple[str, dict[str, bytes]]]


def one_clear_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 2 and "Traceback" not in result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert all(n in lines[0] for n in needles), lines[0]


def copy_pool(small_pool: Path, tmp_path: Path) -> Path:
    root = tmp_path / "pool"
    shutil.copytree(small_pool, root)
    (root / "audit.json").unlink(missing_ok=True)
    return root


def read(root: Path, rel: str) -> Samples:
    return list(iter_tar_samples(root / rel))


def write(root: Path, rel: str, samples: Samples) -> None:
    """Rewrite a shard and its manifest entry (sha256, size, count), as a builder would have."""
    path = root / rel
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
        for key, parts in samples:
            for ext, data in parts.items():
                info = tarfile.TarInfo(f"{key}.{ext}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    manifest = json.loads((root / "manifest.json").read_text())
    entry = next(s for s in manifest["shards"] if s["path"] == rel)
    entry.update(sha256=sha256_file(path), bytes=path.stat().st_size, count=len(samples))
    (root / "manifest.json").write_text(json.dumps(manifest))


def record(parts: dict[str, bytes]) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(parts["json"])
    return out


def image_of(parts: dict[str, bytes]) -> Image.Image:
    ext = next(e for e in IMAGE_EXTS if e in parts)
    with Image.open(io.BytesIO(parts[ext])) as opened:
        return opened.convert("RGB")


def planted(parts: dict[str, bytes], image: bytes, ext: str, **changes: Any) -> tuple[str, dict[str, bytes]]:
    """A copy of a sample with another image and record fields (key, group, split, task)."""
    rec = {**record(parts), **changes}
    return rec["key"], {ext: image, "cls": parts["cls"], "json": json.dumps(rec).encode()}


def encode(image: Image.Image, fmt: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def plant_cross_task(root: Path) -> tuple[str, str]:
    """(d) a Janowczyk7 train image copied into WarwickCRC's train split; returns (original, copy) keys."""
    source = read(root, f"{JAN}/train-00000.tar")[0]
    target = read(root, f"{CRC}/train-00000.tar")
    label = target[0][1]["cls"]  # a valid WarwickCRC label
    key, parts = planted(source[1], source[1]["png"], "png", key="planted-cross", group="planted-group-d",
                         task=CRC, split="train")
    write(root, f"{CRC}/train-00000.tar", [*target, (key, {**parts, "cls": label})])
    return source[0], key


@pytest.fixture()
def leaky_pool(small_pool: Path, tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    """A copy of the small pool with four planted leaks (a)–(d); returns it and the keys involved."""
    root = copy_pool(small_pool, tmp_path)
    train = read(root, f"{NEC}/train-00000.tar")
    test, val = read(root, f"{NEC}/test-00000.tar"), read(root, f"{NEC}/val-00000.tar")
    # (a) a train image in the test split under another key and group, re-encoded losslessly.
    original = train[0][1]["png"]
    copy = encode(image_of(train[0][1]), "PNG", compress_level=1)
    assert copy != original
    exact = planted(train[0][1], copy, "png", key="planted-exact", group="planted-group-a", split="test")
    # (b) a slightly brighter copy, re-encoded as JPEG, in val.
    brighter = np.clip(np.asarray(image_of(train[2][1]), dtype=np.int16) + 2, 0, 255).astype(np.uint8)
    near = planted(train[2][1], encode(Image.fromarray(brighter), "JPEG", quality=90), "jpg",
                   key="planted-near", group="planted-group-b", split="val")
    # (c) a test sample given the group of a train sample.
    shared = record(train[1][1])["group"]
    test[0] = planted(test[0][1], test[0][1]["png"], "png", group=shared)
    write(root, f"{NEC}/test-00000.tar", [*test, exact])
    write(root, f"{NEC}/val-00000.tar", [*val, near])
    cross = plant_cross_task(root)
    keys = {"exact": (train[0][0], "planted-exact"), "near": (train[2][0], "planted-near"),
            "group": (shared, test[0][0]), "cross": cross}
    return root, keys


def test_clean_pool_passes(small_pool: Path, tmp_path: Path) -> None:
    out = tmp_path / "clean.json"
    result = run_cli("audit", str(small_pool), "--json", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "clean" in result.stdout and not (small_pool / "audit.json").exists()
    report = json.loads(out.read_text())
    assert report["passed"] and report["images"] == 371 and report["threshold"] == 4
    assert report["shared_groups"] == report["exact_duplicates"] == report["near_duplicates"] == []
    manifest = json.loads((small_pool / "manifest.json").read_text())
    for task in manifest["tasks"]:
        for split, entry in task["splits"].items():
            row = report["balance"][task["name"]][split]
            assert (row["images"], row["groups"]) == (entry["images"], entry["groups"])
            assert sum(row["classes"].values()) == entry["images"] and row["missing"] == []


def test_no_false_positives_below_the_nearest_pair(small_pool: Path) -> None:
    """Synthetic tiles are ≥ 12 bits apart: even threshold 8 (twice the default) finds nothing."""
    report = audit_pool(small_pool, threshold=8)
    assert not report.failed(strict=True) and report.findings.near == []


def test_planted_leaks_are_caught_by_key(leaky_pool: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    root, keys = leaky_pool
    out = tmp_path / "leaky.json"
    result = run_cli("audit", str(root), "--json", str(out))
    assert result.returncode == 1, result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("error: leakage") and "Traceback" not in result.stdout
    assert "planted-exact" in result.stdout and "planted-near" in result.stdout
    report = json.loads(out.read_text())
    assert not report["passed"]
    assert report["summary"] == {"shared_groups": 1, "exact_cross_split": 1, "exact_cross_task": 1,
                                 "near_cross_split": 1, "near_cross_task": 0}
    group = report["shared_groups"][0]
    assert (group["task"], group["group"], group["splits"]) == (NEC, keys["group"][0], ["train", "test"])
    assert group["keys"]["test"] == [keys["group"][1]]
    exact = {tuple(i["key"] for i in d["images"]): d for d in report["exact_duplicates"]}
    leak = exact[keys["exact"]]
    assert leak["cross_split"] == [NEC] and not leak["cross_task"]
    assert [(i["split"], i["group"]) for i in leak["images"]][1] == ("test", "planted-group-a")
    cross = exact[keys["cross"]]
    assert cross["cross_split"] == [] and cross["cross_task"]
    assert [i["task"] for i in cross["images"]] == [JAN, CRC]
    [near] = report["near_duplicates"]
    assert (near["a"][0]["key"], near["b"][0]["key"]) == keys["near"]
    assert (near["a"][0]["split"], near["b"][0]["split"]) == ("train", "val")
    assert near["distance"] <= 4 and near["cross_split"] == [NEC]


def test_the_findings_that_fail_the_audit_are_listed_first(leaky_pool: tuple[Path, dict[str, Any]]) -> None:
    """More reported-only duplicates across tasks than the terminal shows: the leaks across splits still show."""
    from dpbench.cli.audit import SHOWN

    root, keys = leaky_pool
    source, target = read(root, f"{JAN}/train-00000.tar"), read(root, f"{CRC}/train-00000.tar")
    label = target[0][1]["cls"]
    copies = [planted(parts, parts["png"], "png", key=f"copy-{i:02d}", group=f"copy-{i:02d}", task=CRC, split="train")
              for i, (_, parts) in enumerate(source[1:SHOWN + 1])]
    write(root, f"{CRC}/train-00000.tar", [*target, *[(k, {**p, "cls": label}) for k, p in copies]])
    result = run_cli("audit", str(root))
    assert result.returncode == 1 and "Traceback" not in result.stdout + result.stderr
    assert f"{SHOWN + 4} finding(s)" in result.stdout and "more in the JSON report" in result.stdout
    failing = [result.stdout.index(needle) for needle in ("planted-exact", "planted-near", keys["group"][1])]
    assert max(failing) < result.stdout.index("reported only")


def test_cross_task_duplicates_fail_only_with_strict(small_pool: Path, tmp_path: Path) -> None:
    root = copy_pool(small_pool, tmp_path)
    plant_cross_task(root)
    report = audit_pool(root)
    assert not report.failed() and report.failed(strict=True)
    assert [d.cross_task for d in report.findings.exact] == [True]
    strict = run_cli("audit", str(root), "--strict")
    assert strict.returncode == 1 and "1 exact and 0 near duplicate(s) across tasks" in strict.stderr
    saved = json.loads((root / "audit.json").read_text())  # the default report path
    assert saved["strict"] and not saved["passed"] and saved["summary"]["exact_cross_task"] == 1
    assert audit_pool(root, tasks=[f"{CRC},{NEC}"]).findings.exact == []  # the copy's source is not audited


def test_parallel_scan_gives_the_same_report(leaky_pool: tuple[Path, dict[str, Any]]) -> None:
    root, _ = leaky_pool
    serial, parallel = audit_pool(root, tasks=[NEC]), audit_pool(root, tasks=[NEC], workers=2)
    assert serial.failed() and serial.findings.counts() == parallel.findings.counts()
    assert serial.findings.balance == parallel.findings.balance
    assert [d.to_json() for d in serial.findings.near] == [d.to_json() for d in parallel.findings.near]


def test_band_index_matches_brute_force() -> None:
    rng = np.random.default_rng(7)
    hashes = rng.integers(0, 2**64 - 1, size=1500, dtype=np.uint64, endpoint=True)
    for _ in range(300):  # plant neighbours at 0..8 bits
        value = hashes[rng.integers(hashes.size)]
        for bit in rng.choice(64, size=rng.integers(0, 9), replace=False):
            value ^= np.uint64(1) << np.uint64(bit)
        hashes[rng.integers(hashes.size)] = value
    distances = popcount((hashes[:, None] ^ hashes[None, :]).ravel()).reshape(hashes.size, -1)
    for threshold in (0, 1, 4, 7):
        assert sum(w for _, w in bands(threshold)) == 64 and len(bands(threshold)) == threshold + 1
        i, j, d = near_pairs(hashes, threshold)
        expected = set(zip(*np.nonzero(np.triu(distances <= threshold, 1)), strict=True))
        found = list(zip(i.tolist(), j.tolist(), strict=True))
        assert len(found) == len(set(found)) and set(found) == {(int(a), int(b)) for a, b in expected}
        assert np.array_equal(d, distances[i, j]) and (i < j).all()


def test_band_index_scales() -> None:
    hashes = np.random.default_rng(1).integers(0, 2**64 - 1, size=300_000, dtype=np.uint64, endpoint=True)
    hashes[-1] = hashes[0] ^ np.uint64(0b10101)
    i, j, d = near_pairs(hashes, 4)
    assert (0, hashes.size - 1, 3) in set(zip(i.tolist(), j.tolist(), d.tolist(), strict=True))


def test_uninformative_hash_does_not_explode_into_pairs() -> None:
    from dpbench.pool.audit.findings import MAX_CLUSTERS_PER_HASH, find_leaks
    from dpbench.pool.audit.scan import ImageTable

    n = 2_000  # flat background tiles: distinct pixels, one shared perceptual hash, in train and test
    flat = np.full(n, 0x8000000000000000, dtype=np.uint64)
    near_a, near_b = np.uint64(0x0F0F0F0F12345678), np.uint64(0x0F0F0F0F12345679)  # a real near pair
    digest = np.c_[np.arange(n + 2), np.zeros(n + 2)].astype(np.uint64)
    table = ImageTable(tasks=["t"], task=np.zeros(n + 2, np.int64), split=np.r_[np.arange(n) % 3, 0, 2],
                       label=np.zeros(n + 2, np.int64), digest=digest,
                       phash=np.r_[flat, near_a, near_b], keys=[f"k{i}" for i in range(n + 2)],
                       groups=[f"g{i}" for i in range(n + 2)])
    findings = find_leaks(table, {"t": ["c0"]}, threshold=4)
    assert n > MAX_CLUSTERS_PER_HASH and findings.uninformative == n
    assert [(d.a[0].key, d.b[0].key) for d in findings.near] == [(f"k{n}", f"k{n + 1}")]


def test_bad_input_is_one_clear_error(small_pool: Path, tmp_path: Path) -> None:
    one_clear_error(run_cli("audit", str(tmp_path)), "no manifest.json")
    root = copy_pool(small_pool, tmp_path)
    with pytest.raises(DpbenchError, match="--threshold 40 is out of range"):
        audit_pool(root, threshold=40)
    with pytest.raises(DpbenchError, match="not in this build"):
        audit_pool(root, tasks=["synthetic-Lung"])
    shard = root / NEC / "val-00000.tar"
    shard.write_bytes(shard.read_bytes()[:5000])
    one_clear_error(run_cli("audit", str(root)), f"{NEC}/val-00000.tar", "truncated")
    (root / JAN / "test-00000.tar").unlink()
    with pytest.raises(DpbenchError, match=r"test-00000\.tar is missing"):
        audit_pool(root, tasks=[JAN])
    garbage = root / CRC / "val-00000.tar"
    garbage.write_bytes(b"not a tar file" * 100)
    manifest = json.loads((root / "manifest.json").read_text())
    entry = next(s for s in manifest["shards"] if s["path"] == f"{CRC}/val-00000.tar")
    entry.update(sha256=sha256_file(garbage), bytes=garbage.stat().st_size)
    (root / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DpbenchError, match="unreadable"):
        audit_pool(root, tasks=[CRC])
