"""Fetch a raw source's published files: pinned URLs and checksums, mirrors, resume, licence acceptance.

Files go to ``DEST/<source folder>/.archives/<name>`` (through a ``.tmp-partial`` sibling that an interrupted
run resumes with an HTTP ``Range`` request) and archives are unpacked into ``DEST/<source folder>/``, which is
what ``dpbench build --raw DEST`` reads. Where the source publishes a checksum the file must match it; where it
publishes none, the sha256 of the first complete download is recorded in ``.dpbench-fetch.json`` and every later
fetch must match that ("pinned on first download"). Sources that need registration or a form are never
downloaded: their manual steps are returned instead.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tarfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from dpbench.convert.base import ARCHIVES
from dpbench.errors import AllMirrorsFailed, DpbenchError
from dpbench.io import TMP_MARK, atomic_write_json, ensure_writable
from dpbench.tasks.models import RawFile, Source
from dpbench.transport.transfer import Progress, Run, fetch_verified

STATE = ".dpbench-fetch.json"


@dataclass
class FetchReport:
    """What one ``fetch_source`` call did."""

    source: str
    folder: Path
    fetched: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    extracted: list[str] = field(default_factory=list)
    pinned_now: list[str] = field(default_factory=list)  # no published checksum: sha256 recorded on first download
    manual: str | None = None  # set when the source cannot be fetched automatically
    seconds: float = 0.0


def manual_steps(source: Source) -> str:
    """How to get ``source`` by hand (the registry's text, else its URL)."""
    where = f"put the extracted files under <raw>/{source.folder}/"
    return f"{source.manual or f'download it from {source.url}'}; then {where}"


def _digests(path: Path) -> tuple[str, str]:
    md5, sha = hashlib.md5(usedforsecurity=False), hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            md5.update(chunk)
            sha.update(chunk)
    return md5.hexdigest(), sha.hexdigest()


def _problem(path: Path, item: RawFile, recorded: str | None) -> tuple[str | None, str]:
    """Why a downloaded file is not the published one (None when it verifies), and its sha256 ("" when the size
    is already wrong)."""
    if item.bytes is not None and path.stat().st_size != item.bytes:
        return f"{path.stat().st_size} bytes instead of {item.bytes}", ""
    md5, sha = _digests(path)
    if item.md5 and md5 != item.md5:
        return f"md5 {md5} instead of the published {item.md5}", sha
    if item.sha256 and sha != item.sha256:
        return f"sha256 {sha} instead of the published {item.sha256}", sha
    if recorded and sha != recorded:
        return f"sha256 {sha} differs from the first download's {recorded} (the file changed upstream)", sha
    return None, sha


def _unpack(archive: Path, into: Path) -> None:
    """Unpack a zip/tar archive inside ``into`` (members escaping it are refused), atomically per archive."""
    staging = into / f"{TMP_MARK}extract-{archive.name}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                for member in zf.namelist():
                    target = (staging / member).resolve()
                    if not target.is_relative_to(staging.resolve()):
                        raise DpbenchError(f"{archive} holds a member outside its folder ({member}); refusing it")
                zf.extractall(staging)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as tf:
                try:
                    tf.extractall(staging, filter="data")
                except tarfile.FilterError as exc:
                    raise DpbenchError(f"{archive} holds an unsafe member ({exc}); refusing it") from exc
        else:
            raise DpbenchError(f"{archive} is neither a zip nor a tar archive; delete it and fetch again")
        for entry in sorted(staging.iterdir()):
            if entry.name in (ARCHIVES, STATE):
                raise DpbenchError(f"{archive} holds a top-level {entry.name}, which dpbench uses; refusing it")
            _merge(entry, into / entry.name)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError) as exc:
        raise DpbenchError(f"cannot unpack {archive} ({exc}); delete it and fetch again") from exc
    except OSError as exc:
        raise DpbenchError(f"cannot unpack {archive} into {into} ({exc}); free some space or fix the "
                           "permissions, then fetch again") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _merge(source: Path, target: Path) -> None:
    """Move ``source`` to ``target``: files replace files, folders merge, so files a user added are kept."""
    if source.is_dir() and target.is_dir():
        for child in sorted(source.iterdir()):
            _merge(child, target / child.name)
        source.rmdir()
        return
    if target.is_dir():
        shutil.rmtree(target)
    elif target.exists():
        target.unlink()
    source.rename(target)


def _load_state(folder: Path) -> dict[str, dict[str, object]]:
    path = folder / STATE
    if not path.is_file():
        return {}
    try:
        state: dict[str, dict[str, object]] = json.loads(path.read_text())
        return state
    except (json.JSONDecodeError, OSError):
        return {}  # a damaged state file only costs a re-verification


def fetch_source(source: Source, dest: Path, *, accept_licence: bool, retries: int = 3, timeout: float = 60.0,
                 progress: Progress | None = None) -> FetchReport:
    """Download (resuming), verify and unpack every published file of ``source`` under ``dest``."""
    started = time.perf_counter()
    folder = dest / source.folder
    report = FetchReport(source=source.id, folder=folder)
    if not source.fetchable:
        report.manual = manual_steps(source)
        return report
    if not accept_licence:
        raise DpbenchError(f"{source.id} is distributed under {source.licence} ({source.url}); read its terms, "
                           "then rerun with --accept-licence")
    ensure_writable(folder / ARCHIVES)
    state = _load_state(folder)
    run = Run(retries=retries, backoff=1.0, timeout=timeout, progress=progress)
    for item in source.downloads:
        final = folder / ARCHIVES / item.name
        entry = state.get(item.name, {})
        recorded = entry.get("sha256")
        recorded = recorded if isinstance(recorded, str) else None
        if final.is_file() and entry.get("bytes") == final.stat().st_size:
            report.reused.append(item.name)
        else:
            sha = _download(item, final, recorded, run)
            if not (item.md5 or item.sha256 or recorded):
                report.pinned_now.append(item.name)
            entry = {"sha256": sha, "bytes": final.stat().st_size, "extracted": False}
            state[item.name] = entry
            atomic_write_json(folder / STATE, state)
            report.fetched.append(item.name)
        if item.extract and not entry.get("extracted"):
            _unpack(final, folder)
            entry["extracted"] = True
            atomic_write_json(folder / STATE, state)
            report.extracted.append(item.name)
    report.seconds = time.perf_counter() - started
    return report


def _download(item: RawFile, final: Path, recorded: str | None, run: Run) -> str:
    """Fetch and verify ``item`` into ``final``; returns its sha256."""
    sha = ""

    def check(path: Path) -> str | None:
        nonlocal sha
        problem, sha = _problem(path, item, recorded)
        return f"{item.name}: {problem}" if problem else None

    try:
        fetch_verified(list(item.urls), final, item.bytes, item.name, run, check)
    except AllMirrorsFailed as exc:
        raise DpbenchError(f"could not fetch {item.name}: {exc} (rerun to resume; the partial file is kept)") from exc
    return sha
