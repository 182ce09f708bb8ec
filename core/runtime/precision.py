"""Which file of a model runs: the exported fp32 file, or its INT8 sibling on the CPU.

``python -m training.export --int8`` writes ``NAME_int8.onnx`` beside ``NAME.onnx`` only when the
quantised file keeps the fp32 accuracy (``training/quantize.py``: at most 0.1 NME points worse, mean
drift under 0.5 px). On this project's CPUs INT8 runs the default model about 1.3× faster (v5: 1.71–1.78
vs 2.24 ms a crop at batch 1, one thread) at 5.06 vs 5.05 % NME, so ``auto`` takes the sibling whenever
the model runs on the CPU; on a GPU the fp32 file runs (ONNX Runtime's CUDA provider gains nothing from
QDQ INT8). The user keeps choosing the fp32 file (the default, or a custom export); the sibling is found
by name.

A sibling is used only if it was quantised from *this* fp32 file: the quantiser records the fp32 file's
SHA-256 (metadata ``quantized_from``), so a stale sibling left beside a re-exported model is refused
with a warning instead of silently running the old weights.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

#: ``auto``: INT8 sibling on the CPU when there is a valid one, else fp32; ``fp32``: always the file
#: given; ``int8``: the sibling, or an error saying why not.
PRECISIONS = ("auto", "fp32", "int8")
PRECISION_LABELS = {"auto": "Automatic (INT8 on the CPU when the model has it)", "fp32": "Float32 (the file as chosen)",
                    "int8": "INT8 (the model's _int8 sibling)"}
#: The command lines' help for ``--precision`` (main.py, main.py batch).
PRECISION_HELP = ("auto (default): the model's INT8 sibling (NAME_int8.onnx, made by training.export --int8) when "
                  "it runs on the CPU, else the file itself; fp32: the file itself; int8: the sibling or an error")
INT8_SUFFIX = "_int8"


def int8_path(fp32: str | Path) -> Path:
    """Where the INT8 sibling of an fp32 file goes: ``name.onnx`` → ``name_int8.onnx``."""
    fp32 = Path(fp32)
    return fp32.with_name(f"{fp32.stem}{INT8_SUFFIX}{fp32.suffix}")


def file_sha256(path: str | Path) -> str:
    """SHA-256 of the file's bytes, hex, read in 1 MiB blocks: what an INT8 sibling records of the file it
    came from (and how a batch worker knows it loads the driver's model file)."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_precision(precision: str) -> str:
    """``precision`` if known, else ``ValueError`` naming the choices."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}")
    return precision
