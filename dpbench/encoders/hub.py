"""Weights on demand: the Hugging Face Hub and plain URLs, into the libraries' usual caches, or nothing offline.

Downloads go through huggingface_hub (its cache, ``$HF_HUB_CACHE``, with its progress bars) and torch.hub (its
cache, ``$TORCH_HOME/hub/checkpoints``). Offline (``--offline`` or ``HF_HUB_OFFLINE=1``) nothing touches the network
and a missing file is one error line naming the cache folder to fill. Every failure of a download is one line.
"""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
from huggingface_hub import constants as hf_constants
from huggingface_hub import errors as hf_errors

from dpbench.encoders.base import first_line
from dpbench.errors import DpbenchError
from dpbench.transport.transfer import Progress, Run, fetch_verified

_TRUE = {"1", "on", "yes", "true"}
#: Attempts after the first, the first pause (doubling) and the socket timeout of a weights URL download.
RETRIES, BACKOFF, TIMEOUT = 3, 1.0, 60.0


def offline_requested() -> bool:
    """True when the Hub is offline for this process (``HF_HUB_OFFLINE`` at import or now, or :func:`network`)."""
    return bool(hf_constants.HF_HUB_OFFLINE) or os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE


@contextlib.contextmanager
def network(offline: bool | None) -> Iterator[bool]:
    """Inside the block the Hub is offline when ``offline`` is True, else as ``HF_HUB_OFFLINE`` says; yields which."""
    if not offline:
        yield offline_requested()
        return
    saved_constant, saved_env = hf_constants.HF_HUB_OFFLINE, os.environ.get("HF_HUB_OFFLINE")
    hf_constants.HF_HUB_OFFLINE = True
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        yield True
    finally:
        hf_constants.HF_HUB_OFFLINE = saved_constant
        if saved_env is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = saved_env


def hub_cache() -> Path:
    """The Hugging Face Hub cache folder in use (``$HF_HUB_CACHE``, default ``~/.cache/huggingface/hub``)."""
    return Path(hf_constants.HF_HUB_CACHE)


def repo_cache(hub_id: str) -> Path:
    """The folder the Hub keeps ``hub_id``'s files in: ``models--ORG--NAME`` (snapshots/REV/..., refs/main)."""
    return hub_cache() / ("models--" + hub_id.replace("/", "--"))


def url_cache(url: str) -> Path:
    """Where torch.hub (and timm) keep the file of ``url``: ``$TORCH_HOME/hub/checkpoints/NAME``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(url).path)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _find(exc: BaseException, kind: type[BaseException] | tuple[type[BaseException], ...]) -> BaseException | None:
    return next((e for e in _chain(exc) if isinstance(e, kind)), None)


def _network_error(exc: BaseException) -> BaseException | None:
    for item in _chain(exc):
        module = type(item).__module__.split(".")[0]
        if module in ("httpx", "httpx2", "httpcore", "urllib3", "requests") or isinstance(
                item, ConnectionError | TimeoutError):
            return item
    return None


def explain(exc: BaseException, what: str, hub_id: str, *, gated: bool, offline: bool) -> DpbenchError | None:
    """One error line for a failed Hub load of ``hub_id`` (``what``: the preset), or None when not a Hub failure."""
    page = f"{hf_constants.ENDPOINT}/{hub_id}"
    login = "then run `hf auth login` (or set HF_TOKEN) and retry"
    folder = repo_cache(hub_id)
    if _find(exc, hf_errors.GatedRepoError) is not None:
        return DpbenchError(f"{what} ({hub_id}) is gated and this account has no access: accept its licence on "
                            f"{page}, {login}")
    if _find(exc, hf_errors.RepositoryNotFoundError) is not None:
        if gated:
            return DpbenchError(f"{what} ({hub_id}) is gated: log in with an account that accepted its licence on "
                                f"{page} (`hf auth login` or HF_TOKEN)")
        return DpbenchError(f"{what}: repository {hub_id} not found on {hf_constants.ENDPOINT}; check the hub id "
                            "(and HF_ENDPOINT)")
    if _find(exc, hf_errors.RevisionNotFoundError) is not None:
        return DpbenchError(f"{what}: {hub_id} has no such revision; check the preset's revision")
    local = _find(exc, (hf_errors.LocalEntryNotFoundError, hf_errors.OfflineModeIsEnabled))
    if local is not None or (offline and isinstance(exc, OSError) and "offline" in str(exc).lower()):
        if offline:
            return DpbenchError(f"{what} is not in the Hugging Face cache and downloads are off (--offline or "
                                f"HF_HUB_OFFLINE=1): fill {folder} (run `dpbench encoders fetch {what}` or "
                                f"`hf download {hub_id}` where there is internet and copy the folder; HF_HUB_CACHE "
                                "chooses the cache), or go online")
        return DpbenchError(f"{what}: could not reach {hf_constants.ENDPOINT} to download {hub_id} and the files are "
                            f"not cached in {folder}; check the connection (or HF_ENDPOINT) and retry")
    remote = _find(exc, hf_errors.RemoteEntryNotFoundError)
    if remote is not None:
        return DpbenchError(f"{what}: {hub_id} lacks a file the loader needs ({first_line(remote)[:200]})")
    http = _find(exc, hf_errors.HfHubHTTPError)
    if http is not None:
        return DpbenchError(f"{what}: the hub refused the download of {hub_id} ({first_line(http)[:200]}); retry later")
    network_error = _network_error(exc)
    if network_error is not None or "consistency check failed" in str(exc).lower():
        cause = first_line(network_error or exc)[:200]
        return DpbenchError(f"{what}: downloading {hub_id} failed ({type(network_error or exc).__name__}: {cause}); "
                            f"check the connection and rerun: completed files stay in {folder}")
    return None


@contextlib.contextmanager
def hub_errors(what: str, hub_id: str, *, gated: bool, offline: bool) -> Iterator[None]:
    """Turn a Hub download failure inside the block into one :class:`DpbenchError` line (see :func:`explain`)."""
    try:
        yield
    except DpbenchError:
        raise
    except Exception as exc:
        error = explain(exc, what, hub_id, gated=gated, offline=offline)
        if error is None:
            raise
        raise error from None


@contextlib.contextmanager
def _progress_bar(name: str) -> Iterator[Progress]:
    """A byte progress bar (huggingface_hub's tqdm: HF_HUB_DISABLE_PROGRESS_BARS turns it off) fed by a transfer."""
    utils: Any = importlib.import_module("huggingface_hub.utils")
    bars: list[Any] = []

    def update(_: str, done: int, total: int) -> None:
        if not bars:
            bars.append(utils.tqdm(total=total or None, unit="B", unit_scale=True, desc=name))
        bars[0].update(done - bars[0].n)

    try:
        yield update
    finally:
        for bar in bars:
            bar.close()


def fetch_url(url: str, what: str, *, offline: bool) -> Path:
    """The torch.hub-cached file of ``url``, downloaded (resumable, retried, with a progress bar) unless cached;
    offline: the cache only."""
    target = url_cache(url)
    if target.is_file():
        return target
    if offline:
        raise DpbenchError(f"{what}: weights file {target.name} is not cached and downloads are off (--offline or "
                           f"HF_HUB_OFFLINE=1): put {url} at {target} ($TORCH_HOME chooses the cache), or go online")
    target.parent.mkdir(parents=True, exist_ok=True)
    with _progress_bar(target.name) as progress:
        run = Run(retries=RETRIES, backoff=BACKOFF, timeout=TIMEOUT, progress=progress)
        try:
            fetch_verified([url], target, None, target.name, run, check=lambda path: None)
        except DpbenchError as exc:
            reason = str(exc).removeprefix(f"{url}: ")
            raise DpbenchError(f"{what}: downloading {url} failed ({reason}); check the connection and rerun (the "
                               f"download resumes), or put the file at {target}") from None
    return target


def hub_file(hub_id: str, filename: str, revision: str, what: str, *, gated: bool, offline: bool) -> Path:
    """One file of a Hub repository through the Hub cache (downloaded unless cached; offline: cache only)."""
    from huggingface_hub import hf_hub_download

    with hub_errors(what, hub_id, gated=gated, offline=offline):
        path: Any = hf_hub_download(hub_id, filename, revision=revision)
    return Path(path)
