"""Build a pool into webdataset shards: split, write (resumably, in parallel), and record the manifest."""

from __future__ import annotations

import functools
import multiprocessing
import multiprocessing.queues
import queue
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from dpbench import __version__
from dpbench.build.journal import ShardJournal
from dpbench.errors import DpbenchError
from dpbench.io import (
    atomic_write_json,
    die_with_parent,
    ensure_writable,
    remove_stale_temps,
    sha256_file,
    shuffle_order,
)
from dpbench.pool.manifest import (
    MANIFEST,
    Manifest,
    ShardEntry,
    SplitEntry,
    TaskEntry,
    existing_manifest,
    shard_pattern,
)
from dpbench.pool.splits import SampleRef, SplitManifest, grouped_split
from dpbench.pool.tarstream import tar_keys
from dpbench.pool.verify import check_shard
from dpbench.pool.write import encode_sample, write_shards
from dpbench.tasks.models import SPLITS, Pool, SplitName, Task
from dpbench.tasks.registry import get_task, pool_tasks, pool_version
from dpbench.tasks.samples import Sample, TaskSource
from dpbench.tasks.synthetic import paper_name_of

Progress = Callable[[str, int, int], None]  # (task, images written, shards written)
SplitCheck = Callable[[Task, list[Sample], SplitManifest], None]


@dataclass(frozen=True)
class BuildOptions:
    """Knobs of a build; the same options and inputs give byte-identical output."""

    shard_size: int = 1000
    shuffle_seed: int = 0
    workers: int = 2
    raw: Path | None = None  # raw-data root for real (non-synthetic) tasks


@dataclass
class TaskReport:
    """What building one task did."""

    entry: TaskEntry
    shards: list[ShardEntry]
    written: int = 0
    reused: int = 0
    seconds: float = 0.0
    skipped: dict[str, int] = field(default_factory=dict)  # raw items a converter left out, by reason


@dataclass
class BuildReport:
    manifest: Manifest
    tasks: list[TaskReport] = field(default_factory=list)
    seconds: float = 0.0
    missing: dict[str, str] = field(default_factory=dict)  # task → why it was not built (raw data absent)


@dataclass(frozen=True)
class TaskJob:
    """One task to build: its metadata, how to get its samples and, optionally, a stricter check of its split
    (module-level callables or partials of them, so that a job pickles into a worker process)."""

    task: Task
    make_source: Callable[[Task], TaskSource]
    check_split: SplitCheck | None = None


def registry_job(name: str, raw: Path | None) -> TaskJob:
    """The job of a registry task, its samples from the synthetic generator or the converter of ``raw``."""
    return TaskJob(get_task(name), functools.partial(task_source, raw=raw))


def task_source(task: Task, raw: Path | None = None) -> TaskSource:
    """The sample provider of a task (the synthetic generator, or the converter of its raw data)."""
    if task.synthetic:
        from dpbench.synthetic.pool import SyntheticSource

        return SyntheticSource(task)
    if raw is None:
        raise DpbenchError(
            f"task {task.name} is built from its raw source ({task.source.id}): pass --raw DIR with the "
            "downloaded data (see `dpbench sources list`), or build the embedded pool: dpbench build --pool synthetic"
        )
    from dpbench.convert import converter_for

    return converter_for(task, raw)


def raw_problem(task: Task, raw: Path | None) -> str | None:
    """Why ``task`` cannot be built from ``raw`` (no converter, data absent), or None when it can."""
    if task.synthetic:
        return None
    from dpbench.convert import converter_module, locate

    if converter_module(task) is None:
        return f"no converter for source {task.source.id}"
    if raw is None:
        return "no --raw folder given"
    if locate(task, raw) is None:
        if task.availability == "private":
            return (f"private data: no export of {task.name} under {raw} (see docs/sources/{task.source.id}.md "
                    "for the accepted layouts)")
        return f"raw data not in {raw / task.source.folder} (dpbench sources fetch {task.source.id} --to {raw})"
    return None


def plan_build(pool: Pool, only: list[str] | None, raw: Path | None) -> tuple[list[Task], dict[str, str]]:
    """The tasks of ``pool`` (or its ``only`` tasks) that can be built from ``raw``, and task → why for the
    others (see :func:`raw_problem`)."""
    tasks = pool_tasks(pool, only)
    missing = {t.name: why for t in tasks if (why := raw_problem(t, raw))}
    return [t for t in tasks if t.name not in missing], missing


def target_fractions(task: Task) -> dict[SplitName, float]:
    """Image fraction per split that the splitter aims at (a synthetic task aims at its paper task's)."""
    if task.synthetic:
        return get_task(paper_name_of(task)).sizes.fractions()
    return task.sizes.fractions()


def split_task(task: Task, samples: list[Sample], check: SplitCheck | None = None) -> SplitManifest:
    """Split ``samples`` by the task's unit (``check`` may refuse the result first); stop if the result differs from
    the registry's pin."""
    refs = [SampleRef(s.key, s.group, s.label, s.split) for s in samples]
    try:
        fractions = target_fractions(task)
        split = grouped_split(task.name, task.split_unit, refs, fractions, task.n_classes)
    except ValueError as exc:
        raise DpbenchError(f"{exc}; check the task's source data") from exc
    if check is not None:
        check(task, samples, split)
    _check_splits_filled(task, split, fractions)
    if task.split_sha256 and split.sha256 != task.split_sha256:
        raise DpbenchError(
            f"the split of {task.name} ({split.sha256[:12]}) differs from the registry pin "
            f"({task.split_sha256[:12]}): the input data or the splitting code changed; "
            "check the raw data, or update the pin if the change is intended"
        )
    return split


def _check_splits_filled(task: Task, split: SplitManifest, fractions: dict[SplitName, float]) -> None:
    """Refuse a split that leaves the training or the test split without any group: nothing could be trained or
    scored. (An empty validation split is allowed: the linear probe selects C by CV on train+val, and fine-tuning
    skips such a task with that reason; the build summary says so.)"""
    counts = split.counts()
    empty = [s for s in ("train", "test") if fractions.get(s, 0.0) > 0 and counts[s][1] == 0]
    if empty:
        needed = sum(1 for s in SPLITS if fractions.get(s, 0.0) > 0)
        groups = len(split.groups)
        raise DpbenchError(f"task {task.name}: its {groups} {task.split_unit} group(s) leave the {' and '.join(empty)} "
                           f"split empty; a task split by {task.split_unit} needs at least {needed} groups (one per "
                           f"split), and more for every class in every split: add data from more {task.split_unit}s")


def _reusable(path: Path, keys: list[str], old: dict[str, ShardEntry], rel: str,
              journal: ShardJournal) -> str | None:
    """The sha256 of an existing shard that can be kept, else None: its bytes must have the hash this pool recorded
    for it (the old manifest's entry, else the build journal's) and it must hold exactly the planned keys."""
    expected = old[rel].sha256 if rel in old else journal.hashes.get(rel)
    if expected is None or (rel in old and old[rel].count != len(keys)):
        return None
    try:
        sha = sha256_file(path)
        return sha if sha == expected and tar_keys(path) == keys else None
    except Exception:  # any unreadable file is rebuilt
        return None


def build_task(root: Path, task_name: str | TaskJob, options: BuildOptions, old_shards: dict[str, ShardEntry],
               progress: Progress | None = None) -> TaskReport:
    """Split and shard one task (a registry task's name, or a job) under ``root/<task>/``, reusing complete shards
    of an earlier run."""
    started = time.perf_counter()
    job = task_name if isinstance(task_name, TaskJob) else registry_job(task_name, options.raw)
    task = job.task
    source = job.make_source(task)
    samples = source.samples()
    split = split_task(task, samples, job.check_split)
    folder = root / task.name
    folder.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(folder)
    atomic_write_json(folder / "split.json", split.model_dump(mode="json"))
    by_key = {s.key: s for s in samples}
    journal = ShardJournal(root, task.name)
    hashes: dict[str, str] = {}  # shard path → sha256 of its bytes, as checked or written in this run
    report = TaskReport(entry=_task_entry(task, split), shards=[], skipped=dict(source.skipped))

    def prepare(chunk: list[str]) -> None:  # converters decode each raw file once per shard
        source.prepare([by_key[k] for k in chunk])

    def make_sample(key: str) -> dict[str, object]:
        sample = by_key[key]
        record = {
            "task": task.name, "key": key, "label": sample.label, "class_name": task.class_names[sample.label],
            "group": sample.group, "split": split.samples[key], "source": sample.source,
            "coords": list(sample.coords) if sample.coords else None, "um_per_px": sample.um_per_px,
            "licence": task.licence, "source_id": task.source.id, "redistributable": task.redistributable,
            "synthetic": task.synthetic,
        }
        return encode_sample(key, source.image(sample), source.image_ext, sample.label, record)

    for name in SPLITS:
        keys = shuffle_order((k for k, s in split.samples.items() if s == name), options.shuffle_seed)
        chunks = [keys[i:i + options.shard_size] for i in range(0, len(keys), options.shard_size)]
        pattern = shard_pattern(task.name, name)
        todo = []
        for index, chunk in enumerate(chunks):
            path = root / (pattern % index)
            sha = _reusable(path, chunk, old_shards, pattern % index, journal) if path.exists() else None
            if sha is not None:
                hashes[pattern % index] = sha
                report.reused += 1
                if progress:
                    progress(task.name, len(chunk), 1)
            else:
                path.unlink(missing_ok=True)
                journal.forget(pattern % index)
                todo.append(index)
        for stale in folder.glob(f"{name}-*.tar"):
            if int(stale.stem.rsplit("-", 1)[1]) >= len(chunks):
                stale.unlink()

        def tick(name: str = task.name) -> None:
            if progress:
                progress(name, 1, 0)

        def written(path: Path) -> None:
            hashes[path.relative_to(root).as_posix()] = journal.record_file(root, path)

        write_shards(root, task.name, name, chunks, todo, make_sample, tick, before_chunk=prepare, on_shard=written)
        report.written += len(todo)
        for index, chunk in enumerate(chunks):
            rel = pattern % index
            path = root / rel
            report.shards.append(ShardEntry(path=rel, task=task.name, split=name, sha256=hashes[rel],
                                            count=len(chunk), bytes=path.stat().st_size))
            if progress and index in todo:
                progress(task.name, 0, 1)
    verify_written(root, task, report.shards)
    report.seconds = time.perf_counter() - started
    return report


def verify_written(root: Path, task: Task, shards: list[ShardEntry]) -> None:
    """Check every shard of ``task`` as ``dpbench verify`` would (hash, size, entries, labels, count; images
    are not decoded), so a build never reports success over shards that fail verification. A bad shard is
    deleted, so that a rerun writes it again, and the build stops."""
    for entry in shards:
        problem = check_shard(root, entry, task.n_classes, decode=False)
        if problem:
            (root / entry.path).unlink(missing_ok=True)
            raise DpbenchError(f"{task.name}: shard {entry.path} fails verification after writing ({problem}); "
                               "nothing was recorded: this is a dpbench bug, report it with the task name")


def _task_entry(task: Task, split: SplitManifest) -> TaskEntry:
    counts = split.counts()
    return TaskEntry(
        name=task.name, classes=list(task.class_names), metric=task.metric, split_unit=task.split_unit,
        split_sha256=split.sha256, splits={s: SplitEntry(images=counts[s][0], groups=counts[s][1]) for s in SPLITS},
        missing_classes=split.missing_classes, licence=task.licence, redistributable=task.redistributable,
        synthetic=task.synthetic,
    )


def previous_manifest(root: Path, pool: str) -> Manifest | None:
    """The manifest already in ``root`` (None when absent or unreadable: it is rebuilt from the shards' own keys);
    an error when it belongs to another pool."""
    old = existing_manifest(root)
    if old is not None and old.pool != pool:
        raise DpbenchError(f"{root} already holds pool {old.pool!r}; choose another --out for pool {pool}")
    return old


_CHANNEL: multiprocessing.queues.Queue[tuple[str, int, int]] | None = None  # a worker's progress queue


def _start_worker(channel: multiprocessing.queues.Queue[tuple[str, int, int]]) -> None:
    """Worker initializer: die with the parent (a killed build leaves no worker behind), keep the progress queue."""
    global _CHANNEL
    die_with_parent()
    _CHANNEL = channel


def _run_in_worker(root: Path, job: TaskJob, options: BuildOptions, old: dict[str, ShardEntry]) -> TaskReport:
    channel = _CHANNEL
    assert channel is not None, "the worker initializer sets the progress queue"
    return build_task(root, job, options, old, lambda task, images, shards: channel.put((task, images, shards)))


def build_pool(pool: Pool, root: Path, only: list[str] | None = None, options: BuildOptions | None = None,
               progress: Progress | None = None, on_task: Callable[[TaskReport], None] | None = None,
               plan: tuple[list[Task], dict[str, str]] | None = None) -> BuildReport:
    """Build ``pool`` (or the ``only`` tasks of it) into ``root`` and write ``root/manifest.json``.

    ``plan`` is :func:`plan_build`'s answer for the same pool, ``only`` and raw folder, when the caller
    already has it. Absent raw data stop the build when tasks were named or no task can be built; otherwise
    those tasks are left out and reported in :attr:`BuildReport.missing`."""
    options = options or BuildOptions()
    if options.shard_size < 1:
        raise DpbenchError("--shard-size must be at least 1")
    tasks, missing = plan if plan is not None else plan_build(pool, only, options.raw)
    if missing and (only or not tasks):
        name, why = next(iter(missing.items()))
        more = f" (and {len(missing) - 1} more task(s))" if len(missing) > 1 else ""
        raise DpbenchError(f"cannot build {name}: {why}{more}")
    ensure_writable(root)
    started = time.perf_counter()
    old = previous_manifest(root, pool.name)
    old_shards = {s.path: s for s in old.shards} if old else {}
    reports = run_jobs(root, [registry_job(t.name, options.raw) for t in tasks], options, old_shards, progress, on_task)
    manifest = _merge(pool, old, [reports[t.name] for t in tasks])
    atomic_write_json(root / MANIFEST, manifest.model_dump(mode="json"))
    return BuildReport(manifest=manifest, tasks=[reports[t.name] for t in tasks],
                       seconds=time.perf_counter() - started, missing=missing)


def run_jobs(root: Path, jobs: list[TaskJob], options: BuildOptions, old_shards: dict[str, ShardEntry],
             progress: Progress | None = None, on_task: Callable[[TaskReport], None] | None = None
             ) -> dict[str, TaskReport]:
    """Build each job's task under ``root`` (in ``options.workers`` processes when there are several); task →
    report."""
    reports: dict[str, TaskReport] = {}
    if options.workers <= 1 or len(jobs) == 1:
        for job in jobs:
            reports[job.task.name] = build_task(root, job, options, old_shards, progress)
            if on_task:
                on_task(reports[job.task.name])
    else:
        ctx = multiprocessing.get_context("spawn")
        channel: multiprocessing.queues.Queue[tuple[str, int, int]] = ctx.Queue()
        with ProcessPoolExecutor(options.workers, mp_context=ctx, initializer=_start_worker,
                                 initargs=(channel,)) as executor:
            futures: dict[Future[TaskReport], str] = {
                executor.submit(_run_in_worker, root, job, options, old_shards): job.task.name for job in jobs
            }
            pending = set(futures)
            while pending:
                for future in [f for f in pending if f.done()]:
                    pending.discard(future)
                    reports[futures[future]] = future.result()
                    if on_task:
                        on_task(reports[futures[future]])
                try:
                    message = channel.get(timeout=0.1)
                except queue.Empty:
                    continue
                if progress:
                    progress(*message)
            while progress and not channel.empty():
                progress(*channel.get())
    return reports


def _merge(pool: Pool, old: Manifest | None, reports: list[TaskReport]) -> Manifest:
    """The new manifest: this run's tasks plus earlier tasks of the same pool, in the pool's order."""
    entries = {t.name: t for t in old.tasks} if old else {}
    shards = {t: [s for s in old.shards if s.task == t] for t in entries} if old else {}
    for report in reports:
        entries[report.entry.name] = report.entry
        shards[report.entry.name] = report.shards
    order = [n for n in pool.tasks if n in entries]
    version = pool_version(pool, {n: entries[n].split_sha256 for n in order})
    return Manifest(pool=pool.name, pool_version=version, synthetic=pool.synthetic, dpbench_version=__version__,
                    tasks=[entries[n] for n in order], shards=[s for n in order for s in shards[n]])
