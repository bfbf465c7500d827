"""The fast member reader: same members and bytes as tarfile for every format, webdataset's sample order, clear
errors on broken files, and unread references that read back the same bytes."""

from __future__ import annotations

import io
import random
import tarfile
from pathlib import Path

import pytest
import webdataset as wds
from torch.utils.data import DataLoader

from dpbench.data import raw_shard_dataset
from dpbench.shards import load_manifest
from dpbench.tarstream import MemberRef, _ustar, iter_members, resolve


def _tar(path: Path, members: list[tuple[str, bytes]], fmt: int = tarfile.PAX_FORMAT, directory: bool = False) -> Path:
    with tarfile.open(path, "w", format=fmt) as tar:
        if directory:
            info = tarfile.TarInfo("folder")
            info.type = tarfile.DIRTYPE
            tar.addfile(info)
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _reference(path: Path) -> list[tuple[str, bytes]]:
    with tarfile.open(path) as tar:
        return [(m.name, tar.extractfile(m).read()) for m in tar if m.isreg()]  # type: ignore[union-attr]


MEMBERS = [("a.png", b"x" * 700), ("a.cls", b"1"), ("b.png", bytes(range(256)) * 9), ("b.cls", b"")]


FORMATS = [(fmt, names) for fmt in (tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT)
           for names in ("plain", "long", "unicode") if (fmt, names) != (tarfile.USTAR_FORMAT, "unicode")]


@pytest.mark.parametrize(("fmt", "names"), FORMATS)  # ustar cannot store non-ASCII names
def test_members_equal_tarfile_for_every_format(tmp_path: Path, fmt: int, names: str) -> None:
    members = {"plain": MEMBERS,
               "long": [(f"{'d' * 120}/{'k' * 90}.png", b"p" * 513), *MEMBERS],  # ustar prefix, GNU longname, pax
               "unicode": [("échantillon.json", b"{}"), *MEMBERS]}[names]
    path = _tar(tmp_path / "s.tar", members, fmt, directory=True)
    assert list(iter_members(str(path))) == _reference(path)
    lazy = list(iter_members(str(path), lazy_over=100))
    assert [(n, d.read() if isinstance(d, MemberRef) else d) for n, d in lazy] == _reference(path)
    assert {n for n, d in lazy if isinstance(d, MemberRef)} == {n for n, d in _reference(path) if len(d) > 100}


def test_plain_headers_are_parsed_directly_and_anything_else_left_to_tarfile(tmp_path: Path) -> None:
    path = _tar(tmp_path / "s.tar", MEMBERS, tarfile.PAX_FORMAT)
    header = path.read_bytes()[:512]
    assert _ustar(header) == ("a.png", 700, True)
    bad = bytearray(header)
    bad[0] ^= 1  # checksum no longer matches
    assert _ustar(bytes(bad)) is None
    pax = _tar(tmp_path / "p.tar", [("é.png", b"1")], tarfile.PAX_FORMAT).read_bytes()[:512]
    assert _ustar(pax) is None  # an extended header: tarfile's job


def test_broken_files_raise_read_errors(tmp_path: Path) -> None:
    path = _tar(tmp_path / "s.tar", MEMBERS)
    data = path.read_bytes()
    cut = tmp_path / "cut.tar"
    cut.write_bytes(data[:1024])  # in the middle of a.png's bytes
    for lazy in (None, 100):
        with pytest.raises(tarfile.ReadError, match=r"unexpected end of data in member a\.png"):
            list(iter_members(str(cut), lazy))
    empty = tmp_path / "empty.tar"
    empty.write_bytes(b"")
    with pytest.raises(tarfile.ReadError):
        list(iter_members(str(empty)))
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"not a tar file at all" * 40)
    with pytest.raises(tarfile.ReadError):
        list(iter_members(str(junk)))
    ref = MemberRef(str(path), 512, 700)
    assert resolve({"png": ref, "cls": b"1"}) == {"png": b"x" * 700, "cls": b"1"}
    shrunk = tmp_path / "shrunk.tar"
    shrunk.write_bytes(data[:600])
    with pytest.raises(tarfile.ReadError, match="changed or was truncated"):
        MemberRef(str(shrunk), 512, 700).read()


def _samples(dataset: object, workers: int = 0) -> list[tuple[str, str, bytes]]:
    loader = DataLoader(dataset, batch_size=None, num_workers=workers)  # type: ignore[call-overload]
    return [(s["__key__"], s["__url__"], resolve(s)["png"]) for s in loader]


@pytest.mark.parametrize(("shuffle", "seed", "workers"), [(0, 0, 0), (50, 3, 0), (50, 7, 2), (0, 0, 2)])
def test_sample_order_and_content_are_webdatasets(small_pool: Path, shuffle: int, seed: int, workers: int) -> None:
    urls = [str(small_pool / s.path) for s in load_manifest(small_pool).shards][:8]
    reference = wds.WebDataset(urls, shardshuffle=len(urls) if shuffle else False, seed=seed, empty_check=False)
    if shuffle:
        reference = reference.shuffle(shuffle, rng=random.Random(seed))
    expected = _samples(reference, workers)
    assert len(expected) > 40
    assert _samples(raw_shard_dataset(urls, shuffle, seed), workers) == expected
    assert _samples(raw_shard_dataset(urls, shuffle, seed, lazy_over=100), workers) == expected  # read in workers
