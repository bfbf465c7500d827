"""Read+decode throughput from shards against plain decoding of the same images, in the same run.

Goal: the shard path (webdataset tar → RGB image, label, metadata) reaches at least 80 % of the speed
of decoding the same image files from a folder. Measured on the embedded pool (64 px tiles) and on
tiles at real patch sizes (224 and 384 px), where decoding rather than per-sample overhead dominates.

    python benchmarks/shard_read.py [--repeats 3] [--tiles 1500]
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import webdataset as wds
from PIL import Image

from dpbench.build import BuildOptions, build_pool
from dpbench.pool.manifest import IMAGE_EXTS, load_manifest
from dpbench.pool.read import decode_rgb, shard_dataset, task_dataset
from dpbench.pool.tarstream import iter_tar_samples
from dpbench.pool.write import encode_sample
from dpbench.synthetic.render import class_styles, group_style, render_tile
from dpbench.tasks import get_pool


def extract(root: Path, target: Path) -> list[Path]:
    """Write every image of a built pool as a plain file (what a folder-of-images dataset reads)."""
    files = []
    for shard in load_manifest(root).shards:
        for key, parts in iter_tar_samples(root / shard.path):
            ext = next(e for e in IMAGE_EXTS if e in parts)
            path = target / shard.task / f"{key}.{ext}"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(parts[ext])
            files.append(path)
    return files


def read_pool(root: Path) -> int:
    count = 0
    for task in load_manifest(root).tasks:
        for split, entry in task.splits.items():
            if entry.images:
                count += sum(1 for _ in task_dataset(root, task.name, split))
    return count


def read_files(files: list[Path]) -> int:
    """Decode plain files with the shard path's decoder (``decode_rgb``), so the ratio is the shards' overhead."""
    for path in files:
        Image.fromarray(decode_rgb({path.suffix[1:]: path.read_bytes()}))
    return len(files)


def tiles_at(size: int, count: int, folder: Path) -> tuple[list[str], list[Path]]:
    """``count`` rendered PNG tiles of ``size`` px, as shards of 500 and as plain files."""
    rng = np.random.default_rng(size)
    styles, groups = class_styles(4, 1.0, rng), [group_style(rng) for _ in range(8)]
    files = []
    pattern = str(folder / f"px{size}-%05d.tar")
    with wds.ShardWriter(pattern, maxcount=500, verbose=0, encoder=False, mtime=0) as writer:
        for i in range(count):
            label = i % 4
            buffer = io.BytesIO()
            Image.fromarray(render_tile(styles[label], groups[i % 8], size, rng)).save(buffer, format="PNG")
            path = folder / f"px{size}" / f"t{i:06d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(buffer.getvalue())
            files.append(path)
            writer.write(encode_sample(f"t{i:06d}", buffer.getvalue(), "png", label, {"label": label}))
    return sorted(str(p) for p in folder.glob(f"px{size}-*.tar")), files


def best_rate(read: Callable[[], int], repeats: int) -> float:
    read()  # warm the page cache
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        count = read()
        rates.append(count / (time.perf_counter() - started))
    return max(rates)


def compare(name: str, shards: Callable[[], int], files: Callable[[], int], n: int, repeats: int) -> dict[str, object]:
    raw, sharded = best_rate(files, repeats), best_rate(shards, repeats)
    return {"case": name, "images": n, "plain_files_img_s": round(raw), "shards_img_s": round(sharded),
            "ratio": round(sharded / raw, 3), "goal": 0.8}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tiles", type=int, default=500, help="tiles per realistic size")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "pool"
        build_pool(get_pool("synthetic"), root, options=BuildOptions(workers=2))
        files = extract(root, Path(tmp) / "files")
        results.append(compare("embedded pool, 64 px", lambda: read_pool(root), lambda: read_files(files),
                               len(files), args.repeats))
        for size in (224, 384):
            urls, plain = tiles_at(size, args.tiles, Path(tmp))
            results.append(compare(f"rendered tiles, {size} px", lambda u=urls: sum(1 for _ in shard_dataset(u)),
                                   lambda p=plain: read_files(p), len(plain), args.repeats))
    print(json.dumps({"machine": f"{platform.machine()}, {platform.python_version()}", "results": results},
                     indent=1))


if __name__ == "__main__":
    main()
