"""Mirrors of published pools: URL validation, resolution order, and shard URLs for streaming."""

from __future__ import annotations

import os
import re
import urllib.parse
from pathlib import Path

from dpbench.errors import DpbenchError
from dpbench.pool.manifest import Manifest
from dpbench.tasks.models import SPLITS

ENV_MIRRORS = "DPBENCH_MIRRORS"
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def normalise_mirror(mirror: str) -> str:
    """A mirror as a URL ending in ``/``; local paths become absolute ``file://`` URLs."""
    text = mirror.strip()
    if not text:
        raise DpbenchError("empty mirror: pass --mirror URL (https://…, file://… or a folder)")
    if "://" not in text:
        uri = Path(text).expanduser().resolve().as_uri()
        return uri if uri.endswith("/") else uri + "/"
    parts = urllib.parse.urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http", "file"):
        raise DpbenchError(f"mirror {text}: unsupported URL scheme {scheme!r}; use https://, file:// or a folder path")
    if scheme == "http" and parts.hostname not in LOOPBACK:
        raise DpbenchError(f"mirror {text}: plain http:// is accepted only for 127.0.0.1/localhost; use https://")
    if scheme != "file" and not parts.hostname:
        raise DpbenchError(f"mirror {text}: no host in the URL; pass --mirror https://HOST/PATH/")
    if scheme == "file" and parts.netloc not in ("", "localhost"):
        raise DpbenchError(f"mirror {text}: file:// URLs must be local (file:///abs/path/)")
    if parts.query or parts.fragment:
        raise DpbenchError(f"mirror {text}: a mirror is a base URL without ?query or #fragment")
    return text.rstrip("/") + "/"


def resolve_mirrors(cli: list[str], pool_default: tuple[str, ...]) -> list[str]:
    """Mirrors from the ``--mirror`` flags, else ``$DPBENCH_MIRRORS`` (comma/space separated), else the pool's."""
    chosen = list(cli) or [m for m in re.split(r"[,\s]+", os.environ.get(ENV_MIRRORS, "")) if m] \
        or list(pool_default)
    if not chosen:
        raise DpbenchError(f"no mirror to download from: pass --mirror URL or set {ENV_MIRRORS}")
    return [normalise_mirror(m) for m in chosen]


def stream_urls(mirror: str, manifest: Manifest, task: str, split: str) -> list[str]:
    """URLs of a task split's shards on ``mirror``, for ``webdataset.WebDataset(urls)``.

    webdataset opens ``https://`` URLs with curl and ``file://`` URLs directly; for custom options use its
    pipe form, e.g. ``[f"pipe:curl -s -L {u}" for u in urls]``.
    """
    base = normalise_mirror(mirror)
    manifest.task(task)
    if split not in SPLITS:
        raise DpbenchError(f"unknown split {split!r}: use one of {', '.join(SPLITS)}")
    return [base + urllib.parse.quote(s.path) for s in manifest.shards_of(task, split)]
