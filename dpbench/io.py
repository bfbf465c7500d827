"""Atomic file writes and hashing: nothing half-written is ever left under its final name."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from dpbench.errors import DpbenchError

TMP_MARK = ".tmp-"


@contextlib.contextmanager
def atomic_open(path: Path) -> Iterator[IO[bytes]]:
    """Open a temporary sibling of ``path`` for writing; on success fsync and rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f"{path.name}{TMP_MARK}", dir=path.parent)
    os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide shared data from other users
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_open(path) as handle:
        handle.write(data)


def canonical_json(obj: Any) -> bytes:
    """Deterministic JSON bytes (sorted keys, fixed separators, trailing newline)."""
    return (json.dumps(obj, sort_keys=True, indent=1, ensure_ascii=False) + "\n").encode()


def atomic_write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as canonical JSON atomically."""
    atomic_write_bytes(path, canonical_json(obj))


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def remove_stale_temps(folder: Path) -> int:
    """Delete temporary files that a killed writer left in ``folder``; returns how many."""
    removed = 0
    if folder.is_dir():
        for path in folder.iterdir():
            if TMP_MARK in path.name and path.is_file():
                path.unlink()
                removed += 1
    return removed


def ensure_writable(folder: Path) -> None:
    """Create ``folder`` if needed and prove it is writable, or raise a DpbenchError saying so."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=f".probe{TMP_MARK}"):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise DpbenchError(f"cannot write to {folder}: {reason}; choose another --out folder") from exc


def shuffle_order(keys: Iterable[str], seed: int | str) -> list[str]:
    """Keys in a seeded pseudo-random order (sorted by the sha256 of ``"<seed>:<key>"``), so shards mix classes
    and groups reproducibly."""
    return sorted(keys, key=lambda k: hashlib.sha256(f"{seed}:{k}".encode()).hexdigest())


def die_with_parent() -> None:
    """Make this (worker) process receive SIGTERM when its parent dies, so that a build or audit killed with
    SIGKILL never leaves workers running; exits at once if the parent is already gone. Linux only (prctl);
    elsewhere a no-op. Meant as a ``ProcessPoolExecutor`` initializer."""
    import ctypes
    import signal
    import sys

    if not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent or parent == 1:  # the parent died before prctl took effect
        os._exit(1)
