"""Near-duplicate search on 64-bit perceptual hashes without comparing every pair.

Pigeonhole: split the 64 bits into ``threshold + 1`` bands; two hashes within Hamming distance
``threshold`` agree exactly on at least one band. Per band, hashes are sorted by the band's value and
only hashes in the same run are compared, so the work is the number of candidates, not N².
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

MAX_THRESHOLD = 16
U64 = NDArray[np.uint64]
I64 = NDArray[np.int64]

_BYTE_COUNTS = np.array([bin(b).count("1") for b in range(256)], dtype=np.int64)


def popcount(values: U64) -> I64:
    """Number of set bits of each uint64."""
    if hasattr(np, "bitwise_count"):  # numpy >= 2.0
        return np.bitwise_count(values).astype(np.int64)
    counts: I64 = _BYTE_COUNTS[values.view(np.uint8)].reshape(-1, 8).sum(axis=1)  # pragma: no cover
    return counts  # pragma: no cover


def bands(threshold: int) -> list[tuple[int, int]]:
    """(shift, width) of ``threshold + 1`` bands covering the 64 bits, widths differing by at most one."""
    if not 0 <= threshold <= MAX_THRESHOLD:
        raise ValueError(f"threshold must be between 0 and {MAX_THRESHOLD}")
    count = threshold + 1
    widths = [64 // count + (1 if i < 64 % count else 0) for i in range(count)]
    shifts = [sum(widths[:i]) for i in range(count)]
    return list(zip(shifts, widths, strict=True))


def _band_values(hashes: U64, shift: int, width: int) -> U64:
    mask = np.uint64((1 << width) - 1)
    return (hashes >> np.uint64(shift)) & mask


def near_pairs(hashes: U64, threshold: int) -> tuple[I64, I64, I64]:
    """(i, j, distance) for every i < j with ``popcount(hashes[i] ^ hashes[j]) <= threshold``.

    Each pair is reported once: in the first band where the two hashes agree.
    """
    hashes = np.ascontiguousarray(hashes, dtype=np.uint64)
    n = hashes.size
    spans = bands(threshold)
    values = [_band_values(hashes, shift, width) for shift, width in spans]
    found_i: list[I64] = []
    found_j: list[I64] = []
    found_d: list[I64] = []
    positions = np.arange(n, dtype=np.int64)
    for band, band_values in enumerate(values):
        order = np.argsort(band_values, kind="stable").astype(np.int64)
        ordered = band_values[order]
        starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]]) if n else positions
        lengths = np.diff(np.r_[starts, n])
        run_end = np.repeat(starts + lengths, lengths)
        todo = positions[run_end - positions > 1]  # positions with at least one later member in their run
        offset = 1
        while todo.size:
            todo = todo[todo + offset < run_end[todo]]
            if not todo.size:
                break
            first, second = order[todo], order[todo + offset]
            distance = popcount(hashes[first] ^ hashes[second])
            keep = distance <= threshold
            for earlier in values[:band]:  # already reported in an earlier band
                keep &= earlier[first] != earlier[second]
            first, second = first[keep], second[keep]
            found_i.append(np.minimum(first, second))
            found_j.append(np.maximum(first, second))
            found_d.append(distance[keep])
            offset += 1
    if not found_i:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty.copy(), empty.copy()
    return np.concatenate(found_i), np.concatenate(found_j), np.concatenate(found_d)
