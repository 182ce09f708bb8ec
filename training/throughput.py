"""Training images/s with and without the decoded-image cache, measured side by side.

    python -m training.throughput --data ../shared/data [--input-size 160] [--steps 20] [--rounds 3]

Three ways to feed the same training step (forward, backward and Adam on the shipped model moved to
``--input-size``, batch 16, the training augmentation):

- ``disk``: every access decodes the photo again and augments on the training thread (what a plain
  image-folder loader does; the "before");
- ``memory``: photos decoded once into loose crops, augmentation still on the training thread;
- ``memory+worker``: decoded once, augmentation in one loader process (``training.train``'s default).

Rounds alternate the arms so a busy machine slows all of them alike; the median round is reported.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from core.geometry import INPUT_SIZES
from core.offline.datasets import DatasetError, read_dataset, select_split
from core.runtime import DEFAULT_MODEL_PATH
from models.losses import LossConfig
from training.data import FaceDataset, cv2_threads_off
from training.onnx_init import model_from_onnx
from training.train import train_step

ARMS = {"disk": (False, 0), "memory": (True, 0), "memory+worker": (True, 1)}


def images_per_second(loader: DataLoader, step: Callable[[torch.Tensor, torch.Tensor], None], steps: int) -> float:
    """Time ``steps`` batches drawn from ``loader`` through ``step`` (loader start-up included)."""
    started, seen = time.perf_counter(), 0
    for index, (images, targets) in enumerate(loader):
        if index == steps:
            break
        step(images, targets)
        seen += len(images)
    return seen / (time.perf_counter() - started)


def measure(data: str, input_size: int, steps: int, rounds: int, batch_size: int, faces: int,
            model_path: Path = DEFAULT_MODEL_PATH) -> dict[str, list[float]]:
    """images/s per arm and round on the first ``faces`` training faces of ``data``."""
    records = select_split(read_dataset(data), "train")[:faces]
    if not records:
        raise DatasetError(f"{data}: no training faces in the repository split")
    datasets = {name: FaceDataset(records, True, input_size=input_size, in_memory=in_memory)
                for name, (in_memory, _) in ARMS.items()}
    model, config = model_from_onnx(model_path, input_size)
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-5)
    loss_config = LossConfig.for_input_size(input_size)

    def step(images: torch.Tensor, targets: torch.Tensor) -> None:
        train_step(model, model, config, optimizer, images, targets, loss_config)

    results: dict[str, list[float]] = {name: [] for name in ARMS}
    for _ in tqdm(range(rounds), desc="rounds", unit="round"):
        for name, (_, workers) in ARMS.items():
            loader = DataLoader(datasets[name], batch_size=batch_size, shuffle=True, drop_last=True,
                                num_workers=workers)
            results[name].append(images_per_second(loader, step, steps))
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="dataset folder the repository split covers")
    p.add_argument("--input-size", type=int, default=160, choices=INPUT_SIZES, help="model input side (px)")
    p.add_argument("--steps", type=int, default=20, help="training steps per arm and round")
    p.add_argument("--rounds", type=int, default=3, help="rounds; each runs every arm once")
    p.add_argument("--batch-size", type=int, default=16, help="faces per step")
    p.add_argument("--faces", type=int, default=512, help="training faces to draw from")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    cv2_threads_off()
    try:
        results = measure(args.data, args.input_size, args.steps, args.rounds, args.batch_size, args.faces)
    except DatasetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    base = statistics.median(results["disk"])
    print(f"{args.input_size} px, batch {args.batch_size}, {args.threads} threads, median of {args.rounds} rounds:")
    for name, values in results.items():
        median = statistics.median(values)
        print(f"  {name:14s} {median:6.1f} images/s  {median / base:.2f}x disk")
    return 0


if __name__ == "__main__":
    sys.exit(main())
