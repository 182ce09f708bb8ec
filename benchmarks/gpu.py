"""GPU numbers from one CUDA machine: the model through ONNX Runtime's CUDA provider, the same network in
torch on CUDA, at batch 1 and 256 (the paper: 320 and 4050 FPS on an RTX 2080 Ti), and one training
epoch on CUDA. Run by ``benchmarks/gpu_check.sh``, which installs what is missing first.

    python -m benchmarks.gpu [--model FILE] [--checkpoint best.pt] [--train-data DIR] [--results FILE]

Rows:

* ORT CUDA, device-resident: a float batch already on the GPU (IOBinding), outputs left there — the
  network alone, as the paper counts it;
* ORT CUDA, ``LandmarkModel.run``: uint8 BGR crops in host memory, preprocessing, copies both ways —
  what the app pays per call;
* torch CUDA eager, fp32 and fp16 autocast, input on the GPU (``cudnn.benchmark`` on).

Each row: warm-up calls, then the median of timed calls, each one synchronised with the device.
The training epoch runs ``python -m training.train --epochs 1 --device cuda`` on ``--train-data`` (its
checkpoint then serves the torch rows when ``--checkpoint`` is absent: weights do not change speed).
"""
from __future__ import annotations

import argparse
import csv
import json
import logging
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

from benchmarks.reporting import (Section, append_section, benchmark_parser, command_line,
                                  markdown_table)
from core.runtime import ModelError, load_model
from core.runtime.contract import INPUT_NAME, OUTPUT_CONFIDENCE, OUTPUT_LANDMARKS

log = logging.getLogger("benchmarks.gpu")

BATCHES = (1, 256)


def median_seconds(call: Callable[[], object], sync: Callable[[], None], warmup: int, calls: int) -> float:
    for _ in range(warmup):
        call()
    sync()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        call()
        sync()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def calls_for(batch: int, calls: int) -> int:
    """Fewer calls for big batches: each one already averages over many faces."""
    return max(5, calls // max(1, batch // 16))


def ort_rows(model_path: str, calls: int) -> tuple[list[list[str]], list[str]]:
    """ONNX Runtime CUDA rows, or a note saying why there are none."""
    try:
        model = load_model(model_path, device="cuda")
    except ModelError as exc:
        return [], [f"ONNX Runtime CUDA rows missing: {exc}"]
    import onnxruntime as ort

    size = model.input_size
    rows = []
    for batch in BATCHES:
        host = np.random.default_rng(0).integers(0, 256, (batch, size, size, 3), dtype=np.uint8)
        resident = ort.OrtValue.ortvalue_from_numpy(model.preprocess(host), "cuda", 0)
        binding = model.session.io_binding()
        binding.bind_ortvalue_input(INPUT_NAME, resident)
        for name in (OUTPUT_LANDMARKS, OUTPUT_CONFIDENCE):
            binding.bind_output(name, "cuda")

        def bound() -> None:
            model.session.run_with_iobinding(binding)

        for label, call in ((f"ONNX Runtime {ort.__version__} {model.provider}, device-resident", bound),
                            (f"ONNX Runtime {ort.__version__} {model.provider}, LandmarkModel.run (host uint8)",
                             lambda: model.run(host))):
            seconds = median_seconds(call, binding.synchronize_outputs, 10, calls_for(batch, calls))
            rows.append([label, str(batch), f"{1000 * seconds:.3f}", f"{batch / seconds:.0f}"])
    return rows, [f"ONNX Runtime model: {model_path} ({model.info.name})"]


def torch_rows(checkpoint: Path, calls: int) -> tuple[list[list[str]], list[str]]:
    """torch CUDA rows (fp32 and fp16 autocast), or a note saying why there are none."""
    import torch

    from training.predictors import TorchPredictor

    if not torch.cuda.is_available():
        return [], [f"torch CUDA rows missing: torch {torch.__version__} sees no CUDA device"]
    torch.backends.cudnn.benchmark = True
    predictor = TorchPredictor.from_checkpoint(checkpoint, "cuda")
    net = predictor.model.eval()
    rows = []
    for batch in BATCHES:
        x = torch.rand(batch, 3, predictor.input_size, predictor.input_size, device="cuda")
        for label, dtype in (("fp32", None), ("fp16 autocast", torch.float16)):
            def call() -> None:
                with torch.inference_mode(), torch.autocast("cuda", dtype=dtype, enabled=dtype is not None):
                    net(x)

            seconds = median_seconds(call, torch.cuda.synchronize, 10, calls_for(batch, calls))
            rows.append([f"torch {torch.__version__} CUDA eager, {label}", str(batch), f"{1000 * seconds:.3f}",
                         f"{batch / seconds:.0f}"])
    return rows, [f"torch rows: {checkpoint} on {torch.cuda.get_device_name(0)}"]


def training_epoch(data: str, out: Path, workers: int, batch_size: int) -> tuple[list[str] | None, list[str]]:
    """One epoch of ``training.train`` on CUDA: (table row, notes)."""
    command = [sys.executable, "-m", "training.train", "--data", data, "--out", str(out), "--epochs", "1",
               "--device", "cuda", "--workers", str(workers), "--batch-size", str(batch_size)]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        return None, [f"training epoch failed (exit {done.returncode}): {' / '.join(tail)}"]
    with (out / "log.csv").open(newline="") as f:
        row = list(csv.DictReader(f))[-1]
    faces = "?"
    run_json = out / "run.json"
    if run_json.exists():
        faces = str(json.loads(run_json.read_text())["train_faces"])
    return ([faces, str(batch_size), str(workers), f"{float(row['seconds']):.1f}", f"{wall:.1f}",
             f"{100 * float(row['val_nme']):.2f}"],
            [f"training command: {' '.join(command[1:])}"])


def build_parser() -> argparse.ArgumentParser:
    p = benchmark_parser("benchmarks.gpu", __doc__)
    p.add_argument("--checkpoint", help="checkpoint for the torch rows (default: the training epoch's)")
    p.add_argument("--train-data", help="dataset for the timed training epoch (omit to skip it)")
    p.add_argument("--workers", type=int, default=8, help="data-loading workers of the training epoch")
    p.add_argument("--batch-size", type=int, default=32, help="batch size of the training epoch")
    p.add_argument("--calls", type=int, default=200, help="timed calls at batch 1 (fewer at larger batches)")
    return p


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    tables, notes = [], []
    with tempfile.TemporaryDirectory() as scratch:
        checkpoint = Path(args.checkpoint) if args.checkpoint else None
        if args.train_data:
            row, more = training_epoch(args.train_data, Path(scratch) / "epoch", args.workers, args.batch_size)
            notes += more
            if row is not None:
                tables.append(markdown_table(["training faces", "batch", "workers", "epoch s (log.csv, incl. val)",
                                              "wall s (incl. start-up, templates)", "val NME % after 1 epoch"],
                                             [row]))
                checkpoint = checkpoint or Path(scratch) / "epoch" / "last.pt"
        rows, more = ort_rows(args.model, args.calls)
        notes += more
        if checkpoint is not None and checkpoint.exists():
            extra, more = torch_rows(checkpoint, args.calls)
            rows += extra
            notes += more
        else:
            notes.append("torch CUDA rows missing: no checkpoint (give --checkpoint or --train-data)")
    if rows:
        tables.insert(0, markdown_table(["engine", "batch", "median ms / call", "faces/s"], rows))
    for table in tables:
        print(table, end="\n\n")
    for note in notes:
        print(f"note: {note}")
    section = Section("GPU", command_line("benchmarks.gpu", argv if argv is not None else sys.argv[1:]), tables, notes)
    print(f"appended to {append_section(section, args.results)}")
    return 0 if rows else 1


if __name__ == "__main__":
    sys.exit(main())
