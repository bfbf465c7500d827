"""Download a published pool from mirrors: parallel, resumable, verified, atomic, with failover.

A mirror serves a built pool's layout under a base URL (``https://host/path/``, e.g. a Hugging Face dataset
repo's ``https://huggingface.co/datasets/ORG/NAME/resolve/<revision>/``; ``file:///abs/path/``; or a local
folder). Plain ``http://`` is accepted only for 127.0.0.1/localhost (local testing and test servers).

Every file is fetched into a fixed temporary sibling ``<name>.tmp-partial``, verified against the manifest
(shards: size and sha256; ``split.json``: its own hash and the manifest's ``split_sha256``) and only then
renamed into place, so a final name never holds a partial or unverified file. A temporary file that an
interrupted transfer left behind is kept and resumed with an HTTP ``Range`` request; one that fails
verification is deleted. Files that already verify in ``out`` are never fetched again.
"""

from __future__ import annotations

import functools
import hashlib
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from dpbench.errors import AllMirrorsFailed, DpbenchError, TransferCancelled, TransferFailure
from dpbench.io import atomic_write_json, ensure_writable
from dpbench.pool.manifest import MANIFEST, Manifest, existing_manifest, load_manifest
from dpbench.pool.verify import file_problem, split_problem
from dpbench.tasks.registry import published_manifests
from dpbench.transport.mirrors import ENV_MIRRORS, normalise_mirror, resolve_mirrors, stream_urls
from dpbench.transport.transfer import Progress, Run, fetch_verified, open_url, try_mirrors

SPLIT_FILE = "split.json"
__all__ = ["DownloadReport", "download_pool", "normalise_mirror", "resolve_mirrors", "stream_urls"]


@dataclass
class DownloadReport:
    """What a download did: ``manifest`` is the one written to ``out`` (merged with earlier downloads)."""

    manifest: Manifest
    fetched: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    bytes_fetched: int = 0  # bytes received over all attempts, failed ones included
    seconds: float = 0.0
    mirror_of: dict[str, str] = field(default_factory=dict)  # fetched file (and manifest.json) → mirror
    failed_attempts: int = 0
    warnings: list[str] = field(default_factory=list)

    def per_mirror(self) -> dict[str, int]:
        """Files fetched from each mirror."""
        return dict(Counter(self.mirror_of[f] for f in self.fetched))


@dataclass(frozen=True)
class _Job:
    rel: str
    size: int | None  # known for shards: lets an interrupted transfer resume
    check: Callable[[Path], str | None]


@dataclass(frozen=True)
class _Outcome:
    rel: str
    mirror: str | None = None  # None: reused
    error: str | None = None


def _jobs(manifest: Manifest, names: list[str]) -> list[_Job]:
    jobs: list[_Job] = []
    for name in names:
        jobs.append(_Job(f"{name}/{SPLIT_FILE}", None, functools.partial(split_problem, entry=manifest.task(name))))
        jobs += [_Job(s.path, s.bytes, functools.partial(file_problem, entry=s))
                 for s in manifest.shards if s.task == name]
    return jobs


def _run_job(job: _Job, out: Path, mirrors: list[str], run: Run) -> _Outcome:
    """Reuse ``job``'s file if it verifies, else fetch it from the first mirror that delivers a verified copy."""
    final = out / job.rel
    if run.cancel.is_set():
        return _Outcome(job.rel, error="cancelled")
    if final.is_file():
        if job.check(final) is None:
            if run.progress:
                run.progress(job.rel, job.size or 0, job.size or 0)
            return _Outcome(job.rel)
        final.unlink()  # invalid: never leave it under its final name
    final.parent.mkdir(parents=True, exist_ok=True)
    urls = [mirror + urllib.parse.quote(job.rel) for mirror in mirrors]
    try:
        url = fetch_verified(urls, final, job.size, job.rel, run, job.check)
        return _Outcome(job.rel, mirror=mirrors[urls.index(url)])
    except AllMirrorsFailed as exc:
        return _Outcome(job.rel, error=str(exc))
    except TransferCancelled:
        return _Outcome(job.rel, error="cancelled")


def _fetch_manifest(mirrors: list[str], run: Run) -> tuple[Manifest, str, str]:
    """(manifest, the mirror that served it, the sha256 of the bytes it served)."""
    def attempt(mirror: str) -> tuple[Manifest, str, str]:
        body, _, _ = open_url(mirror + MANIFEST, 0, run.timeout)
        with body:
            data = body.read()
        run.add(received=len(data))
        try:
            return Manifest.model_validate_json(data), mirror, hashlib.sha256(data).hexdigest()
        except (ValidationError, ValueError) as exc:
            raise TransferFailure(f"{MANIFEST} is not a valid dpbench manifest", permanent=True) from exc

    try:
        return try_mirrors(mirrors, run, attempt)
    except AllMirrorsFailed as exc:
        raise DpbenchError(f"no mirror served a valid {MANIFEST} (tried {', '.join(mirrors)}; last error: {exc}); "
                           "check the network or pass another --mirror URL (or use --offline on a downloaded "
                           "folder)") from exc


def check_pin(manifest: Manifest, sha256: str, mirror: str, trust_mirror: bool) -> str | None:
    """Refuse a manifest whose sha256 differs from the one this dpbench pins for its pool version; without a pin,
    refuse unless ``trust_mirror`` (then return the warning to show)."""
    pinned = published_manifests().get(manifest.pool, {}).get(manifest.pool_version)
    if pinned is not None:
        if sha256 != pinned:
            raise DpbenchError(f"the mirror {mirror} serves a {MANIFEST} for pool {manifest.pool!r} version "
                               f"{manifest.pool_version} with sha256 {sha256[:12]}…, but this dpbench pins "
                               f"{pinned[:12]}… for that version: the mirror altered the benchmark; use another "
                               "--mirror")
        return None
    if not trust_mirror:
        raise DpbenchError(f"pool {manifest.pool!r} version {manifest.pool_version} (served by {mirror}) has no "
                           f"pinned {MANIFEST} in this dpbench release, so nothing vouches for the mirror's labels "
                           "and splits; upgrade dpbench, or pass --trust-mirror for a mirror you control")
    return (f"--trust-mirror: pool {manifest.pool!r} version {manifest.pool_version} is not pinned; the mirror "
            f"{mirror}'s own {MANIFEST} (sha256 {sha256[:12]}…) is the only trust root of this download")


def _select(manifest: Manifest, tasks: list[str] | None, expected_pool: str | None, where: str) -> list[str]:
    """The requested task names in manifest order, after checking the pool and the names."""
    if expected_pool is not None and manifest.pool != expected_pool:
        raise DpbenchError(f"{where} holds pool {manifest.pool!r}, not {expected_pool!r}; "
                           f"pass a mirror of {expected_pool!r} with --mirror URL")
    available = [t.name for t in manifest.tasks]
    if tasks is None:
        return available
    unknown = [t for t in tasks if t not in available]
    if unknown:
        raise DpbenchError(f"unknown task(s) {', '.join(unknown)}: {where} has {', '.join(available)}")
    return [n for n in available if n in tasks]


def _previous(out: Path, source: Manifest) -> Manifest | None:
    old = existing_manifest(out)  # an unreadable one is replaced by this download's manifest
    if old is not None and (old.pool, old.pool_version) != (source.pool, source.pool_version):
        raise DpbenchError(f"{out} already holds pool {old.pool!r} version {old.pool_version}, the mirror serves "
                           f"{source.pool!r} version {source.pool_version}: choose another --out")
    return old


def _merge(source: Manifest, names: list[str], old: Manifest | None, out: Path,
           executor: ThreadPoolExecutor) -> Manifest:
    """``source`` restricted to ``names`` plus earlier downloaded tasks whose files still verify."""
    chosen = {n: (source.task(n), source) for n in names}
    if old is not None:
        for entry in old.tasks:
            if entry.name not in chosen:
                jobs = _jobs(old, [entry.name])
                if all(p is None for p in executor.map(lambda j: j.check(out / j.rel), jobs)):
                    chosen[entry.name] = (entry, old)
    known = [t.name for t in source.tasks]
    order = [n for n in known if n in chosen] + [n for n in chosen if n not in known]
    shards = [s for n in order for s in chosen[n][1].shards if s.task == n]
    return source.model_copy(update={"tasks": [chosen[n][0] for n in order], "shards": shards})


def _offline(out: Path, tasks: list[str] | None, expected_pool: str | None, workers: int,
             progress: Progress | None, started: float) -> DownloadReport:
    if not (out / MANIFEST).is_file():
        raise DpbenchError(f"--offline: no {MANIFEST} in {out}; run without --offline first to download the pool")
    manifest = load_manifest(out)
    names = _select(manifest, tasks, expected_pool, str(out))
    jobs = _jobs(manifest, names)
    with ThreadPoolExecutor(workers) as executor:
        problems = list(executor.map(lambda j: j.check(out / j.rel), jobs))
    bad = [f"{j.rel} ({p})" for j, p in zip(jobs, problems, strict=True) if p]
    if bad:
        shown = "; ".join(bad[:5]) + (f"; and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise DpbenchError(f"--offline: {len(bad)} file(s) missing or invalid in {out}: {shown}; "
                           "run without --offline to download them")
    for job in jobs:
        if progress:
            progress(job.rel, job.size or 0, job.size or 0)
    return DownloadReport(manifest=manifest, reused=[j.rel for j in jobs], seconds=time.perf_counter() - started)


def download_pool(out: Path, mirrors: list[str], tasks: list[str] | None = None, *, offline: bool = False,
                  workers: int = 4, retries: int = 4, backoff: float = 0.5, timeout: float = 30.0,
                  expected_pool: str | None = None, progress: Progress | None = None,
                  trust_mirror: bool = False) -> DownloadReport:
    """Download the pool (or its ``tasks``) served by ``mirrors`` into ``out`` and write ``out/manifest.json``.

    ``retries`` is the number of retries per mirror per file (404/401/403/410 are not retried) before failing
    over to the next mirror; retry ``n`` waits ``backoff * 2**n`` seconds. ``timeout`` bounds each connect and
    each read (a stalled transfer), not a whole file. ``progress(name, done, total)``
    is called from worker threads. ``offline``: no network; verify what ``out`` holds against its own
    manifest. If some file cannot be fetched, verified files stay in place, their partial temporaries stay
    for resumption, ``out/manifest.json`` is left untouched and a DpbenchError names the file. The mirror's manifest
    must be the one this dpbench pins for its pool version (:func:`check_pin`); ``trust_mirror`` accepts an
    unpinned version, with a warning in the report.
    """
    started = time.perf_counter()
    if workers < 1 or retries < 0 or backoff < 0 or timeout <= 0:
        raise DpbenchError("--workers must be ≥ 1, --retries and --backoff ≥ 0 and --timeout > 0")
    if offline:
        return _offline(out, tasks, expected_pool, workers, progress, started)
    bases = [normalise_mirror(m) for m in mirrors]
    if not bases:
        raise DpbenchError(f"no mirror to download from: pass --mirror URL or set {ENV_MIRRORS}")
    ensure_writable(out)
    run = Run(retries=retries, backoff=backoff, timeout=timeout, progress=progress)
    source, served_by, digest = _fetch_manifest(bases, run)
    warning = check_pin(source, digest, served_by, trust_mirror)
    names = _select(source, tasks, expected_pool, f"the mirror {served_by}")
    old = _previous(out, source)
    order = [served_by] + [m for m in bases if m != served_by]
    jobs = _jobs(source, names)
    with ThreadPoolExecutor(workers) as executor:
        try:
            outcomes = list(executor.map(lambda j: _run_job(j, out, order, run), jobs))
        except BaseException:
            run.cancel.set()
            raise
        failures = [o for o in outcomes if o.error]
        if failures:
            others = f" ({len(failures) - 1} other file(s) failed too)" if len(failures) > 1 else ""
            raise DpbenchError(f"could not download {failures[0].rel}{others}: tried {', '.join(order)}; last error: "
                               f"{failures[0].error}. Verified files are kept: rerun to resume, or pass another "
                               "--mirror URL")
        merged = _merge(source, names, old, out, executor)
    atomic_write_json(out / MANIFEST, merged.model_dump(mode="json"))
    done = [o for o in outcomes if o.mirror]
    return DownloadReport(manifest=merged, fetched=[o.rel for o in done],
                          reused=[o.rel for o in outcomes if not o.mirror], bytes_fetched=run.received,
                          seconds=time.perf_counter() - started, failed_attempts=run.failed,
                          mirror_of={MANIFEST: served_by} | {o.rel: o.mirror for o in done if o.mirror},
                          warnings=[warning] if warning else [])
