"""The fast member reader: same members and bytes as tarfile for every format, webdataset's sample order, clear
errors on broken files, and unread references that read back the same bytes."""

from __future__ import annotations

import io
import os
import random
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
import webdataset as wds
from torch.utils.data import DataLoader

from dpbench.pool.manifest import load_manifest
from dpbench.pool.read import raw_shard_dataset
from dpbench.pool.tarstream import MemberRef, _ustar, expand_local_shards, iter_members, resolve


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
    for end, member in ((1024, "a.png"), (1300, "a.png"), (2300, "a.cls")):  # a.cls: header 1536, data 2048
        cut = tmp_path / "cut.tar"  # inside a member's bytes, or inside its padding: webdataset's reader refuses both
        cut.write_bytes(data[:end])
        with pytest.raises(tarfile.ReadError), tarfile.open(cut, "r|") as tar:
            for info in tar:
                tar.extractfile(info).read()  # type: ignore[union-attr]
        for lazy in (None, 100):
            with pytest.raises(tarfile.ReadError, match=rf"unexpected end of data in member {member}"):
                list(iter_members(str(cut), lazy))
    cut.write_bytes(data[:1636])  # inside the second header: tarfile ends there quietly, and so do we
    assert list(iter_members(str(cut))) == [("a.png", b"x" * 700)]
    for name, content in (("empty.tar", b""), ("junk.tar", b"not a tar file at all" * 40)):
        (tmp_path / name).write_bytes(content)
        with pytest.raises(tarfile.ReadError):
            list(iter_members(str(tmp_path / name)))
    with pytest.raises(tarfile.ReadError, match=r"junk\.tar: .*; run dpbench verify"):  # the pipeline names the shard
        list(expand_local_shards([{"url": str(tmp_path / "junk.tar")}]))


def test_member_refs_read_the_drawn_file_or_fail(tmp_path: Path) -> None:
    path = _tar(tmp_path / "s.tar", MEMBERS)
    refs = dict(iter_members(str(path), lazy_over=100))
    assert isinstance(refs["a.png"], MemberRef) and refs["a.cls"] == b"1"
    assert resolve({"png": refs["a.png"], "cls": b"1"}) == {"png": b"x" * 700, "cls": b"1"}
    replacement = _tar(tmp_path / "new.tar", [("a.png", b"z" * 700)])
    os.replace(replacement, path)  # what a rebuild does; this process still holds the old file open
    fresh = dict(iter_members(str(path), lazy_over=100))["a.png"]
    assert fresh.read() == b"z" * 700  # type: ignore[union-attr]  # the new file, not the cached descriptor's
    with pytest.raises(tarfile.ReadError, match=r"s\.tar changed after its samples were drawn"):
        refs["a.png"].read()  # type: ignore[union-attr]  # drawn from the old file, which is gone


def test_old_style_directories_sparse_and_compressed_members_read_as_tarfile(tmp_path: Path) -> None:
    path = tmp_path / "mixed.tar"
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as tar:
        for name, data, kind in (("a.png", b"a" * 600, tarfile.REGTYPE), ("old/", b"", tarfile.AREGTYPE),
                                 ("b.png", b"b" * 30, tarfile.REGTYPE),
                                 ("c" * 120 + ".png", b"c" * 9, tarfile.REGTYPE)):
            info = tarfile.TarInfo(name)
            info.size, info.type = len(data), kind
            tar.addfile(info, io.BytesIO(data))
    expected = [("a.png", b"a" * 600), ("b.png", b"b" * 30), ("c" * 120 + ".png", b"c" * 9)]
    assert _reference(path) == expected
    for lazy in (None, 100):  # the long name falls back to tarfile after two members read directly
        assert [(n, d.read() if isinstance(d, MemberRef) else d) for n, d in iter_members(str(path), lazy)] == expected
    packed = tmp_path / "s.tar.gz"
    with tarfile.open(packed, "w:gz") as tar:
        for name, data in MEMBERS:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    assert list(iter_members(str(packed), lazy_over=100)) == MEMBERS  # bytes: no offsets into a compressed file


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


@pytest.mark.skipif(shutil.which("tar") is None, reason="needs GNU tar to write sparse members")
@pytest.mark.parametrize("fmt", ["gnu", "posix"])
def test_sparse_members_read_as_tarfile(tmp_path: Path, fmt: str) -> None:
    with open(tmp_path / "s.png", "wb") as handle:  # 100 bytes, a 1 MiB hole, 100 bytes
        handle.write(b"a" * 100)
        handle.seek(1 << 20)
        handle.write(b"b" * 100)
    (tmp_path / "u.png").write_bytes(b"u" * 50_000)
    path = tmp_path / "sparse.tar"
    subprocess.run(["tar", "--sparse", f"--format={fmt}", "-cf", str(path), "s.png", "u.png"], cwd=tmp_path,
                   check=True)
    expected = _reference(path)
    assert [n for n, _ in expected] == ["s.png", "u.png"] and len(expected[0][1]) == (1 << 20) + 100
    for lazy in (None, 100):
        assert [(n, d.read() if isinstance(d, MemberRef) else d) for n, d in iter_members(str(path), lazy)] == expected
