"""Feature-extraction throughput from shards against the same encoder on synthetic tensors, same run.

Goal on a GPU: the shard path (read, decode, resize, normalise, forward) reaches ≥ 90 % of the
encoder's ceiling on ready-made device tensors. On a CPU both numbers are reported for reference. Also
reported: the input pipeline alone (``loader_img_s``: workers reading and decoding, no model), which says
whether the host or the device limits the shard path.

    python benchmarks/extract_throughput.py [--encoder torchvision:resnet50] [--device auto]
        [--batch 256] [--workers 8] [--precision bf16] [--channels-last [on|off|auto]] [--data DIR] [--repeat 3]
        [--random-weights] [--dry]

``--encoder`` takes any spec, including the zoo presets; the large ViTs to measure are ViT-L/14 (kaiko-vitl14,
hibou-l) and ViT-H/14 (virchow, virchow2, uni2-h). ``--random-weights`` builds a preset's architecture without its
weights (``preset:NAME:random``: same speed, no download, no gate). Channels-last applies to convolutional encoders
only; ``auto`` (the default) turns it on for them and off for the ViTs. ``--dry`` is a small CPU rehearsal: one task,
small shards, one timed run.
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
from dpbench.encoders.presets import find_preset
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


#: The zoo's large ViTs, by architecture (bf16 is the default precision; channels-last does not apply to them).
LARGE_VITS = {"ViT-L/14": ("kaiko-vitl14", "hibou-l"), "ViT-H/14": ("virchow", "virchow2", "uni2-h")}
DRY_TASK = "synthetic-Necrosis"


def zoo_spec(spec: str, random_weights: bool) -> str:
    """A preset name as ``preset:NAME`` (``:random`` for the architecture only); any other spec unchanged."""
    name = spec.removeprefix("preset:").removesuffix(":random")
    if (spec.startswith("preset:") or ":" not in spec) and find_preset(name) is not None:
        return f"preset:{name}" + (":random" if random_weights or spec.endswith(":random") else "")
    return spec


def convolutional(spec: str) -> bool:
    """Whether channels-last applies: torchvision models, the random conv net and the torchvision presets."""
    if spec.startswith("preset:"):
        preset = find_preset(spec.split(":")[1])
        return preset is not None and preset.loader.library == "torchvision"
    return spec.startswith(("torchvision:", "random"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    choices = "; ".join(f"{arch}: {', '.join(names)}" for arch, names in LARGE_VITS.items())
    parser.add_argument("--encoder", default="torchvision:resnet50",
                        help=f"any encoder spec or zoo preset, e.g. the large ViTs ({choices})")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1))
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="bf16")
    parser.add_argument("--channels-last", nargs="?", const="on", default="auto", choices=("auto", "on", "off"))
    parser.add_argument("--random-weights", action="store_true", help="a preset's architecture without its weights")
    parser.add_argument("--dry", action="store_true", help="CPU rehearsal: one small task, small shards, one run")
    parser.add_argument("--data", type=Path, help="a built pool (default: build the synthetic pool)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs; the best is reported")
    parser.add_argument("--passes", type=int, default=1, help="passes over the pool's shards within one run")
    args = parser.parse_args()
    device = resolve_device(args.device)
    spec = zoo_spec(args.encoder, args.random_weights)
    args.channels_last = args.channels_last == "on" or (args.channels_last == "auto" and convolutional(spec))
    if args.dry:
        args.repeat, args.passes, args.batch = 1, 1, min(args.batch, 4)
    with tempfile.TemporaryDirectory() as tmp:
        root = args.data or Path(tmp) / "pool"
        if args.data is None:
            print("building the synthetic pool …", file=sys.stderr)
            options = BuildOptions(workers=min(8, os.cpu_count() or 1), shard_size=8 if args.dry else 1000)
            build_pool(get_pool("synthetic"), root, [DRY_TASK] if args.dry else None, options=options)
        encoder = load_encoder(spec)
        manifest = load_manifest(root)
        shards = manifest.shards[:1] if args.dry else manifest.shards
        urls = [str(root / s.path) for s in shards] * args.passes
        n_images = sum(s.count for s in shards) * args.passes
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
        for _ in tile_loader(urls, encoder.input.size, args.batch, args.workers, pin_memory=device.type == "cuda",
                             mode=encoder.input.interpolation):
            pass
        loader_rate = n_images / (time.perf_counter() - started)
        print(f"loader alone: {loader_rate:.0f} img/s", file=sys.stderr)
        module = encoder.module.to(device).eval()
        if args.channels_last:
            module = module.to(memory_format=torch.channels_last)
        timed = n_images if args.dry else max(n_images, 20 * args.batch)
        peak = ceiling(module, encoder.input.size, args.batch, timed, device, args.precision == "bf16",
                       args.channels_last)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    print(json.dumps({"device": name, "encoder": spec, "input_px": encoder.input.size, "images": n_images,
                      "batch": args.batch, "workers": args.workers, "precision": args.precision,
                      "channels_last": args.channels_last, "shards_img_s": round(max(rates), 1),
                      "ceiling_img_s": round(peak, 1), "loader_img_s": round(loader_rate, 1),
                      "ratio": round(max(rates) / peak, 3),
                      "goal_gpu": 0.9}, indent=1))


if __name__ == "__main__":
    main()
