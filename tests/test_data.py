"""Loaders: the per-task loader returns the split exactly; the multi-task stream is uniform over tasks."""

from __future__ import annotations

import io
import itertools
import json
import zlib
from collections import Counter
from pathlib import Path

import imagecodecs
import numpy as np
import pytest
import torch
from PIL import Image
from scipy.stats import chisquare

from dpbench.errors import DpbenchError
from dpbench.pool.read import MultiTaskStream, _fast_png, decode_rgb, task_dataset
from dpbench.tasks import get_task


def test_task_loader_yields_the_split_with_labels(small_pool: Path) -> None:
    split = json.loads((small_pool / "synthetic-Janowczyk7" / "split.json").read_text())["samples"]
    rows = list(task_dataset(small_pool, "synthetic-Janowczyk7", "val"))
    assert sorted(meta["key"] for _, _, meta in rows) == sorted(k for k, s in split.items() if s == "val")
    image, label, meta = rows[0]
    assert image.mode == "RGB" and image.size == (64, 64)
    assert label == meta["label"] and 0 <= label < 3


def test_task_loader_transform_and_seeded_shuffle(small_pool: Path) -> None:
    def to_tensor(image: object) -> torch.Tensor:
        return torch.from_numpy(np.array(image)).permute(2, 0, 1)

    first = [m["key"] for _, _, m in task_dataset(small_pool, "synthetic-Necrosis", "train", shuffle=50, seed=3)]
    again = [m["key"] for _, _, m in task_dataset(small_pool, "synthetic-Necrosis", "train", shuffle=50, seed=3)]
    plain = [m["key"] for _, _, m in task_dataset(small_pool, "synthetic-Necrosis", "train")]
    assert first == again and sorted(first) == sorted(plain) and first != plain
    tensor, _, _ = next(iter(task_dataset(small_pool, "synthetic-Necrosis", "train", transform=to_tensor)))
    assert tensor.shape == (3, 64, 64) and tensor.dtype == torch.uint8


def test_multitask_stream_draws_tasks_uniformly_and_reaches_every_image(small_pool: Path) -> None:
    tasks = ["synthetic-Necrosis", "synthetic-WarwickCRC", "synthetic-Janowczyk7"]
    stream = MultiTaskStream(small_pool, tasks, "train", seed=7, buffer=16)
    draws = list(itertools.islice(stream, 1500))
    counts = Counter(index for index, _, _ in draws)
    assert chisquare([counts[i] for i in range(3)]).pvalue > 0.001
    smallest = min(tasks, key=lambda t: get_task(t).sizes.train.images)
    index = tasks.index(smallest)
    n_train = get_task(smallest).sizes.train.images
    seen = {np.asarray(image).tobytes() for i, image, _ in draws if i == index}
    assert len(seen) == n_train  # every training image of the smallest task was drawn
    again = [(i, lab) for i, _, lab in itertools.islice(MultiTaskStream(small_pool, tasks, seed=7, buffer=16), 200)]
    assert again == [(i, lab) for i, _, lab in draws[:200]]


def test_loader_errors_are_clear(small_pool: Path, tmp_path: Path) -> None:
    with pytest.raises(DpbenchError, match="not in this build"):
        task_dataset(small_pool, "synthetic-Lung", "train")
    with pytest.raises(DpbenchError, match="unknown split"):
        task_dataset(small_pool, "synthetic-Necrosis", "training")
    with pytest.raises(DpbenchError, match=r"no manifest\.json"):
        task_dataset(tmp_path, "synthetic-Necrosis", "train")


DECODE_CASES = [*((mode, "png") for mode in ("RGB", "L", "RGBA", "P", "LA", "1", "I;16")),
                ("RGB", "jpg"), ("L", "jpg"), ("CMYK", "jpg"), ("RGB", "tiff"), ("RGBA", "tiff"), ("P", "tiff"),
                ("RGB", "webp"), ("RGBA", "webp")]


@pytest.mark.parametrize(("mode", "ext"), DECODE_CASES)
def test_decode_rgb_equals_pil_for_every_mode_and_format(mode: str, ext: str) -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (21, 30, 3), dtype=np.uint8)
    image = Image.fromarray(pixels)
    image = {"P": lambda: image.quantize(16), "I;16": lambda: Image.fromarray(pixels[..., 0].astype(np.uint16) * 257),
             }.get(mode, lambda: image.convert(mode))()
    buffer = io.BytesIO()
    image.save(buffer, format={"jpg": "JPEG", "tiff": "TIFF", "webp": "WEBP", "png": "PNG"}[ext])
    data = buffer.getvalue()
    with Image.open(io.BytesIO(data)) as opened:
        expected = np.asarray(opened.convert("RGB"))
    decoded = decode_rgb({ext: data, "__key__": "k"})
    assert decoded.dtype == np.uint8 and decoded.shape == (21, 30, 3)
    np.testing.assert_array_equal(decoded, expected)
    assert (_fast_png(data) is not None) == (ext == "png" and mode in ("RGB", "L"))  # the fast path's scope


def test_decode_rgb_corrupt_png_raises_pil_error_and_no_image_is_clear() -> None:
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(buffer, format="PNG")
    with pytest.raises(OSError):  # PIL's error, as before the fast path existed
        decode_rgb({"png": buffer.getvalue()[:40], "__key__": "k"})
    with pytest.raises(DpbenchError, match="has no image; run dpbench verify"):
        decode_rgb({"cls": b"0", "__key__": "k", "__url__": "x.tar"})


def test_interlaced_png_is_left_to_pil(monkeypatch: pytest.MonkeyPatch) -> None:
    decoded: list[bytes] = []
    real_decode = imagecodecs.png_decode
    monkeypatch.setattr(imagecodecs, "png_decode", lambda data: decoded.append(data) or real_decode(data))
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((13, 17, 3), dtype=np.uint8)).save(buffer, format="PNG")  # PIL writes no Adam7
    data = bytearray(buffer.getvalue())
    assert _fast_png(bytes(data)) is not None
    data[28] = 1  # IHDR interlace method: Adam7 (and the chunk's CRC to match)
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")
    assert _fast_png(bytes(data)) is None
    assert len(decoded) == 1  # the header alone sent it to PIL: libpng never saw the interlaced file
