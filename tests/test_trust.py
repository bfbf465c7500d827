"""Evaluate only what the manifest vouches for: every shard is checked against its sha256 before any use or reuse."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from dpbench.errors import DpbenchError
from dpbench.pool import verify as verify_module
from dpbench.pool.manifest import ShardEntry, load_manifest
from dpbench.pool.verify import VERIFIED_CACHE, check_files
from tests.conftest import SMALL_TASKS, flip_shard_labels, run_cli

TASK = SMALL_TASKS[1]  # synthetic-WarwickCRC: binary, small


def copy(small_pool: Path, tmp_path: Path) -> Path:
    root = tmp_path / "pool"
    shutil.copytree(small_pool, root)
    shutil.rmtree(root / ".cache", ignore_errors=True)
    return root


def target_shard(root: Path) -> Path:
    return root / next(s.path for s in load_manifest(root).shards if s.task == TASK and s.split == "test")


def evaluate_cli(root: Path, out: Path, *extra: str) -> tuple[int, list[str]]:
    result = run_cli("eval", "--encoder", "random", "--input-size", "64", "--probe", "fast", "--data", str(root),
                     "--tasks", TASK, "--out", str(out), *extra)
    assert "Traceback" not in result.stdout + result.stderr
    return result.returncode, [line for line in result.stderr.splitlines() if line.strip()]


def test_labels_flipped_after_a_cached_run_are_refused(small_pool: Path, tmp_path: Path) -> None:
    root = copy(small_pool, tmp_path)
    code, errors = evaluate_cli(root, tmp_path / "out")
    assert code == 0, errors
    before = (tmp_path / "out" / "results.json").read_bytes()
    flip_shard_labels(target_shard(root))
    code, errors = evaluate_cli(root, tmp_path / "out")
    assert code == 2 and len(errors) == 1, errors
    assert errors[0].startswith("error: shard ") and "sha256 differs from the manifest" in errors[0]
    assert (tmp_path / "out" / "results.json").read_bytes() == before  # nothing written is lost or replaced


@pytest.mark.parametrize("damage", ["manifest-hash", "flipped-byte", "missing", "other-task"])
def test_a_shard_the_manifest_does_not_vouch_for_is_one_clear_error(small_pool: Path, tmp_path: Path,
                                                                     damage: str) -> None:
    root = copy(small_pool, tmp_path)
    shard = target_shard(root)
    if damage == "manifest-hash":
        manifest = json.loads((root / "manifest.json").read_text())
        entry = next(s for s in manifest["shards"] if s["path"] == str(shard.relative_to(root)))
        entry["sha256"] = "0" * 64
        (root / "manifest.json").write_text(json.dumps(manifest))
    elif damage == "flipped-byte":
        data = bytearray(shard.read_bytes())
        data[700] ^= 0xFF
        shard.write_bytes(bytes(data))
    elif damage == "missing":
        shard.unlink()
    else:  # the same name, another task's bytes
        other = next(s.path for s in load_manifest(root).shards if s.task != TASK)
        shard.write_bytes((root / other).read_bytes())
    code, errors = evaluate_cli(root, tmp_path / "out")
    assert code == 2 and len(errors) == 1 and errors[0].startswith(f"error: shard {TASK}/test-"), errors
    assert "dpbench verify" in errors[0]
    assert not (tmp_path / "out" / "results.json").exists()


def test_verified_shards_are_not_hashed_again_until_they_change(small_pool: Path, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    root = copy(small_pool, tmp_path)
    assert check_files(root) == [] and (root / VERIFIED_CACHE).is_file()
    hashed: list[str] = []
    real = verify_module.file_problem

    def counting(path: Path, entry: ShardEntry) -> str | None:
        hashed.append(entry.path)
        return real(path, entry)

    monkeypatch.setattr(verify_module, "file_problem", counting)
    assert check_files(root) == [] and hashed == []
    shard = target_shard(root)
    data = bytearray(shard.read_bytes())
    data[700] ^= 0xFF
    shard.write_bytes(bytes(data))  # same size; mtime and ctime move
    problems = check_files(root)
    assert hashed == [str(shard.relative_to(root))] and [p.path for p in problems] == hashed


def test_a_read_only_pool_is_still_checked(small_pool: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = copy(small_pool, tmp_path)

    def refuse(*args: object) -> None:
        raise PermissionError("read-only file system")

    monkeypatch.setattr(verify_module, "atomic_write_json", refuse)
    assert check_files(root) == []
    flip_shard_labels(target_shard(root))
    assert check_files(root)
    with pytest.raises(DpbenchError, match="sha256 differs"):
        verify_module.require_verified(root)
