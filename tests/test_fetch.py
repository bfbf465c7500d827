"""`dpbench sources fetch` against a real HTTP server: checksums, resume, mirrors, licence, unpacking."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import run_cli
from servers import Fault, Mirror

from dpbench.errors import DpbenchError
from dpbench.tasks.models import RawFile, Source
from dpbench.tasks.registry import get_task
from dpbench.transport.fetch import ARCHIVES, STATE, fetch_source

BIB = "@misc{x, title={x}}"


def make_zip(path: Path, files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue())
    return buffer.getvalue()


def source(urls: tuple[str, ...], data: bytes, *, md5: bool = True, name: str = "data.zip",
           availability: str = "public") -> Source:
    return Source(id="toy", title="Toy", url="https://example.org", availability=availability,  # type: ignore[arg-type]
                  licence="CC-BY-4.0", citation=BIB,
                  downloads=(RawFile(name=name, urls=urls, md5=hashlib.md5(data).hexdigest() if md5 else None),))


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Mirror, bytes]]:
    files = {f"toy/CLASS_{i}/img{j}.txt": bytes([i, j]) * 4000 for i in range(2) for j in range(3)}
    data = make_zip(tmp_path / "www" / "data.zip", files)
    mirror = Mirror(tmp_path / "www")
    yield mirror, data
    mirror.stop()


def test_fetch_verifies_unpacks_and_reuses(served: tuple[Mirror, bytes], tmp_path: Path) -> None:
    mirror, data = served
    src = source((mirror.url + "data.zip",), data)
    report = fetch_source(src, tmp_path / "raw", accept_licence=True)
    assert report.fetched == ["data.zip"] and report.extracted == ["data.zip"]
    assert (tmp_path / "raw/toy/toy/CLASS_1/img2.txt").read_bytes() == bytes([1, 2]) * 4000
    again = fetch_source(src, tmp_path / "raw", accept_licence=True)
    assert again.reused == ["data.zip"] and not again.fetched and not again.extracted
    assert len(mirror.ranges("data.zip")) == 1  # nothing fetched twice


def test_unpacking_again_keeps_files_the_user_added(served: tuple[Mirror, bytes], tmp_path: Path) -> None:
    mirror, data = served
    src = source((mirror.url + "data.zip",), data)
    fetch_source(src, tmp_path / "raw", accept_licence=True)
    added = tmp_path / "raw/toy/toy/Folds.csv"  # e.g. BreakHis folds put inside the archive's folder
    added.write_text("fold,mag\n")
    (tmp_path / "raw/toy" / STATE).unlink()  # a lost state file: the archive is fetched and unpacked again
    again = fetch_source(src, tmp_path / "raw", accept_licence=True)
    assert again.extracted == ["data.zip"] and added.read_text() == "fold,mag\n"
    assert (tmp_path / "raw/toy/toy/CLASS_0/img0.txt").is_file()


def test_dropped_transfer_resumes_with_range(served: tuple[Mirror, bytes], tmp_path: Path) -> None:
    mirror, data = served
    mirror.fault("data.zip", Fault("drop", times=1, after=1000))
    fetch_source(source((mirror.url + "data.zip",), data), tmp_path / "raw", accept_licence=True)
    assert mirror.ranges("data.zip") == [None, "bytes=1000-"]
    assert (tmp_path / "raw/toy" / ARCHIVES / "data.zip").read_bytes() == data


def test_complete_leftover_partial_of_unknown_size_is_restarted(served: tuple[Mirror, bytes],
                                                                  tmp_path: Path) -> None:
    mirror, data = served  # no published size: the leftover is resumed, the server answers 416
    partial = tmp_path / "raw/toy" / ARCHIVES / "data.zip.tmp-partial"
    partial.parent.mkdir(parents=True)
    partial.write_bytes(data)
    report = fetch_source(source((mirror.url + "data.zip",), data), tmp_path / "raw", accept_licence=True, retries=1)
    assert report.fetched == ["data.zip"] and mirror.ranges("data.zip") == [f"bytes={len(data)}-", None]
    assert (tmp_path / "raw/toy" / ARCHIVES / "data.zip").read_bytes() == data and not partial.exists()


def test_wrong_bytes_fail_over_to_the_next_url(served: tuple[Mirror, bytes], tmp_path: Path) -> None:
    mirror, data = served
    other = Mirror(tmp_path / "www")
    try:
        mirror.fault("data.zip", Fault("flip"))
        report = fetch_source(source((mirror.url + "data.zip", other.url + "data.zip"), data), tmp_path / "raw",
                              accept_licence=True, retries=0)
        assert report.fetched == ["data.zip"] and other.ranges("data.zip")
    finally:
        other.stop()


def test_checksum_mismatch_everywhere_is_one_error_and_leaves_nothing(served: tuple[Mirror, bytes],
                                                                       tmp_path: Path) -> None:
    mirror, data = served
    mirror.fault("data.zip", Fault("flip"))
    with pytest.raises(DpbenchError, match="md5"):
        fetch_source(source((mirror.url + "data.zip",), data), tmp_path / "raw", accept_licence=True, retries=0)
    assert not any((tmp_path / "raw/toy" / ARCHIVES).iterdir())
    assert not (tmp_path / "raw/toy/toy").exists()


def test_unpinned_file_is_pinned_on_first_download(served: tuple[Mirror, bytes], tmp_path: Path) -> None:
    mirror, data = served
    src = source((mirror.url + "data.zip",), data, md5=False)
    report = fetch_source(src, tmp_path / "raw", accept_licence=True)
    assert report.pinned_now == ["data.zip"]
    state = json.loads((tmp_path / "raw/toy" / STATE).read_text())
    assert state["data.zip"]["sha256"] == hashlib.sha256(data).hexdigest()
    (tmp_path / "raw/toy" / ARCHIVES / "data.zip").unlink()  # a later fetch must match the pinned hash
    (tmp_path / "www/data.zip").write_bytes(make_zip(tmp_path / "other.zip", {"x": b"changed upstream"}))
    with pytest.raises(DpbenchError, match="changed upstream"):
        fetch_source(src, tmp_path / "raw", accept_licence=True, retries=0)


def test_licence_must_be_accepted(served: tuple[Mirror, bytes], tmp_path: Path) -> None:
    mirror, data = served
    with pytest.raises(DpbenchError, match="--accept-licence"):
        fetch_source(source((mirror.url + "data.zip",), data), tmp_path / "raw", accept_licence=False)
    assert mirror.ranges("data.zip") == []


def test_unsafe_archive_member_is_refused(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tf:
        info = tarfile.TarInfo("../escape.txt")
        info.size = 3
        tf.addfile(info, io.BytesIO(b"bad"))
    (tmp_path / "www").mkdir()
    (tmp_path / "www/evil.tgz").write_bytes(buffer.getvalue())
    mirror = Mirror(tmp_path / "www")
    try:
        with pytest.raises(DpbenchError, match="unsafe"):
            fetch_source(source((mirror.url + "evil.tgz",), buffer.getvalue(), name="evil.tgz"), tmp_path / "raw",
                         accept_licence=True)
    finally:
        mirror.stop()
    assert not (tmp_path / "raw/toy/escape.txt").exists()  # where ../ from the staging folder would land
    assert not (tmp_path / "raw/escape.txt").exists()


def test_registration_source_gives_manual_steps(tmp_path: Path) -> None:
    report = fetch_source(get_task("MitosAtypia14").source, tmp_path, accept_licence=True)
    assert report.manual and "mitos_atypia14" in report.manual
    assert not any(tmp_path.iterdir())


def test_cli_lists_sources_and_explains_unknown_and_manual(tmp_path: Path) -> None:
    listed = run_cli("sources", "list")
    assert listed.returncode == 0 and "camelyon16" in listed.stdout and "CC0-1.0" in listed.stdout
    only_cc0 = run_cli("sources", "list", "--licence-allow", "CC0-1.0")
    assert "camelyon16" in only_cc0.stdout and "bach18" not in only_cc0.stdout
    unknown = run_cli("sources", "fetch", "camelyon", "--to", str(tmp_path))
    assert unknown.returncode == 2 and "did you mean camelyon16" in unknown.stderr
    assert "Traceback" not in unknown.stderr
    private = run_cli("sources", "fetch", "cytomine_lung", "--to", str(tmp_path))
    assert private.returncode == 1 and "cannot be downloaded automatically" in private.stdout
