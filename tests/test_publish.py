"""Publishing a built pool: a verified copy with a dataset card; restricted licences are refused."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from dpbench.errors import DpbenchError
from dpbench.pool.manifest import load_manifest
from dpbench.pool.verify import verify_pool
from dpbench.tasks import get_task
from dpbench.tasks.models import Task
from dpbench.transport import publish as publish_module
from dpbench.transport.publish import publish_pool, refusal_reason
from tests.conftest import SMALL_TASKS, run_cli


def front_matter(card: str) -> dict[str, object]:
    assert card.startswith("---\n")
    loaded: dict[str, object] = yaml.safe_load(card.split("---\n")[1])
    return loaded


def test_publish_copies_a_verified_pool_with_a_dataset_card(small_pool: Path, tmp_path: Path) -> None:
    out = tmp_path / "pub"
    report = publish_pool(small_pool, out, tasks=SMALL_TASKS[:2])
    manifest = load_manifest(out)
    assert report.tasks == SMALL_TASKS[:2] == [t.name for t in manifest.tasks]
    assert report.files == len(manifest.shards) + 4  # shards, two split.json, manifest.json, README.md
    assert manifest.pool_version == load_manifest(small_pool).pool_version
    for shard in manifest.shards:
        assert (out / shard.path).read_bytes() == (small_pool / shard.path).read_bytes()
    assert verify_pool(out)[1] == []
    card = (out / "README.md").read_text()
    meta = front_matter(card)
    assert meta["license"] == "cc0-1.0" and "synthetic" in meta["tags"]  # type: ignore[operator]
    configs = {c["config_name"]: c for c in meta["configs"]}  # type: ignore[attr-defined]
    assert set(configs) == set(SMALL_TASKS[:2])
    splits = {d["split"] for d in configs["synthetic-Necrosis"]["data_files"]}
    assert splits == {"train", "validation", "test"}
    assert "SYNTHETIC data" in card and "mormont2020multitask" in card and "| synthetic-Necrosis | 2 |" in card


def _restricted(licence: str, availability: str = "public") -> Task:
    task = get_task("synthetic-Necrosis")
    source = task.source.model_copy(update={"licence": licence, "availability": availability})
    return task.model_copy(update={"source": source})


def test_restricted_licences_are_refused_unless_forced(small_pool: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    assert "derived" in (refusal_reason(_restricted("CC-BY-NC-ND-4.0")) or "")
    assert refusal_reason(_restricted("proprietary", "private")) == "private data"
    assert "unknown" in (refusal_reason(_restricted("unknown")) or "")
    assert refusal_reason(_restricted("CC-BY-4.0")) is None
    nd = _restricted("CC-BY-NC-ND-4.0")
    monkeypatch.setattr(publish_module, "get_task", lambda name: nd if name == nd.name else get_task(name))
    out = tmp_path / "pub"
    with pytest.raises(DpbenchError, match=r"refusing to publish synthetic-Necrosis \(CC-BY-NC-ND-4.0"):
        publish_pool(small_pool, out)
    assert not out.exists()
    report = publish_pool(small_pool, out, force_licence=["synthetic-Necrosis"])
    assert report.forced == ["synthetic-Necrosis"] and "synthetic-Necrosis" in report.tasks
    assert front_matter((out / "README.md").read_text())["license"] == "other"


def test_a_corrupted_source_is_not_published(small_pool: Path, tmp_path: Path) -> None:
    root = tmp_path / "src"
    shutil.copytree(small_pool, root)
    bad = root / load_manifest(root).shards[0].path
    bad.write_bytes(bad.read_bytes()[:-10])
    with pytest.raises(DpbenchError, match="does not match the manifest"):
        publish_pool(root, tmp_path / "pub")


def test_publish_cli(small_pool: Path, tmp_path: Path) -> None:
    result = run_cli("publish", str(small_pool), "--to", str(tmp_path / "pub"), "--tasks", "synthetic-Necrosis")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "pub" / "README.md").exists() and "published 1 task(s)" in result.stdout
    result = run_cli("publish", str(small_pool), "--to", str(small_pool))
    assert result.returncode == 2 and "another folder" in result.stderr


def test_publish_then_download_from_the_cli(small_pool: Path, tmp_path: Path) -> None:
    assert run_cli("publish", str(small_pool), "--to", str(tmp_path / "pub")).returncode == 0
    out = tmp_path / "data"
    args = ("download", "--pool", "synthetic", "--mirror", str(tmp_path / "pub"), "--out", str(out))
    first = run_cli(*args, "--tasks", "synthetic-Necrosis")
    assert first.returncode == 0, first.stderr
    assert [t.name for t in load_manifest(out).tasks] == ["synthetic-Necrosis"]
    again = run_cli(*args, "--tasks", "synthetic-Necrosis")
    assert "0 file(s) fetched" in again.stdout
    assert run_cli("verify", str(out)).returncode == 0
    wrong = run_cli("download", "--pool", "mormont2020", "--mirror", str(tmp_path / "pub"),
                    "--out", str(tmp_path / "x"))
    assert wrong.returncode == 2 and "Traceback" not in wrong.stderr and "synthetic" in wrong.stderr
