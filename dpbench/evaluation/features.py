"""Feature extraction from shards, cached under a key that changes whenever its inputs do.

The cache key hashes the encoder's weights fingerprint, its input transform, the sha256 of every shard
read and the numeric precision, so a stale cache is never reused.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import hashlib
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from dpbench.encoders import Encoder
from dpbench.encoders.base import one_line
from dpbench.encoders.base import resolve_device as resolve_device  # re-exported: callers import it from here
from dpbench.errors import DpbenchError, out_of_memory
from dpbench.io import atomic_write_bytes
from dpbench.pool.built import BuiltPool, as_pool
from dpbench.pool.manifest import Manifest
from dpbench.pool.read import decode_rgb, raw_shard_dataset

Precision = Literal["fp32", "bf16"]
Row = tuple[np.ndarray, int, str, str]  # one encoded sample: (features, label, sample key, group)
FEATURE_FORMAT = 3


@dataclass(frozen=True)
class Features:
    """Features of one task split, aligned with labels, sample keys and group ids."""

    x: np.ndarray  # (n, D) float32
    y: np.ndarray  # (n,) int64
    keys: np.ndarray  # (n,) str
    groups: np.ndarray  # (n,) str
    cached: bool = False


def cache_key(encoder: Encoder, manifest: Manifest, task: str, split: str, precision: Precision) -> str:
    """sha256 of everything the features depend on."""
    shards = sorted(s.sha256 for s in manifest.shards_of(task, split))
    payload = {"format": FEATURE_FORMAT, "encoder": encoder.fingerprint(), "input": encoder.input.to_dict(),
               "shards": shards, "precision": precision, "task": task, "split": split}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def extract_splits(encoder: Encoder, pool: BuiltPool | Path, pairs: list[tuple[str, str]], *, device: str = "auto",
                   batch_size: int = 64, workers: int = 0, precision: Precision = "fp32", channels_last: bool = False,
                   cache_dir: Path | None = None, on_batch: Callable[[int], None] | None = None,
                   ) -> dict[tuple[str, str], Features]:
    """Features of several (task, split) pairs: cached ones are loaded, the rest extracted in one pass.

    If the pass stops (the encoder runs out of memory, an interrupt), the pairs whose samples had all been encoded
    are cached first, so a rerun (with a smaller batch, say: the batch size is not part of the key) reuses them.
    """
    if batch_size < 1:
        raise DpbenchError(f"the batch size must be >= 1, got {batch_size}")
    pool = as_pool(pool)
    root, manifest = pool.root, pool.manifest
    found: dict[tuple[str, str], Features] = {}
    keys = {pair: cache_key(encoder, manifest, *pair, precision) for pair in pairs}
    for pair in pairs:
        manifest.task(pair[0])
        path = cache_dir / f"{keys[pair]}.npz" if cache_dir else None
        if path and path.is_file():
            with np.load(path, allow_pickle=False) as data:
                found[pair] = Features(data["x"], data["y"], data["keys"], data["groups"], cached=True)
    todo = [p for p in pairs if p not in found]
    if not todo:
        return found
    urls = [str(root / s.path) for t, sp in todo for s in manifest.shards_of(t, sp)]
    if not urls:
        raise DpbenchError(f"no samples for {', '.join('/'.join(p) for p in todo)} in {root}")
    expected = {pair: sum(s.count for s in manifest.shards_of(*pair)) for pair in todo}
    parts: dict[tuple[str, str], list[Row]] = {p: [] for p in todo}

    def keep(pair: tuple[str, str]) -> None:
        found[pair] = _assemble(encoder, root, pair, parts[pair], expected[pair])
        if cache_dir:
            _save(found[pair], cache_dir / f"{keys[pair]}.npz")

    try:
        for rows, labels, metas in forward_shards(encoder, urls, device=device, batch_size=batch_size,
                                                  workers=workers, precision=precision, channels_last=channels_last):
            for row, label, meta in zip(rows, labels, metas, strict=True):
                parts[(meta["task"], meta["split"])].append((row, label, meta["key"], meta["group"]))
            if on_batch:
                on_batch(len(metas))
    except BaseException as exc:  # keep what is finished; an interrupt too
        finished = [p for p in todo if len(parts[p]) == expected[p]] if cache_dir else []
        for pair in finished:
            with contextlib.suppress(DpbenchError):
                keep(pair)
        if isinstance(exc, DpbenchError) and finished:
            raise DpbenchError(f"{exc}; the features of {len(finished)} finished split(s) are cached, and the "
                               "rerun reuses them") from exc
        raise
    for pair in todo:  # each pair is checked and cached on its own: one bad task does not discard the others
        keep(pair)
    return found


def _assemble(encoder: Encoder, root: Path, pair: tuple[str, str], rows: list[Row], expected: int) -> Features:
    """One pair's rows in key order (independent of worker interleaving), checked against the manifest."""
    ordered = sorted(rows, key=lambda r: r[2])
    if len(ordered) != expected or len({r[2] for r in ordered}) != expected:
        raise DpbenchError(f"read {len(ordered)} samples of {pair[0]}/{pair[1]}, the manifest lists {expected}; "
                           f"run dpbench verify {root}")
    x = np.stack([r[0] for r in ordered]).astype(np.float32)
    if not np.isfinite(x).all():
        raise DpbenchError(f"encoder {encoder.spec} produced NaN or infinite features on {pair[0]}/{pair[1]}; "
                           "run dpbench check-encoder, or try --precision fp32")
    return Features(x, np.array([r[1] for r in ordered], dtype=np.int64), np.array([r[2] for r in ordered]),
                    np.array([r[3] for r in ordered]))


def _save(features: Features, path: Path) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, x=features.x, y=features.y, keys=features.keys, groups=features.groups)
    try:
        atomic_write_bytes(path, buffer.getvalue())
    except OSError as exc:
        raise DpbenchError(f"cannot write the feature cache {path}: {exc.strerror or exc}; free space there or "
                           "pass --no-cache") from exc


def _uint8_sample(sample: dict[str, Any]) -> tuple[torch.Tensor, int, dict[str, Any]]:
    """Raw sample → ((3, h, w) uint8 tile at its own size, label, record); the resize happens on the device."""
    pixels = torch.from_numpy(decode_rgb(sample)).permute(2, 0, 1)
    return pixels, int(sample["cls"]), json.loads(sample["json"])


def resize_batch(images: torch.Tensor, size: int, mode: str = "bilinear") -> torch.Tensor:
    """(B, 3, h, w) → float (B, 3, size, size): ``mode`` (the encoder's ``InputSpec.interpolation``) with
    antialiasing, PIL's filter within one grey level (bicubic overshoot clipped to 0..255, as PIL's uint8 is)."""
    x = images.float()
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode=mode, antialias=True, align_corners=False)
        if mode == "bicubic":
            x = x.clamp(0, 255)
    return x


def _collate_uint8(batch: list[tuple[torch.Tensor, int, dict[str, Any]]],
                   size: int, mode: str = "bilinear") -> tuple[torch.Tensor, torch.Tensor, list[Any]]:
    shapes = {b[0].shape for b in batch}
    if len(shapes) == 1:
        images = torch.stack([b[0] for b in batch])
    else:  # mixed tile sizes (tasks with different patch sizes): resize here, exactly as on the device
        images = torch.cat([resize_batch(b[0][None], size, mode) for b in batch])
    return images, torch.tensor([b[1] for b in batch], dtype=torch.long), [b[2] for b in batch]


def tile_loader(urls: list[str], size: int, batch_size: int, workers: int = 0,
                pin_memory: bool = False, mode: str = "bilinear") -> DataLoader[Any]:
    """Batches of (uint8 tiles, labels, sample records) in shard order: :func:`forward_shards`'s input pipeline."""
    return DataLoader(raw_shard_dataset(urls).map(_uint8_sample), batch_size=batch_size, num_workers=workers,
                      collate_fn=functools.partial(_collate_uint8, size=size, mode=mode), pin_memory=pin_memory,
                      prefetch_factor=4 if workers else None)


def forward_shards(encoder: Encoder, urls: list[str], *, device: str = "auto", batch_size: int = 64, workers: int = 0,
                   precision: Precision = "fp32", channels_last: bool = False,
                   ) -> Iterator[tuple[np.ndarray, list[int], list[dict[str, Any]]]]:
    """Batches of (features, labels, sample records) read from shards, decoded, transformed and encoded.

    Workers only decode: uint8 tiles travel at their own size, and resizing and normalisation run on the
    device (equal to the encoder's eval transform within PIL's uint8 rounding). On CUDA the host never waits for
    the batch it just queued: features come back through pinned memory, and batch i is handed over once its copy
    has landed, while the device already computes batch i + 1.
    """
    dev = resolve_device(device)
    cuda = dev.type == "cuda"
    size, mode = encoder.input.size, encoder.input.interpolation
    loader = tile_loader(urls, size, batch_size, workers, pin_memory=cuda, mode=mode)
    module = encoder.module.to(dev).eval()
    if channels_last:
        module = module.to(memory_format=torch.channels_last)
    mean = torch.tensor(encoder.input.mean, device=dev).view(1, 3, 1, 1) * 255
    std = torch.tensor(encoder.input.std, device=dev).view(1, 3, 1, 1) * 255
    autocast = torch.autocast(dev.type, dtype=torch.bfloat16, enabled=precision == "bf16")
    queued: collections.deque[tuple[torch.Tensor, Any, list[int], list[dict[str, Any]]]] = collections.deque()
    with torch.inference_mode():
        for images, labels, metas in loader:
            try:
                batch = (resize_batch(images.to(dev, non_blocking=True), size, mode) - mean) / std
                if channels_last:
                    batch = batch.contiguous(memory_format=torch.channels_last)
                with autocast:
                    out = module(batch)
            except Exception as exc:  # the encoder failed: hand over the batches already encoded, then say why
                while queued:
                    yield _landed(queued.popleft())
                raise _failure(encoder, exc, len(metas), batch_size, dev) from exc
            if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != batch.shape[0]:
                shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
                raise DpbenchError(f"encoder {encoder.spec} returned {shape} for a batch of {batch.shape[0]}; "
                                   "it must return (batch, features): run dpbench check-encoder")
            host = out.float().to("cpu", non_blocking=cuda)  # pinned on CUDA: the copy is queued, not awaited
            done = torch.cuda.Event() if cuda else None  # type: ignore[no-untyped-call]
            if done is not None:
                done.record(torch.cuda.current_stream(dev))  # dev's stream, where the copy runs (cuda:N too)
            queued.append((host, done, labels.tolist(), metas))
            if len(queued) > 1:
                yield _landed(queued.popleft())
        while queued:
            yield _landed(queued.popleft())


def _failure(encoder: Encoder, exc: Exception, n: int, batch_size: int, dev: torch.device) -> DpbenchError:
    """One line for an encoder that raised on a batch: running out of memory names the smaller batch to use."""
    if out_of_memory(exc):
        return DpbenchError(f"encoder {encoder.spec} ran out of memory on a batch of {n} images ({dev}); rerun with "
                            f"a lower --batch-size (e.g. --batch-size {max(1, batch_size // 2)})")
    return DpbenchError(f"encoder {encoder.spec} failed on a batch of {n} images ({dev}): {one_line(exc)}; "
                        "run dpbench check-encoder")


def _landed(item: tuple[torch.Tensor, Any, list[int], list[dict[str, Any]]],
            ) -> tuple[np.ndarray, list[int], list[dict[str, Any]]]:
    """A queued batch once its device-to-host copy has finished (copied out of pinned memory, so that the
    caller's rows do not keep page-locked blocks alive)."""
    host, done, labels, metas = item
    if done is not None:
        done.synchronize()
        return host.numpy().copy(), labels, metas
    return host.numpy(), labels, metas
