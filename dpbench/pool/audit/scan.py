"""Read every image of a built pool once: metadata, a digest of the decoded pixels and a perceptual hash."""

from __future__ import annotations

import hashlib
import io
import json
import multiprocessing
import tarfile
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from dpbench.errors import DpbenchError, ShardMismatch
from dpbench.pool.manifest import Manifest, ShardEntry
from dpbench.pool.verify import checked_samples, file_problem
from dpbench.tasks.models import SPLITS


@dataclass(frozen=True)
class ShardScan:
    """What one shard holds, in file order."""

    keys: list[str]
    groups: list[str]
    labels: list[int]
    digests: bytes  # 16 bytes per image: blake2b of the decoded RGB pixels and the image size
    phashes: list[int]  # 64-bit perceptual hash per image


@dataclass
class ImageTable:
    """All scanned images as parallel arrays (index = image)."""

    tasks: list[str]  # task names; ``task`` indexes them
    task: NDArray[np.int64]
    split: NDArray[np.int64]  # index into SPLITS
    label: NDArray[np.int64]
    digest: NDArray[np.uint64]  # shape (N, 2)
    phash: NDArray[np.uint64]
    keys: list[str]
    groups: list[str]

    def __len__(self) -> int:
        return len(self.keys)


def pixel_digest(image: Image.Image) -> bytes:
    """16-byte digest of the RGB pixels: identical for any lossless re-encoding of the same image."""
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    digest = hashlib.blake2b(f"{rgb.width}x{rgb.height}:".encode(), digest_size=16)
    digest.update(rgb.tobytes())
    return digest.digest()


def perceptual_hash(image: Image.Image) -> int:
    """imagehash's 64-bit DCT hash as an integer (bit order as in its hex string)."""
    import imagehash

    bits = np.packbits(np.asarray(imagehash.phash(image, hash_size=8).hash, dtype=bool).ravel())
    return int.from_bytes(bits.tobytes(), "big")


def scan_shard(root: Path, entry: ShardEntry, n_classes: int) -> ShardScan:
    """Check one shard against its manifest entry and hash its images (raises DpbenchError when broken)."""
    fix = f"run dpbench verify {root}, then rebuild or re-download the pool"
    problem = file_problem(root / entry.path, entry)
    if problem:
        raise DpbenchError(f"shard {entry.path} is {problem}: {fix}" if problem == "missing"
                           else f"shard {entry.path}: {problem}; {fix}")
    keys: list[str] = []
    groups: list[str] = []
    labels: list[int] = []
    digests: list[bytes] = []
    phashes: list[int] = []
    try:
        for key, ext, label, parts in checked_samples(root / entry.path, entry.count, n_classes):
            record = json.loads(parts["json"])
            with Image.open(io.BytesIO(parts[ext])) as opened:
                image = opened.convert("RGB")
            keys.append(key)
            groups.append(str(record.get("group", key)))
            labels.append(label)
            digests.append(pixel_digest(image))
            phashes.append(perceptual_hash(image))
    except ShardMismatch as bad:
        if bad.kind == "count":
            raise DpbenchError(f"shard {entry.path} holds {bad.count} samples, the manifest says {entry.count}; "
                               f"{fix}") from None
        tail = f"; {fix}" if bad.kind == "entries" else ""
        raise DpbenchError(f"sample {bad.key} in {entry.path} {bad.what}{tail}") from None
    except (tarfile.TarError, OSError, ValueError, AttributeError) as exc:
        raise DpbenchError(f"shard {entry.path} is unreadable ({exc.__class__.__name__}: {exc}); {fix}") from exc
    return ShardScan(keys, groups, labels, b"".join(digests), phashes)


def _scan_job(job: tuple[Path, ShardEntry, int]) -> ShardScan:
    return scan_shard(*job)


def _scans(jobs: list[tuple[Path, ShardEntry, int]], workers: int) -> Iterator[ShardScan]:
    if workers <= 1 or len(jobs) <= 1:
        yield from map(_scan_job, jobs)
        return
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=ctx) as executor:
        yield from executor.map(_scan_job, jobs)


def scan_pool(root: Path, manifest: Manifest, tasks: list[str], workers: int = 1,
              on_shard: Callable[[int], None] | None = None) -> ImageTable:
    """Scan the shards of ``tasks`` (in manifest order); ``on_shard`` gets each shard's image count."""
    classes = {t.name: len(t.classes) for t in manifest.tasks}
    entries = [s for s in manifest.shards if s.task in tasks]
    jobs = [(root, s, classes[s.task]) for s in entries]
    task_ids: list[int] = []
    split_ids: list[int] = []
    keys: list[str] = []
    groups: list[str] = []
    labels: list[int] = []
    digests: list[bytes] = []
    phashes: list[int] = []
    for entry, scan in zip(entries, _scans(jobs, workers), strict=True):
        n = len(scan.keys)
        task_ids += [tasks.index(entry.task)] * n
        split_ids += [SPLITS.index(entry.split)] * n
        keys += scan.keys
        groups += scan.groups
        labels += scan.labels
        digests.append(scan.digests)
        phashes += scan.phashes
        if on_shard:
            on_shard(n)
    digest = np.frombuffer(b"".join(digests), dtype=np.uint64).reshape(-1, 2)
    return ImageTable(tasks=list(tasks), task=np.array(task_ids, dtype=np.int64),
                      split=np.array(split_ids, dtype=np.int64), label=np.array(labels, dtype=np.int64),
                      digest=digest, phash=np.array(phashes, dtype=np.uint64), keys=keys, groups=groups)
