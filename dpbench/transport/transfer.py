"""HTTP(S)/file transfers shared by pool downloads and raw-source fetches: resume, retries, mirror failover."""

from __future__ import annotations

import http.client
import os
import re
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TypeVar

from dpbench import __version__
from dpbench.errors import AllMirrorsFailed, TransferCancelled, TransferFailure
from dpbench.io import TMP_MARK
from dpbench.transport.mirrors import LOOPBACK

CHUNK = 1 << 16
PARTIAL = f"{TMP_MARK}partial"  # suffix of the sibling a fetch writes before the rename
Progress = Callable[[str, int, int], None]
T = TypeVar("T")


@dataclass
class Run:
    """Settings and thread-safe counters of one download."""

    retries: int
    backoff: float
    timeout: float
    progress: Progress | None
    received: int = 0
    failed: int = 0
    cancel: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, received: int = 0, failed: int = 0) -> None:
        with self.lock:
            self.received += received
            self.failed += failed


def open_url(url: str, offset: int, timeout: float) -> tuple[IO[bytes], int, int | None]:
    """(body, offset it starts at, its length if known), asking for the bytes from ``offset`` on."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "file":
        path = Path(urllib.request.url2pathname(parts.path))
        try:
            handle = path.open("rb")
        except FileNotFoundError as exc:
            raise TransferFailure(f"{path} not found", permanent=True) from exc
        size = os.fstat(handle.fileno()).st_size
        start = offset if offset <= size else 0
        handle.seek(start)
        return handle, start, size - start
    headers = {"User-Agent": f"dpbench/{__version__}"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    proxies: dict[str, str] | None = {} if parts.hostname in LOOPBACK else None
    opener = urllib.request.build_opener(urllib.request.ProxyHandler(proxies))
    try:
        response: http.client.HTTPResponse = opener.open(urllib.request.Request(url, headers=headers),
                                                          timeout=timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416:
            raise TransferFailure("HTTP 416 range not satisfiable", restart=True) from exc
        raise TransferFailure(f"HTTP {exc.code} {exc.reason}", permanent=exc.code in (401, 403, 404, 410)) from exc
    length_header = response.headers.get("Content-Length", "")
    length = int(length_header) if length_header.isdigit() else None
    if response.status == 206:
        match = re.match(r"bytes (\d+)-", response.headers.get("Content-Range", ""))
        if not match or int(match[1]) != offset:
            response.close()
            raise TransferFailure(f"bad Content-Range for a request from byte {offset}", restart=True)
        return response, offset, length
    return response, 0, length  # 200: the server ignored Range, start again from zero


def describe(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, TimeoutError) or (isinstance(exc, urllib.error.URLError)
                                         and isinstance(exc.reason, TimeoutError)):
        return f"timed out after {timeout:g}s"
    if isinstance(exc, http.client.IncompleteRead):
        return "connection closed before the end of the file"
    if isinstance(exc, urllib.error.URLError):
        return f"cannot connect ({exc.reason})"
    return f"{type(exc).__name__}: {exc}"


def try_mirrors(mirrors: list[str], run: Run, attempt: Callable[[str], T]) -> T:
    """``attempt(mirror)`` with retries and exponential backoff per mirror, failing over in order."""
    last = "no mirror given"
    for mirror in mirrors:
        for number in range(run.retries + 1):
            if run.cancel.is_set():
                raise TransferCancelled
            try:
                return attempt(mirror)
            except TransferFailure as exc:
                last, permanent = f"{mirror}: {exc}", exc.permanent
            except (OSError, http.client.HTTPException) as exc:
                last, permanent = f"{mirror}: {describe(exc, run.timeout)}", False
            run.add(failed=1)
            if permanent:
                break
            if number < run.retries:
                run.cancel.wait(run.backoff * 2 ** number)
    raise AllMirrorsFailed(last)


def transfer(url: str, tmp: Path, size: int | None, name: str, run: Run) -> None:
    """Fetch ``url`` into ``tmp``, resuming with an HTTP Range request from the bytes already there."""
    offset = tmp.stat().st_size if tmp.is_file() else 0
    if size is not None and offset == size:
        return  # complete from an interrupted run: just verify it
    offset = 0 if size is not None and offset > size else offset
    body, start, length = open_url(url, offset, run.timeout)
    total = size if size is not None else start + (length or 0)
    done = start
    with body, tmp.open("ab" if start else "wb") as handle:
        while chunk := body.read(CHUNK):
            if run.cancel.is_set():
                raise TransferCancelled
            handle.write(chunk)
            done += len(chunk)
            run.add(received=len(chunk))
            if run.progress:
                run.progress(name, done, total)
        handle.flush()
        os.fsync(handle.fileno())
    if length is not None and done < start + length:
        raise TransferFailure(f"connection closed after {done} of {start + length} bytes")


def fetch_verified(urls: list[str], final: Path, size: int | None, name: str, run: Run,
                   check: Callable[[Path], str | None]) -> str:
    """Fetch ``final`` through its partial sibling ``tmp`` (``<name>.tmp-partial``) from the first of ``urls`` that
    delivers a copy passing ``check`` (None: it verifies), then rename it into place; returns that URL.

    ``tmp`` is resumed when it holds part of the file and deleted on any failure that asks for a restart: a
    copy failing ``check``, an HTTP 416 or a bad ``Content-Range`` (e.g. a complete leftover of unknown size).
    Raises AllMirrorsFailed or TransferCancelled (``tmp`` then stays for a later resumption unless it had to be
    restarted).
    """
    tmp = final.with_name(final.name + PARTIAL)

    def attempt(url: str) -> str:
        try:
            transfer(url, tmp, size, name, run)
            problem = check(tmp)
            if problem:
                raise TransferFailure(problem, restart=True)
        except TransferFailure as exc:
            if exc.restart:
                tmp.unlink(missing_ok=True)
            raise
        os.replace(tmp, final)
        return url

    return try_mirrors(urls, run, attempt)
