"""Licence-aware selection: --licence-allow for build and eval, and names checked against the vocabulary."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest
from conftest import run_cli

from dpbench.errors import RegistryError
from dpbench.tasks.registry import get_pool, licence_filter, pool_tasks
from tests.convert.test_umcm_colorectal import make_raw


def test_filter_keeps_only_allowed_licences_and_rejects_unknown_names() -> None:
    tasks = pool_tasks(get_pool("mormont2020"))
    kept = licence_filter(tasks, ["CC0-1.0,CC-BY-4.0"])
    assert kept and {t.licence for t in kept} <= {"CC0-1.0", "CC-BY-4.0"}
    assert {t.name for t in kept} >= {"Camelyon16", "UmcmColorectal"}
    assert "Bach18Micro" not in {t.name for t in kept}  # CC-BY-NC-ND
    assert licence_filter(tasks, None) == tasks
    with pytest.raises(RegistryError, match="CC-BY"):
        licence_filter(tasks, ["CC-BY"])


def test_build_from_raw_with_licence_allow(tmp_path: Path) -> None:
    make_raw(tmp_path / "raw", per_class=2)
    out = tmp_path / "out"
    done = run_cli("build", "--pool", "mormont2020", "--raw", str(tmp_path / "raw"), "--out", str(out),
                   "--licence-allow", "CC-BY-4.0", "--workers", "1")
    assert done.returncode == 0, done.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert [t["name"] for t in manifest["tasks"]] == ["UmcmColorectal"]
    assert "Bach18Micro" not in done.stdout  # the NC-ND task was not even tried
    shard = next(out.glob("UmcmColorectal/train-*.tar"))
    with tarfile.open(shard) as tf:
        member = next(m for m in tf.getmembers() if m.name.endswith(".json"))
        record = json.loads(tf.extractfile(member).read())  # type: ignore[union-attr]
    assert record["licence"] == "CC-BY-4.0" and record["source_id"] == "umcm_colorectal"
    assert record["redistributable"] is True and record["source"].endswith(".tif")
    none = run_cli("build", "--pool", "mormont2020", "--raw", str(tmp_path / "raw"), "--out", str(out),
                   "--licence-allow", "MIT")
    assert none.returncode == 2 and "no task of pool mormont2020" in none.stderr


def test_eval_licence_allow_selects_tasks(small_pool: Path, tmp_path: Path) -> None:
    refused = run_cli("eval", "--encoder", "random", "--input-size", "32", "--data", str(small_pool),
                      "--licence-allow", "CC-BY-NC-4.0", "--out", str(tmp_path / "r"))
    assert refused.returncode == 2 and "no task in" in refused.stderr and "Traceback" not in refused.stderr
    bad = run_cli("eval", "--encoder", "random", "--data", str(small_pool), "--licence-allow", "WTFPL")
    assert bad.returncode == 2 and "unknown licence" in bad.stderr
