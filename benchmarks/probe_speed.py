"""Linear-probe speed: scikit-learn's LinearSVC grid against the batched ``fast`` probe, same features, same run.

Goal: the fast probe is at least 20× faster on a GPU than the liblinear grid (11 C × 5 grouped folds + refit)
and selects the same C (or scores within 0.002 on test). Reference measurement on an H100 (11 C × 5 folds,
n 14,400, d 1,024): liblinear grid 11.7 s against one batched full-batch L-BFGS solve 0.51 s. Measured with
this script's default features on an H200: grid 52.9 s, fast probe 0.68 s (78×), same C and test AUC; on 2 CPU
cores the fast probe took 12.9 s against 52.6 s (4×).

    python benchmarks/probe_speed.py [--n 10000] [--dim 2048] [--classes 2] [--device auto]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time

import numpy as np
import torch

from dpbench.evaluation.probe import linear_probe


def features(n: int, dim: int, classes: int, seed: int = 0) -> tuple[np.ndarray, ...]:
    """Encoder-like features (non-negative, low rank + noise, off-centre) with patient groups of 10–60 samples.

    The class signal lives in a 32-d latent space shared with a per-patient shift, so C matters; groups whose
    index is a multiple of 5 form the test split (about a fifth of the samples on top of the n training ones).
    """
    rng = np.random.default_rng(seed)
    total = n + n // 4
    sizes = rng.integers(10, 61, total // 10)
    group = np.repeat(np.arange(len(sizes)), sizes)[:total]
    y = rng.integers(classes, size=len(sizes))[group]
    latent = rng.normal(0, 0.5, (classes, 32))[y] + rng.normal(0, 0.5, (len(sizes), 32))[group]
    latent += rng.normal(0, 1, (total, 32))
    proj = rng.normal(0, 1 / np.sqrt(32), (32, dim))
    x = np.maximum(latent @ proj + 0.5 + 0.3 * rng.normal(0, 1, (total, dim)), 0).astype(np.float32)
    test = group % 5 == 0
    return x[~test], y[~test], group[~test].astype(str), x[test], y[test]


def log(message: str) -> None:
    print(f"[probe_speed] {message}", file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10000, help="training samples")
    parser.add_argument("--dim", type=int, default=2048, help="feature width")
    parser.add_argument("--classes", type=int, default=2)
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    args = parser.parse_args()
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    metric = "roc_auc" if args.classes == 2 else "accuracy"

    log(f"features n={args.n} dim={args.dim} classes={args.classes}")
    train_x, train_y, groups, test_x, test_y = features(args.n, args.dim, args.classes)
    log(f"warm-up of the fast probe on {device} (CUDA context, kernels; not timed)")
    start = time.perf_counter()
    small = slice(0, min(len(train_y), 1000))
    linear_probe(train_x[small], train_y[small], groups[small], test_x, test_y, args.classes, metric,
                 method="fast", device=device)
    warmup = time.perf_counter() - start

    log(f"fast probe on {device}")
    fast = linear_probe(train_x, train_y, groups, test_x, test_y, args.classes, metric, method="fast", device=device)
    log(f"fast: {fast.seconds:.2f} s, C={fast.best_c:g}, test {metric} {fast.test_score:.4f}")
    log("scikit-learn LinearSVC grid (11 C × 5 folds + refit)")
    svm = linear_probe(train_x, train_y, groups, test_x, test_y, args.classes, metric, method="svm")
    log(f"svm: {svm.seconds:.2f} s, C={svm.best_c:g}, test {metric} {svm.test_score:.4f}")

    name = torch.cuda.get_device_name() if device.startswith("cuda") else platform.processor() or platform.machine()
    print(json.dumps({
        "n_train": len(train_y), "n_test": len(test_y), "dim": args.dim, "classes": args.classes, "metric": metric,
        "device": device, "device_name": name, "torch_threads": torch.get_num_threads(),
        "svm_seconds": round(svm.seconds, 3), "fast_seconds": round(fast.seconds, 3),
        "speedup": round(svm.seconds / fast.seconds, 2), "fast_warmup_seconds": round(warmup, 3),
        "svm_best_c": svm.best_c, "fast_best_c": fast.best_c, "same_c": svm.best_c == fast.best_c,
        "svm_test_score": round(svm.test_score, 5), "fast_test_score": round(fast.test_score, 5),
        "svm_not_converged": svm.not_converged, "fast_not_converged": fast.not_converged,
        "goal": "speedup >= 20 on a GPU with the same C (or test scores within 0.002)",
    }, indent=2))


if __name__ == "__main__":
    main()
