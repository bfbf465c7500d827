"""Pixel helpers shared by converters: reading raw images, tiling, area fractions, shifted windows."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from dpbench.errors import RawDataError

Image.MAX_IMAGE_PIXELS = None  # raw pathology frames are large by design; READ_MAX_PIXELS bounds them instead
#: The largest raw frame read whole (1.2 GB of RGB): larger ones are whole slides, read through the slide path.
READ_MAX_PIXELS = 400_000_000
_WIDE_MODES = {"I;16", "I;16L", "I;16B", "I;16N", "I"}


def _too_large(path: Path, width: int, height: int) -> None:
    if width * height > READ_MAX_PIXELS:
        raise RawDataError(f"{path} is {width}x{height} px ({width * height / 1e6:.0f} Mpx): too large to read whole; "
                           "a whole-slide image goes through the slide converters (OpenSlide), or tile it first")


def png_significant_bits(path: Path) -> int | None:
    """The significant bits the PNG's sBIT chunk declares for its first channel (e.g. 12 for 12-bit data stored in
    16-bit samples), or None when the file has no sBIT chunk."""
    with path.open("rb") as handle:
        if handle.read(8) != b"\x89PNG\r\n\x1a\n":
            return None
        while header := handle.read(8):
            if len(header) < 8:
                return None
            length, kind = int.from_bytes(header[:4], "big"), header[4:]
            if kind == b"sBIT":
                return handle.read(length)[0]
            if kind == b"IDAT":
                return None  # sBIT precedes the image data
            handle.seek(length + 4, 1)
    return None


def to_uint8(pixels: np.ndarray, bits: int, path: Path) -> np.ndarray:
    """Integer pixels of ``bits`` significant bits (≤ 16) scaled to 8 bits by their real depth (a right shift),
    never clipped: a 16-bit grey image does not turn white, a 12-bit one stored in 16 does not turn dark."""
    if pixels.dtype.kind not in "ui" or not 8 <= bits <= 16:
        raise RawDataError(f"{path} holds {pixels.dtype} pixels ({bits} bits); dpbench reads 8- to 16-bit integer "
                           "images: convert it to 8-bit RGB first")
    if int(pixels.min(initial=0)) < 0 or int(pixels.max(initial=0)) >= 1 << bits:
        raise RawDataError(f"{path}: pixel values {int(pixels.min())}..{int(pixels.max())} do not fit the "
                           f"{bits} bits the file declares; convert it to 8-bit RGB first")
    return (pixels.astype(np.uint32) >> (bits - 8)).astype(np.uint8)


def read_rgb(path: Path) -> np.ndarray:
    """RGB uint8 pixels of an image file (PNG, BMP, JPEG, TIFF; TIFF codecs Pillow lacks go to tifffile).

    16-bit (and 12-in-16-bit) images are scaled by their real bit depth (PNG sBIT, TIFF BitsPerSample)."""
    if not path.is_file():
        raise RawDataError(f"missing raw file {path}; re-extract the source archive")
    try:
        with Image.open(path) as image:
            _too_large(path, *image.size)
            if image.mode in _WIDE_MODES or image.mode.startswith("I;16"):
                if path.suffix.lower() in (".tif", ".tiff"):
                    return _read_tiff(path, None)
                bits = png_significant_bits(path) or 16
                grey = to_uint8(np.asarray(image), bits, path)
                return np.repeat(grey[..., None], 3, axis=2)
            return np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        if path.suffix.lower() in (".tif", ".tiff"):
            return _read_tiff(path, exc)
        raise RawDataError(f"cannot decode {path} ({exc}); the file is corrupt or not an image: "
                           "re-download it") from exc


def _read_tiff(path: Path, first: Exception | None) -> np.ndarray:
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.series[0].levels[0]  # level 0: the full resolution of a pyramid
            _too_large(path, int(page.shape[1]), int(page.shape[0]))
            bits = int(tif.pages[0].bitspersample)  # type: ignore[union-attr]
            pixels = np.asarray(page.asarray())
    except RawDataError:
        raise
    except Exception as exc:
        reason = f"{first}; tifffile: {exc}" if first else f"tifffile: {exc}"
        raise RawDataError(f"cannot decode {path} ({reason}); re-download it") from exc
    if pixels.dtype != np.uint8:
        pixels = to_uint8(pixels, bits, path)
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[..., None], 3, axis=2)
    if pixels.ndim != 3 or pixels.shape[2] < 3:
        raise RawDataError(f"{path} is not an RGB or grey image (shape {pixels.shape}, {pixels.dtype})")
    return np.ascontiguousarray(pixels[..., :3])


def read_mask(path: Path) -> np.ndarray:
    """A boolean mask from an annotation image (any non-zero pixel of its first channel is foreground)."""
    if not path.is_file():
        raise RawDataError(f"missing annotation mask {path}; re-extract the source archive")
    try:
        with Image.open(path) as image:
            pixels = np.asarray(image)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise RawDataError(f"cannot decode annotation mask {path} ({exc}); re-download it") from exc
    return (pixels[..., 0] if pixels.ndim == 3 else pixels) > 0


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) of an image from its header; TIFFs Pillow cannot parse are asked to tifffile."""
    if not path.is_file():
        raise RawDataError(f"missing raw file {path}; re-extract the source archive")
    try:
        with Image.open(path) as image:
            return image.size
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        if path.suffix.lower() not in (".tif", ".tiff"):
            raise RawDataError(f"cannot read {path} ({exc}); the file is corrupt or not an image") from exc
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            shape = tif.series[0].levels[0].shape
    except Exception as exc:
        raise RawDataError(f"cannot read {path} ({exc}); the file is corrupt: re-download it") from exc
    return int(shape[1]), int(shape[0])


def positions(length: int, size: int, stride: int) -> list[int]:
    """Window starts along one axis: every ``stride`` pixels while the window fits (none if it never fits)."""
    if size > length:
        return []
    return list(range(0, length - size + 1, stride))


def grid(width: int, height: int, size: int, stride: int | None = None) -> Iterator[tuple[int, int]]:
    """Top-left corners of ``size``-pixel windows tiling a ``width``x``height`` image, row by row.

    ``stride`` defaults to ``size`` (no overlap); the paper's "overlap" ``o`` is ``stride = size - o``.
    """
    step = stride or size
    for y in positions(height, size, step):
        for x in positions(width, size, step):
            yield x, y


def window_sums(mask: np.ndarray, corners: list[tuple[int, int]], size: int) -> np.ndarray:
    """Number of foreground pixels (int64) in each ``size``-pixel window of ``mask`` (via a summed-area table)."""
    table = np.pad(mask.astype(np.int64).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    xs = np.array([c[0] for c in corners], dtype=np.int64)
    ys = np.array([c[1] for c in corners], dtype=np.int64)
    return np.asarray(table[ys + size, xs + size] - table[ys, xs + size] - table[ys + size, xs] + table[ys, xs])


def area_fractions(mask: np.ndarray, corners: list[tuple[int, int]], size: int) -> np.ndarray:
    """Foreground fraction of each ``size``-pixel window of ``mask``."""
    return np.asarray(window_sums(mask, corners, size) / float(size * size))


def centred_window(cx: float, cy: float, size: int, width: int, height: int) -> tuple[int, int] | None:
    """Top-left corner of a ``size`` window centred on (cx, cy), moved inside the image; None if it cannot fit."""
    if size > width or size > height:
        return None
    x = round(cx - size / 2)
    y = round(cy - size / 2)
    return min(max(x, 0), width - size), min(max(y, 0), height - size)


def shifted_windows(rng: np.random.Generator, cx: float, cy: float, size: int, n: int, width: int, height: int,
                    max_shift: float | None = None) -> list[tuple[int, int]]:
    """``n`` windows around (cx, cy), each shifted uniformly by up to ``max_shift`` px (default: a quarter
    of the window) so that the point stays inside the window; windows are kept inside the image."""
    shift = size / 4 if max_shift is None else max_shift
    out = []
    for dx, dy in rng.uniform(-shift, shift, size=(n, 2)):
        corner = centred_window(cx + dx, cy + dy, size, width, height)
        if corner is not None:
            out.append(corner)
    return out


def points_in(points: np.ndarray, x: int, y: int, size: int) -> bool:
    """Whether any (x, y) point of the (N, 2) array falls inside the window at (x, y)."""
    if len(points) == 0:
        return False
    inside = (points[:, 0] >= x) & (points[:, 0] < x + size) & (points[:, 1] >= y) & (points[:, 1] < y + size)
    return bool(inside.any())
