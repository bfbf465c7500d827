"""Shared fixtures: a small synthetic build reused by the shard, loader and CLI tests."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from dpbench.build import BuildOptions, BuildReport, build_pool
from dpbench.tasks.registry import get_pool

#: Small, varied tasks: slide-grouped binary, image-grouped binary, patient-grouped 3-class.
SMALL_TASKS = ["synthetic-Necrosis", "synthetic-WarwickCRC", "synthetic-Janowczyk7"]
SMALL_OPTIONS = BuildOptions(shard_size=32, workers=1)
REALDATA = Path(__file__).resolve().parents[2] / "shared" / "realdata"


def build_small(root: Path, options: BuildOptions = SMALL_OPTIONS) -> BuildReport:
    return build_pool(get_pool("synthetic"), root, SMALL_TASKS, options)


@pytest.fixture(scope="session")
def small_pool(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A built pool of SMALL_TASKS; tests must not modify it (copy it first)."""
    root = tmp_path_factory.mktemp("pool") / "built"
    build_small(root)
    return root


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m dpbench ARGS`` as a user would, capturing output."""
    env = {"COLUMNS": "200", "PATH": "/usr/bin:/bin"}
    if "PYTHONPATH" in os.environ:  # a checkout run through PYTHONPATH tests its own plug-ins, not the installed ones
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return subprocess.run([sys.executable, "-m", "dpbench", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=300, env=env)


def tree_bytes(root: Path) -> dict[str, bytes]:
    """Relative path → bytes of every file under ``root`` (the verification cache under ``.cache/`` aside)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and ".cache" not in p.relative_to(root).parts}


def flip_shard_labels(path: Path) -> None:
    """Rewrite a shard with every binary label flipped: a valid tar, another file (what a tampered copy is)."""
    members = []
    with tarfile.open(path) as tar:
        for info in tar.getmembers():
            data = tar.extractfile(info).read()  # type: ignore[union-attr]
            if info.name.endswith(".cls"):
                data = str(1 - int(data)).encode()
                info.size = len(data)
            members.append((info, data))
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data))
