"""Feature-extraction throughput from shards against the same encoder on synthetic tensors, same run.

Goal on a GPU: the shard path (read, decode, resize, normalise, forward) reaches ≥ 90 % of the
encoder's ceiling on ready-made device tensors. On a CPU both numbers are reported for reference. Also
reported: the input pipeline alone (``loader_img_s``: workers reading and decoding, no model), which says
whether the host or the device limits the shard path.

    python benchmarks/extract_throughput.py [--encoder torchvision:resnet50] [--device auto]
        [--batch 256] [--workers 8] [--precision bf16] [--channels-last] [--data DIR] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

from dpbench.build import BuildOptions, build_pool
from dpbench.encoders import load_encoder
from dpbench.evaluation.features import forward_shards, resolve_device, tile_loader
from dpbench.pool.manifest import load_manifest
from dpbench.tasks import get_pool


def ceiling(module: torch.nn.Module, size: int, batch: int, n_images: int, device: torch.device, bf16: bool,
            channels_last: bool) -> float:
    """Images/s of the encoder alone on random tensors already on the device."""
    x = torch.randn(batch, 3, size, size, device=device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    steps = max(1, n_images // batch)
    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        for _ in range(3):
            module(x)
        if device.type == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        for _ in range(steps):
            module(x)
        if device.type == "cuda":
            torch.cuda.synchronize()
    return steps * batch / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--encoder", default="torchvision:resnet50")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1))
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="bf16")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--data", type=Path, help="a built pool (default: build the synthetic pool)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs; the best is reported")
    parser.add_argument("--passes", type=int, default=1, help="passes over the pool's shards within one run")
    args = parser.parse_args()
    device = resolve_device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        root = args.data or Path(tmp) / "pool"
        if args.data is None:
            print("building the synthetic pool …", file=sys.stderr)
            build_pool(get_pool("synthetic"), root, options=BuildOptions(workers=min(8, os.cpu_count() or 1)))
        encoder = load_encoder(args.encoder)
        manifest = load_manifest(root)
        urls = [str(root / s.path) for s in manifest.shards] * args.passes
        n_images = sum(s.count for s in manifest.shards) * args.passes
        rates = []
        for _ in range(args.repeat):
            if device.type == "cuda":
                torch.cuda.synchronize()
            started = time.perf_counter()
            for _ in forward_shards(encoder, urls, device=str(device), batch_size=args.batch, workers=args.workers,
                                    precision=args.precision, channels_last=args.channels_last):
                pass
            if device.type == "cuda":
                torch.cuda.synchronize()
            rates.append(n_images / (time.perf_counter() - started))
            print(f"shards: {rates[-1]:.0f} img/s", file=sys.stderr)
        started = time.perf_counter()  # the input pipeline alone: how fast the host can feed the device
        for _ in tile_loader(urls, encoder.input.size, args.batch, args.workers, pin_memory=device.type == "cuda"):
            pass
        loader_rate = n_images / (time.perf_counter() - started)
        print(f"loader alone: {loader_rate:.0f} img/s", file=sys.stderr)
        module = encoder.module.to(device).eval()
        if args.channels_last:
            module = module.to(memory_format=torch.channels_last)
        peak = ceiling(module, encoder.input.size, args.batch, max(n_images, 20 * args.batch), device,
                       args.precision == "bf16", args.channels_last)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    print(json.dumps({"device": name, "encoder": args.encoder, "input_px": encoder.input.size, "images": n_images,
                      "batch": args.batch, "workers": args.workers, "precision": args.precision,
                      "channels_last": args.channels_last, "shards_img_s": round(max(rates), 1),
                      "ceiling_img_s": round(peak, 1), "loader_img_s": round(loader_rate, 1),
                      "ratio": round(max(rates) / peak, 3),
                      "goal_gpu": 0.9}, indent=1))


if __name__ == "__main__":
    main()
