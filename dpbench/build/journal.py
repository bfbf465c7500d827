"""What a build wrote, shard by shard, so that a resumed build trusts only shards it can check.

A shard is reused only when its sha256 is one this pool recorded for it: the manifest's entry, or, for a build
killed before it wrote its manifest (or a manifest deleted since), the journal entry written the moment the shard
was renamed into place. A shard with neither (or with bytes that no longer match) is written again, so a corrupt
shard never has its bad hash copied into a new manifest.
"""

from __future__ import annotations

import json
from pathlib import Path

from dpbench.io import atomic_write_json, sha256_file

JOURNAL_DIR = ".cache/build"


class ShardJournal:
    """``root/.cache/build/<task>.json``: shard path → sha256 of the bytes the build wrote there."""

    def __init__(self, root: Path, task: str) -> None:
        self.path = root / JOURNAL_DIR / f"{task}.json"
        try:
            loaded = json.loads(self.path.read_text())
            self.hashes: dict[str, str] = {str(k): str(v) for k, v in loaded.items()}
        except (OSError, ValueError, AttributeError):
            self.hashes = {}

    def record(self, rel: str, sha256: str) -> None:
        """Remember (on disk at once) that the build wrote ``rel`` with this sha256."""
        self.hashes[rel] = sha256
        atomic_write_json(self.path, self.hashes)

    def forget(self, rel: str) -> None:
        if self.hashes.pop(rel, None) is not None:
            atomic_write_json(self.path, self.hashes)

    def record_file(self, root: Path, path: Path) -> str:
        """Hash a shard just written and record it; returns the sha256."""
        sha = sha256_file(path)
        self.record(path.relative_to(root).as_posix(), sha)
        return sha
