"""A build verifies what it wrote: shards that ``dpbench verify`` would reject stop the build, never reported as
success (the defect that the real UMCM names exposed: keys with a ``.`` split into entries no reader finds)."""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from dpbench.build import BuildOptions, build_pool, builder
from dpbench.errors import DpbenchError
from dpbench.pool.manifest import MANIFEST
from dpbench.pool.verify import verify_pool
from dpbench.tasks.models import Task
from dpbench.tasks.registry import get_pool, get_task
from dpbench.tasks.samples import Sample

TASK = get_task("WarwickCRC")


class FakeSource:
    """A TaskSource of 24 tiny images whose keys are chosen by the test (not a Converter: no key check)."""

    image_ext = "png"

    def __init__(self, task: Task, key: str) -> None:
        self.task = task
        self.key = key

    @property
    def skipped(self) -> Mapping[str, int]:
        return {}

    def samples(self) -> list[Sample]:
        return [Sample(key=self.key.format(i), group=f"img{i}", label=i % 2, source=f"img{i}.bmp")
                for i in range(24)]

    def prepare(self, batch: list[Sample]) -> None:
        pass

    def image(self, sample: Sample) -> bytes:
        buffer = io.BytesIO()
        Image.new("RGB", (2, 2), (200, 100, 150)).save(buffer, format="PNG")
        return buffer.getvalue()


def build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key: str) -> Path:
    (tmp_path / "raw" / TASK.source.folder).mkdir(parents=True)
    monkeypatch.setattr(builder, "task_source", lambda task, raw=None: FakeSource(task, key))
    out = tmp_path / "out"
    build_pool(get_pool("mormont2020"), out, [TASK.name], BuildOptions(shard_size=8, workers=1, raw=tmp_path / "raw"))
    return out


def test_a_clean_build_passes_its_own_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = build(tmp_path, monkeypatch, "img{}-tif_Row_1")
    assert (out / MANIFEST).is_file() and verify_pool(out)[1] == []


def test_keys_that_split_into_unreadable_entries_stop_the_build(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(DpbenchError, match=r"WarwickCRC: shard (\S+) fails verification after writing \(sample "
                                           r"img\d+ lacks an image, cls or json entry\)") as error:
        build(tmp_path, monkeypatch, "img{}.tif_Row_1")  # the old UMCM keys: "...05_008.tif_Row_151_Col_1"
    out = tmp_path / "out"
    assert not (out / MANIFEST).exists()  # nothing recorded as built
    bad = str(error.value).split(" shard ")[1].split(" ")[0]
    assert bad.startswith(f"{TASK.name}/") and not (out / bad).exists()  # removed: a rerun writes it again


def test_a_shard_missing_its_labels_stops_the_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    encode = builder.encode_sample

    def without_cls(key: str, image: bytes, ext: str, label: int, record: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in encode(key, image, ext, label, record).items() if k != "cls"}

    monkeypatch.setattr(builder, "encode_sample", without_cls)
    with pytest.raises(DpbenchError, match="fails verification"):
        build(tmp_path, monkeypatch, "img{}")
    assert not (tmp_path / "out" / MANIFEST).exists()
