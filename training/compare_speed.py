"""Batch-1 model speed of several exported files, measured in one process, alternating round by round.

    python -m training.compare_speed assets/anchorface_ibug68.onnx runs/eval/new.onnx [--rounds 15] [--calls 10]

On a shared machine only ratios measured side by side mean anything: every round times ``--calls``
calls of each file in turn (after a warm-up), and the median round is reported as crops/s.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from core.runtime import ModelError, load_model


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="+", help="exported .onnx files")
    p.add_argument("--rounds", type=int, default=15, help="rounds; each times every model once")
    p.add_argument("--calls", type=int, default=10, help="batch-1 calls per model per round")
    p.add_argument("--threads", type=int, default=2, help="ONNX Runtime intra-op threads")
    args = p.parse_args(argv)
    try:
        models = {path: load_model(path, device="cpu", threads=args.threads) for path in args.models}
    except (ModelError, OSError, TypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    rng = np.random.default_rng(0)
    inputs = {path: rng.integers(0, 256, (1, m.info.input_size, m.info.input_size, 3), dtype=np.uint8)
              for path, m in models.items()}
    for path, m in models.items():
        for _ in range(5):
            m.run(inputs[path])
    seconds: dict[str, list[float]] = {path: [] for path in models}
    for _ in range(args.rounds):
        for path, m in models.items():
            start = time.perf_counter()
            for _ in range(args.calls):
                m.run(inputs[path])
            seconds[path].append((time.perf_counter() - start) / args.calls)
    first = float(np.median(seconds[args.models[0]]))
    for path in models:
        median = float(np.median(seconds[path]))
        print(f"{path}: {1 / median:.0f} crops/s at batch 1 ({1000 * median:.2f} ms), "
              f"{first / median:.2f}x the first")
    return 0


if __name__ == "__main__":
    sys.exit(main())
