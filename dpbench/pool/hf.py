"""A built pool as a Hugging Face ``datasets`` dataset: one task split, in shard order, with a fixed schema.

Columns: ``image`` (``datasets.Image``), ``label`` (``ClassLabel`` named by the manifest's classes), ``key``,
``group`` and the provenance of each sample's JSON record (:data:`PROVENANCE`; None where a record lacks a field).
The map-style dataset is generated once into the ``datasets`` cache, keyed by the shards' sha256, so a rebuilt pool
is never served from a stale cache; ``streaming=True`` reads the shards on every pass instead.
``datasets`` is imported on first use only: importing :mod:`dpbench.pool` stays cheap.
"""

from __future__ import annotations

import json
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dpbench.errors import DpbenchError
from dpbench.pool.manifest import IMAGE_EXTS, PoolFolder, as_folder
from dpbench.pool.tarstream import iter_tar_samples

if TYPE_CHECKING:
    from datasets import Dataset, Features, IterableDataset

#: Fields copied from each sample's JSON record (what ``dpbench build`` writes there).
PROVENANCE = ("source", "source_id", "coords", "um_per_px", "licence")


def hf_features(classes: list[str]) -> Features:
    """The schema of every dataset :func:`hf_dataset` returns (``classes``: the task's class names)."""
    from datasets import ClassLabel, Features, Image, Sequence, Value

    return Features({
        "image": Image(),
        "label": ClassLabel(names=list(classes)),
        "key": Value("string"),
        "group": Value("string"),
        "source": Value("string"),  # the raw file (or synthetic seed) the image comes from
        "source_id": Value("string"),  # the registry's source id
        "coords": Sequence(Value("int64"), length=4),  # x, y, width, height in the source image
        "um_per_px": Value("float64"),
        "licence": Value("string"),
    })


def _row(key: str, parts: dict[str, bytes], shard: str, n_classes: int) -> dict[str, Any]:
    """One dataset row from a shard sample's entries (one clear error for a sample that is not dpbench's)."""
    ext = next((e for e in IMAGE_EXTS if e in parts), None)
    fix = "run dpbench verify on the pool"
    if ext is None or "cls" not in parts or "json" not in parts:
        raise DpbenchError(f"sample {key} in {shard} lacks its image, .cls or .json entry; {fix}")
    try:
        label = int(parts["cls"])
        record = json.loads(parts["json"])
    except ValueError:
        raise DpbenchError(f"sample {key} in {shard} has an unreadable .cls or .json entry; {fix}") from None
    if not isinstance(record, dict) or not 0 <= label < n_classes:
        raise DpbenchError(f"sample {key} in {shard} has a bad record or label {label}; {fix}")
    provenance = {name: record.get(name) for name in PROVENANCE}
    return {"image": {"bytes": parts[ext], "path": None}, "label": label, "key": key, "group": record.get("group"),
            **provenance}


def _rows(shards: list[tuple[str, str]], n_classes: int) -> Iterator[dict[str, Any]]:
    """Rows of ``shards`` ((path, sha256) pairs, the hash only keys the cache) in shard and file order."""
    for path, _sha256 in shards:
        try:
            for key, parts in iter_tar_samples(Path(path)):
                yield _row(key, parts, path, n_classes)
        except (tarfile.TarError, OSError) as exc:
            raise DpbenchError(f"{path}: {exc}; run dpbench verify on the pool") from None


def hf_dataset(pool: PoolFolder | Path | str, task: str, split: str, *, streaming: bool = False,
               cache_dir: Path | None = None) -> Dataset | IterableDataset:
    """One task split of a built pool as a ``datasets.Dataset`` (or ``IterableDataset`` with ``streaming``).

    Rows come in shard order, the order of ``BuiltPool(root).dataset(task, split)``. ``cache_dir``: where the
    map-style dataset is generated (default: the ``datasets`` cache). Works offline: nothing is downloaded.
    """
    folder = as_folder(pool)
    paths = folder.shards(task, split)  # unknown task or split: one clear error
    entry = folder.task(task)
    if not paths:
        raise DpbenchError(f"task {task} has no {split} samples in {folder.root}")
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise DpbenchError(f"{missing[0]} is missing ({len(missing)} shard(s) of {task} {split}); download or "
                           f"rebuild the pool, then run dpbench verify {folder.root}")
    shards = [(str(folder.root / s.path), s.sha256) for s in folder.manifest.shards_of(entry.name, split)]
    kwargs = {"shards": shards, "n_classes": len(entry.classes)}
    features = hf_features(entry.classes)
    from datasets import Dataset, IterableDataset

    if streaming:
        return IterableDataset.from_generator(_rows, features=features, gen_kwargs=kwargs)
    from datasets.exceptions import DatasetGenerationError

    try:
        return Dataset.from_generator(_rows, features=features, gen_kwargs=kwargs,
                                      cache_dir=str(cache_dir) if cache_dir is not None else None)
    except DatasetGenerationError as exc:  # datasets wraps what the generator raised
        if isinstance(exc.__cause__, DpbenchError):
            raise DpbenchError(str(exc.__cause__)) from None
        raise
