"""Correctness on the device, checked in seconds before the throughput runs (``gpu_eval.sh parity``).

1. The device normaliser equals torchvision's ``ToTensor`` + ``Normalize`` on the CPU, bit for bit, for every
   byte value in every channel.
2. Pipelined feature extraction on the device returns every sample once, in the CPU run's order, with the CPU
   run's features (fp32, within float tolerance).
3. One multi-task training step on the device gives the CPU's loss and gradients (fp32, within tolerance).

    python benchmarks/cuda_parity.py [--device cuda] [--data DIR]

Prints one JSON object; exits 1 when a check fails.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from dpbench_baselines.loss import make_optimizer, task_counts
from dpbench_baselines.model import MultiTaskNet, TinyNet
from dpbench_baselines.train import train_step
from PIL import Image

from dpbench.build import BuildOptions, build_pool
from dpbench.encoders import InputSpec, load_encoder
from dpbench.evaluation.features import forward_shards, resolve_device
from dpbench.pool.manifest import load_manifest
from dpbench.tasks import get_pool


def normaliser_parity(device: torch.device) -> bool:
    """Every byte value of every channel, as the device normaliser and the CPU float transform see it."""
    spec = InputSpec(size=16)
    values = np.arange(256, dtype=np.uint8).reshape(16, 16)
    image = Image.fromarray(np.stack([values, values[::-1], values.T], axis=2))
    expected = spec.transform()(image)
    tiles = spec.transform(as_uint8=True)(image)[None].to(device)
    return bool(torch.equal(spec.normaliser(device)(tiles).cpu()[0], expected))


def extraction_parity(root: Path, device: torch.device) -> dict[str, object]:
    """Features of a few shards on the device against the same on the CPU."""
    encoder = load_encoder("random")
    urls = [str(root / s.path) for s in load_manifest(root).shards][:6]
    runs = {}
    for dev in ("cpu", str(device)):
        rows, keys = [], []
        for x, _labels, metas in forward_shards(encoder, urls, device=dev, batch_size=32, workers=2):
            rows.append(x)
            keys += [m["key"] for m in metas]
        runs[dev] = (np.concatenate(rows), keys)
    (cpu_x, cpu_keys), (dev_x, dev_keys) = runs["cpu"], runs[str(device)]
    return {"same_order": cpu_keys == dev_keys, "samples": len(cpu_keys),
            "max_abs_diff": float(np.abs(cpu_x - dev_x).max()),
            "close": bool(np.allclose(cpu_x, dev_x, rtol=1e-3, atol=1e-4))}


def training_parity(device: torch.device) -> dict[str, object]:
    """One training step of a small MultiTaskNet on both devices from the same weights and batch (fp32)."""
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(16, 3, 32, 32, generator=generator)
    index = torch.randint(3, (16,), generator=generator)
    labels = torch.randint(2, (16,), generator=generator)
    torch.manual_seed(0)
    reference = MultiTaskNet(TinyNet(), 64, {"a": 2, "b": 2, "c": 2}).train()
    out = {}
    for dev in (torch.device("cpu"), device):
        model = MultiTaskNet(TinyNet(), 64, {"a": 2, "b": 2, "c": 2})
        model.load_state_dict(reference.state_dict())
        model.to(dev).train()
        optimizer = make_optimizer(model, 0.01, 5.0)
        # train_step's device argument only picks autocast: "cpu" keeps both runs in fp32
        loss = train_step(model, model, optimizer, images.to(dev), index.to(dev), labels.to(dev),
                          task_counts(index, 3), torch.device("cpu"))
        out[dev.type] = (float(loss.detach()), {k: v.detach().cpu() for k, v in model.state_dict().items()})
    (cpu_loss, cpu_state), (dev_loss, dev_state) = out["cpu"], out[device.type]
    worst = max(float((cpu_state[k].float() - dev_state[k].float()).abs().max()) for k in cpu_state)
    return {"cpu_loss": cpu_loss, "device_loss": dev_loss, "max_weight_diff": worst,
            "close": abs(cpu_loss - dev_loss) < 1e-4 and worst < 1e-4}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--data", type=Path, help="a built pool (default: build the synthetic pool)")
    args = parser.parse_args()
    device = resolve_device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = False  # fp32 against fp32: TF32 alone would differ by ~1e-3
    torch.backends.cudnn.allow_tf32 = False
    with tempfile.TemporaryDirectory() as tmp:
        root = args.data or Path(tmp) / "pool"
        if args.data is None:
            build_pool(get_pool("synthetic"), root, options=BuildOptions(workers=2))
        normaliser, extraction = normaliser_parity(device), extraction_parity(root, device)
        training = training_parity(device)
    print(json.dumps({"device": str(device), "normaliser_bit_identical": normaliser, "extraction": extraction,
                      "training_step": training}, indent=1))
    ok = normaliser and extraction["same_order"] and extraction["close"] and training["close"]
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
