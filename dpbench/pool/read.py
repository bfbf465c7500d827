"""Reading built pools: a per-task loader and the paper's multi-task sampler (§IV-B).

Both read the webdataset shards listed in ``manifest.json``; images decode to RGB PIL images, or to
whatever ``transform`` returns.
"""

from __future__ import annotations

import functools
import io
import json
import os
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import imagecodecs
import numpy as np
import webdataset as wds
from PIL import Image
from torch.utils.data import IterableDataset
from webdataset.compat import FluidInterface
from webdataset.tariterators import group_by_keys

from dpbench.errors import DpbenchError
from dpbench.pool.manifest import IMAGE_EXTS, PoolFolder, as_folder
from dpbench.pool.tarstream import expand_local_shards

Transform = Callable[[Image.Image], Any]


def shard_urls(pool: PoolFolder | Path, task: str, split: str) -> list[str]:
    """Paths of a task split's shards, from the pool's manifest (errors name the fix)."""
    return [str(p) for p in as_folder(pool).shards(task, split)]


def epoch_seed(seed: int, index: int, epoch: int) -> int:
    """The shuffle seed of epoch ``epoch`` of task ``index`` in a multi-task stream seeded ``seed``."""
    return seed * 1_000_003 + index * 7_919 + epoch


def task_dataset(pool: PoolFolder | Path, task: str, split: str, transform: Transform | None = None,
                 shuffle: int = 0, seed: int = 0) -> ShardPipeline:
    """Samples of one task split as ``(image, label, metadata)`` tuples, shard order unless ``shuffle``.

    ``shuffle`` is a buffer size; with it, shards and samples are shuffled from ``seed``.
    """
    pool = as_folder(pool)
    urls = shard_urls(pool, task, split)
    if not urls:
        raise DpbenchError(f"task {task} has no {split} samples in {pool.root}")
    return shard_dataset(urls, transform, shuffle, seed)


def shard_dataset(urls: list[str], transform: Transform | None = None, shuffle: int = 0,
                  seed: int = 0) -> ShardPipeline:
    """``(image, label, metadata)`` tuples from dpbench shards given by path or URL."""
    pipeline: ShardPipeline = raw_shard_dataset(urls, shuffle, seed).map(
        functools.partial(decode_sample, transform=transform))
    return pipeline


class ShardPipeline(wds.DataPipeline, FluidInterface):  # type: ignore[misc]  # webdataset is untyped
    """A webdataset pipeline with its fluid methods (``.map``, ``.shuffle``...), as ``wds.WebDataset`` has."""


def raw_shard_dataset(urls: list[str], shuffle: int = 0, seed: int = 0, *, every_process: bool = False,
                      lazy_over: int | None = None) -> ShardPipeline:
    """Undecoded webdataset samples of dpbench shards, in :func:`shard_dataset`'s order.

    ``shuffle`` is a buffer size; with it, shards and samples are shuffled from ``seed``. ``every_process``: no
    node splitting, every distributed process reads every shard (default: refuse to run distributed).
    ``lazy_over``: members of local shards larger than this many bytes come unread, as
    :class:`dpbench.pool.tarstream.MemberRef` (:func:`dpbench.pool.tarstream.resolve` reads them).

    The stages and their order are ``wds.WebDataset``'s (shard list, node and worker splitting, shard shuffle,
    members, grouping by key, sample shuffle), so the order is the same; for local files the members are read
    by :func:`dpbench.pool.tarstream.expand_local_shards`, several times faster than webdataset's tarfile stream.
    """
    stages: list[Any] = [wds.SimpleShardList(urls)]
    stages += [] if every_process else [wds.shardlists.single_node_only]
    stages.append(wds.split_by_worker)
    stages += [wds.filters.shuffle(len(urls), seed=seed)] if shuffle else []
    if all(os.path.isfile(u) for u in urls):
        stages += [functools.partial(expand_local_shards, lazy_over=lazy_over), group_by_keys]
    else:  # URLs (http://, pipe:...): webdataset's opener and tar reader
        stages.append(wds.tarfile_to_samples())
    pipeline = ShardPipeline(*stages)
    if shuffle:
        pipeline = pipeline.shuffle(shuffle, rng=random.Random(seed))
    return pipeline


def _fast_png(data: bytes) -> np.ndarray | None:
    """8-bit RGB or grey PNG → (h, w, 3) uint8 via libpng (imagecodecs: ~1.6x PIL's decode); None otherwise."""
    # IHDR: bit depth at byte 24, colour type at 25 (0 grey, 2 RGB), interlace at 28; palette, alpha, 16-bit and
    # interlaced files go to PIL. (libpng accepts a bad CRC on an ancillary chunk, which PIL rejects; shard
    # checksums, not the decoder, are what catch corrupt files.)
    if len(data) < 29 or data[24] != 8 or data[25] not in (0, 2) or data[28] != 0:
        return None
    try:
        pixels = imagecodecs.png_decode(data)
    except Exception:  # corrupt or unusual file: PIL decides (and raises its own error)
        return None
    if pixels.dtype != np.uint8:
        return None
    if pixels.ndim == 2:  # grey: PIL's L → RGB replicates the channel
        return np.repeat(pixels[:, :, None], 3, axis=2)
    return pixels if pixels.ndim == 3 and pixels.shape[2] == 3 else None


def decode_rgb(sample: dict[str, Any]) -> np.ndarray:
    """The sample's image as a (h, w, 3) uint8 array, exactly as PIL's ``convert("RGB")`` gives it.

    8-bit RGB and grey PNGs (what dpbench writes) take a faster decoder; every other image goes through PIL.
    """
    ext = next((e for e in IMAGE_EXTS if e in sample), None)
    if ext is None:
        raise DpbenchError(f"sample {sample.get('__key__')} in {sample.get('__url__')} has no image; "
                           "run dpbench verify on the pool")
    pixels = _fast_png(sample[ext]) if ext == "png" else None
    if pixels is None:
        with Image.open(io.BytesIO(sample[ext])) as opened:
            pixels = np.array(opened.convert("RGB"))  # writable, like the fast path's
    return pixels


def decode_sample(sample: dict[str, Any], transform: Transform | None = None) -> tuple[Any, int, dict[str, Any]]:
    """Raw webdataset sample → (RGB image or ``transform(image)``, label, metadata record)."""
    image = Image.fromarray(decode_rgb(sample))
    return (transform(image) if transform else image), int(sample["cls"]), json.loads(sample["json"])


class MultiTaskStream(IterableDataset[tuple[int, Any, int]]):
    """Endless ``(task index, image, label)``: pick a task uniformly, then the next image of that task.

    Each task cycles through its split in a freshly shuffled order every epoch, so every image of a
    small task is reached while large tasks are not over-represented (the paper's sampling).
    """

    def __init__(self, pool: PoolFolder | Path, tasks: list[str], split: str = "train",
                 transform: Transform | None = None, seed: int = 0, buffer: int = 1000) -> None:
        super().__init__()
        if not tasks:
            raise DpbenchError("the multi-task stream needs at least one task")
        pool = as_folder(pool)
        self._urls: list[list[str]] = []  # per task
        for task in tasks:
            self._urls.append(shard_urls(pool, task, split))
            if not self._urls[-1]:
                raise DpbenchError(f"task {task} has no {split} samples in {pool.root}")
        self.root, self.tasks, self.split = pool.root, list(tasks), split
        self.transform, self.seed, self.buffer = transform, seed, buffer

    def _cycle(self, index: int) -> Iterator[tuple[Any, int]]:
        epoch = 0
        while True:
            data = shard_dataset(self._urls[index], self.transform, self.buffer, epoch_seed(self.seed, index, epoch))
            for image, label, _meta in data:
                yield image, label
            epoch += 1

    def __iter__(self) -> Iterator[tuple[int, Any, int]]:
        rng = np.random.default_rng(self.seed)
        streams = [self._cycle(i) for i in range(len(self.tasks))]
        while True:
            index = int(rng.integers(len(self.tasks)))
            image, label = next(streams[index])
            yield index, image, label
