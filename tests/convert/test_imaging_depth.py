"""Raw images read by their real bit depth, and images too large to read or to store refused with one line."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dpbench.convert import base as base_module
from dpbench.convert.imaging import READ_MAX_PIXELS, read_rgb
from dpbench.errors import RawDataError
from dpbench.tasks import get_task


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def with_sbit(path: Path, bits: int) -> None:
    """Insert an sBIT chunk (significant bits of the grey channel) right after IHDR, as 12-bit cameras write."""
    data = path.read_bytes()
    end_of_ihdr = 8 + 8 + 13 + 4
    path.write_bytes(data[:end_of_ihdr] + _chunk(b"sBIT", bytes([bits])) + data[end_of_ihdr:])


def test_a_16_bit_grey_png_keeps_its_contrast(tmp_path: Path) -> None:
    """Pillow's convert("RGB") clips 16-bit values to 255: the image would be stored all white."""
    values = np.linspace(0, 65535, 64 * 64).astype(np.uint16).reshape(64, 64)
    path = tmp_path / "grey16.png"
    Image.fromarray(values).save(path)
    pixels = read_rgb(path)
    assert pixels.dtype == np.uint8 and pixels.shape == (64, 64, 3)
    np.testing.assert_array_equal(pixels[..., 0], values >> 8)
    assert pixels.min() == 0 and pixels.max() == 255


def test_12_bit_data_in_16_bit_samples_is_scaled_by_its_sbit(tmp_path: Path) -> None:
    values = np.linspace(0, 4095, 32 * 32).astype(np.uint16).reshape(32, 32)
    path = tmp_path / "grey12.png"
    Image.fromarray(values).save(path)
    with_sbit(path, 12)
    np.testing.assert_array_equal(read_rgb(path)[..., 1], values >> 4)
    bad = np.full((4, 4), 5000, dtype=np.uint16)  # does not fit the 12 bits the file declares
    Image.fromarray(bad).save(path)
    with_sbit(path, 12)
    with pytest.raises(RawDataError, match="do not fit the 12 bits"):
        read_rgb(path)


def test_a_16_bit_tiff_is_scaled_by_its_bits_per_sample(tmp_path: Path) -> None:
    import tifffile

    values = np.linspace(0, 65535, 48 * 48).astype(np.uint16).reshape(48, 48)
    path = tmp_path / "grey16.tif"
    tifffile.imwrite(path, values)
    np.testing.assert_array_equal(read_rgb(path)[..., 2], values >> 8)
    rgb = np.stack([values, values // 2, values // 4], axis=2)
    tifffile.imwrite(path, rgb, photometric="rgb")
    np.testing.assert_array_equal(read_rgb(path), (rgb >> 8).astype(np.uint8))


def test_a_raw_frame_too_large_to_read_whole_is_refused_from_its_header(tmp_path: Path) -> None:
    width, height = 20_000, READ_MAX_PIXELS // 20_000 + 1
    row = b"\x00" + b"\x00" * (width // 8)  # 1-bit grey rows, filter byte first
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    idat = zlib.compress(row * height, 1)
    path = tmp_path / "huge.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b""))
    with pytest.raises(RawDataError, match=r"20000x\d+ px .*too large to read whole"):
        read_rgb(path)


def test_an_image_too_large_for_a_shard_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A whole-image task given a slide-sized image: refused with the fix, instead of a 6 GB shard entry that
    verify and audit then cannot decode (PIL's decompression-bomb limit)."""
    monkeypatch.setattr(base_module, "STORED_MAX_PIXELS", 1000)
    converter = base_module.Converter.__new__(base_module.Converter)
    converter.task = get_task("Bach18Micro")
    converter.resize_to = None
    with pytest.raises(RawDataError, match=r"big\.png is 40x30 px .*tile or crop it"):
        converter.finish(np.zeros((30, 40, 3), dtype=np.uint8), "big.png")
    assert converter.finish(np.zeros((30, 30, 3), dtype=np.uint8), "ok.png").startswith(b"\x89PNG")
