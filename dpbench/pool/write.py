"""Writing webdataset shards: deterministic sample encoding and resumable, atomic shard files."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import webdataset as wds

from dpbench.io import TMP_MARK
from dpbench.pool.manifest import shard_pattern


def write_shards(
    root: Path,
    task: str,
    split: str,
    chunks: list[list[str]],
    todo: list[int],
    make_sample: Callable[[str], dict[str, Any]],
    on_sample: Callable[[], None] = lambda: None,
    before_chunk: Callable[[list[str]], None] | None = None,
    on_shard: Callable[[Path], None] | None = None,
) -> None:
    """Write shard ``i`` of ``chunks`` for every ``i`` in ``todo`` with webdataset's ShardWriter.

    ``before_chunk`` (if given) gets ``chunks[i]`` just before shard ``i`` is written, e.g. to decode the
    shard's raw files in one batch; ``on_shard`` gets each shard's final path once it is in place. Each shard goes
    to a temporary file that is fsynced and renamed into place
    only when complete, so a killed build never leaves a half-written shard under a final name.
    """
    pattern = str(root / shard_pattern(task, split))
    runs: list[list[int]] = []
    for index in sorted(todo):
        if runs and runs[-1][-1] == index - 1:
            runs[-1].append(index)
        else:
            runs.append([index])
    for run in runs:
        open_files: dict[str, IO[bytes]] = {}

        def opener(fname: str, files: dict[str, IO[bytes]] = open_files) -> IO[bytes]:
            files[fname] = open(f"{fname}{TMP_MARK}{os.getpid()}", "wb")  # noqa: SIM115
            return files[fname]

        def commit(fname: str, files: dict[str, IO[bytes]] = open_files) -> None:
            handle = files.pop(fname)
            handle.flush()
            os.fsync(handle.fileno())
            handle.close()
            os.replace(handle.name, fname)
            if on_shard is not None:
                on_shard(Path(fname))

        size = len(chunks[run[0]])
        writer = wds.ShardWriter(pattern, maxcount=size, maxsize=float("inf"), start_shard=run[0],
                                 opener=opener, post=commit, verbose=0, encoder=False, mtime=0)
        try:
            for index in run:
                if before_chunk is not None:
                    before_chunk(chunks[index])
                for key in chunks[index]:
                    writer.write(make_sample(key))
                    on_sample()
            writer.close()
        except BaseException:  # interrupted mid-shard: drop the temporary file, final names stay clean
            if open_files and writer.tarstream is not None:
                writer.tarstream.close()  # ends the tar stream inside the temporary file only
            for handle in open_files.values():
                handle.close()
                os.unlink(handle.name)
            raise


def encode_sample(key: str, image: bytes, ext: str, label: int, record: dict[str, Any]) -> dict[str, Any]:
    """The webdataset dict of one sample, every entry already bytes (deterministic encoding)."""
    return {
        "__key__": key,
        ext: image,
        "cls": str(label).encode(),
        "json": json.dumps(record, sort_keys=True, separators=(",", ":")).encode(),
    }


