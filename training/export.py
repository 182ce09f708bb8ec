"""Export a training checkpoint to the ONNX model file the app loads, and refuse a file that does not
reproduce torch.

    python -m training.export --checkpoint runs/NAME/best.pt --out assets/anchorface_ibug68.onnx [--int8]
    python -m training.export --onnx assets/anchorface_ibug68.onnx --int8     # INT8 of an existing file

``--int8`` also writes ``<out>_int8.onnx``: static INT8 calibrated on real training crops and refused
(nothing written, exit 2) when its validation NME is > 0.1 points worse than fp32 or its landmarks drift
> 0.5 px from fp32's on average (training/quantize.py). The fp32 file is always written and stays the
default.

The file follows the model-file contract (:mod:`core.runtime.contract`, docs/architecture.md): one
input [N, 3, S, S] RGB in [0, 1] with a dynamic batch, per-anchor landmarks [N, M, L, 2] and
confidences [N, M] as outputs, opset >= the contract's minimum, and metadata describing scheme, crop
policy, anchors, training data and validation NME, and where the file came from (the code version and
this export's arguments).
Before writing, ONNX Runtime's output on real face crops is compared with torch's; the largest
difference is reported and must stay under ``--tolerance`` pixels.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

from core.paths import DEMO_CLIP, SHARED_DATA
from core.geometry import CROP_MARGIN, crop_from_landmarks, warp_to_crop
from core.runtime.contract import (DYNAMIC_AXES, INPUT_NAME, MIN_OPSET, OUTPUT_NAMES, ModelMetadata, code_version,
                                   export_arguments, write_props)
from core.runtime.model_input import to_model_input
from core.runtime.precision import int8_path
from models.anchorface import ExportWrapper, ModelConfig
from models.complexity import count_macs, count_parameters
from training.checkpoint import CheckpointError, load_model_from_checkpoint, read_checkpoint

log = logging.getLogger("training.export")



class ExportError(RuntimeError):
    """The exported graph does not match torch; nothing was written."""


def real_crops(config: ModelConfig, count: int = 16) -> np.ndarray:
    """uint8 BGR policy crops of real faces: validation faces of the shared data, else demo-video frames."""
    size = config.input_size
    if (SHARED_DATA / "manifest.csv").exists():
        from core.offline.datasets import read_dataset, select_split

        records = [r for r in select_split(read_dataset(SHARED_DATA), "val") if r.scheme == config.scheme][:count]
        samples = [r.load() for r in records]
        return np.stack([warp_to_crop(s.image, crop_from_landmarks(s.landmarks, size), size) for s in samples])
    import cv2

    capture = cv2.VideoCapture(str(DEMO_CLIP))
    frames = []
    while len(frames) < count:
        ok, frame = capture.read()
        if not ok:
            break
        side = min(frame.shape[:2])
        frames.append(cv2.resize(frame[:side, :side], (size, size)))
    capture.release()
    if not frames:
        raise ExportError(f"no real crops to check against: neither {SHARED_DATA} nor {DEMO_CLIP} is readable")
    return np.stack(frames)


def metadata(config: ModelConfig, checkpoint: dict, name: str, arguments: dict | None = None) -> ModelMetadata:
    """The contract's metadata (core.runtime.contract, which the runtime checks with the same class);
    ``arguments``: the export's own, recorded with the code version so a file says how it was made."""
    run = json.loads(checkpoint.get("run", "{}") or "{}")
    args = run.get("args", {})
    summary = (f"{args.get('data', '?')}: {run.get('train_faces', '?')} training faces "
               f"({args.get('epochs', '?')} epochs{_stage_label(args.get('init'))}, split assets/split.json), "
               f"validated on {run.get('val_faces', '?')}")
    best = checkpoint.get("best_nme")
    anchors = config.model_type == "anchorface"
    return ModelMetadata(
        model_type=config.model_type, scheme=config.scheme, input_size=config.input_size,
        # The margin the training crops were cut with: recorded in the run when training records it;
        # every run so far cropped through core.geometry's policy, whose margin is CROP_MARGIN.
        crop_margin=float(run.get("crop_margin", CROP_MARGIN)),
        num_templates=config.num_templates if anchors else 1, grid=config.grid if anchors else 1,
        anchor_area=config.anchor_area, width=config.width, name=name, training_data=summary,
        val_nme=float(best) if best is not None else None, created=dt.date.today().isoformat(),
        code_version=code_version(), export_args=export_arguments(arguments or {}))


def _stage_label(init: str | None, max_depth: int = 20) -> str:
    """", stage N from INIT" when the chain of ``--init`` checkpoints can be followed, else ", from INIT".

    Each stage's checkpoint records the ``--init`` it started from, so following the chain counts the
    stages; a checkpoint moved or deleted since leaves the count unknown rather than guessed.
    """
    if not init:
        return ""
    stages, current = 1, init
    while current and stages <= max_depth:
        try:
            run = json.loads(read_checkpoint(current).get("run", "{}") or "{}")
        except CheckpointError:
            return f", initialised from {init}"
        stages += 1
        current = run.get("args", {}).get("init")
    return f", stage {stages} from {init}" if not current else f", initialised from {init}"


def export(checkpoint_path: str | Path, out: str | Path, name: str | None = None, opset: int = MIN_OPSET,
           tolerance: float = 1e-3) -> dict:
    """Export, verify against torch and write ``out``; returns a report (max difference, size, MACs)."""
    if opset < MIN_OPSET:
        raise ExportError(f"opset {opset} is older than the model contract's minimum, {MIN_OPSET}")
    arguments = {"checkpoint": checkpoint_path, "out": out, "name": name, "opset": opset, "tolerance": tolerance}
    model, config, checkpoint = load_model_from_checkpoint(checkpoint_path)
    wrapper = ExportWrapper(model).eval()
    out = Path(out)
    name = name or out.stem
    size = config.input_size
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "model.onnx"
        torch.onnx.export(wrapper, (torch.zeros(1, 3, size, size),), str(raw), input_names=[INPUT_NAME],
                          output_names=list(OUTPUT_NAMES), opset_version=opset, dynamic_axes=DYNAMIC_AXES, dynamo=False)
        graph = onnx.load(str(raw))
        write_props(graph, metadata(config, checkpoint, name, arguments))
        graph.doc_string = f"AnchorFace landmark model {name} (anchorface-live)"
        onnx.checker.check_model(graph)
        staged = Path(tmp) / "staged.onnx"
        onnx.save(graph, str(staged))

        crops = real_crops(config)
        x = to_model_input(crops)
        with torch.no_grad():
            ref_landmarks, ref_conf = (t.numpy() for t in wrapper(torch.from_numpy(x)))
        session = ort.InferenceSession(str(staged), providers=["CPUExecutionProvider"])
        got_landmarks, got_conf = session.run(list(OUTPUT_NAMES), {INPUT_NAME: x})
        diff = float(np.abs(got_landmarks - ref_landmarks).max())
        conf_diff = float(np.abs(got_conf - ref_conf).max())
        if not diff < tolerance or not conf_diff < tolerance:
            raise ExportError(f"ONNX Runtime differs from torch by {diff:.2e} px / {conf_diff:.2e} confidence on "
                              f"{len(crops)} real crops (tolerance {tolerance}); nothing written")
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(staged, out)
    return {"out": str(out), "max_abs_diff_px": diff, "max_conf_diff": conf_diff, "checked_crops": len(crops),
            "parameters": count_parameters(model), "macs": count_macs(model, size), "bytes": out.stat().st_size}


def export_int8(fp32: str | Path, out: str | Path, scheme: str, calibration_faces: int = 64,
                validation_faces: int = 0, max_nme_loss: float = 0.001, max_drift_px: float = 0.5,
                method: str = "minmax"):
    """Quantise ``fp32`` with training-split crops, judged on the validation split (``0``: all of it)."""
    from core.offline.datasets import read_dataset, select_split
    from training.quantize import quantize_int8

    if not (SHARED_DATA / "manifest.csv").exists():
        raise ExportError(f"INT8 needs real faces to calibrate and check on: {SHARED_DATA} is not readable")
    records = [r for r in read_dataset(SHARED_DATA) if r.scheme == scheme]
    train = select_split(records, "train")
    step = max(1, len(train) // calibration_faces)
    calibration = train[::step][:calibration_faces]  # spread over every source, not the first folder
    validation = select_split(records, "val")
    validation = validation[:validation_faces] if validation_faces else validation
    return quantize_int8(fp32, out, calibration, validation, max_nme_loss, max_drift_px, method)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", help="training checkpoint (best.pt or last.pt) to export")
    source.add_argument("--onnx", help="an already exported fp32 file to quantise (with --int8)")
    p.add_argument("--out", help="ONNX file to write (with --checkpoint)")
    p.add_argument("--int8", action="store_true", help="also write <out>_int8.onnx, refused if it costs accuracy")
    p.add_argument("--int8-max-nme-loss", type=float, default=0.001, help="largest NME increase (0.001 = 0.1 points)")
    p.add_argument("--int8-max-drift", type=float, default=0.5, help="largest mean landmark drift from fp32 (crop px)")
    p.add_argument("--int8-faces", type=int, default=0, help="validation faces the INT8 check uses (0: all)")
    p.add_argument("--int8-calibration", choices=["minmax", "percentile", "entropy"], default="minmax",
                   help="how activation ranges are taken from the calibration crops")
    p.add_argument("--int8-calibration-faces", type=int, default=64, help="training faces to calibrate on")
    p.add_argument("--name", help="model name stored in the metadata (default: the file's stem)")
    p.add_argument("--opset", type=int, default=MIN_OPSET, help=f"ONNX opset (the contract needs >= {MIN_OPSET})")
    p.add_argument("--tolerance", type=float, default=1e-3, help="largest allowed |ONNX − torch| in pixels")
    args = p.parse_args(argv)
    if args.checkpoint and not args.out:
        p.error("--checkpoint needs --out")
    if args.onnx and not args.int8:
        p.error("--onnx only makes sense with --int8")
    from core.runtime import ModelError
    from training.quantize import QuantizationRefused

    try:
        if args.checkpoint:
            result = export(args.checkpoint, args.out, args.name, args.opset, args.tolerance)
            print(f"wrote {result['out']} ({result['bytes'] / 1e6:.1f} MB): {result['parameters'] / 1e6:.2f} M "
                  f"parameters, {result['macs'] / 1e6:.0f} M MACs; max |ONNX − torch| = "
                  f"{result['max_abs_diff_px']:.2e} px on {result['checked_crops']} real crops")
        if args.int8:
            fp32 = Path(args.out or args.onnx)
            scheme = onnx_scheme(fp32)
            q = export_int8(fp32, int8_path(fp32), scheme, args.int8_calibration_faces, args.int8_faces,
                            args.int8_max_nme_loss, args.int8_max_drift, args.int8_calibration)
            print(f"wrote {q.out} ({q.bytes / 1e6:.1f} MB, INT8 QDQ, calibrated on {q.calibration_crops} training "
                  f"crops): NME {100 * q.int8_nme:.2f} % vs fp32 {100 * q.fp32_nme:.2f} % on {q.faces} validation "
                  f"faces, mean drift {q.mean_drift_px:.2f} px")
    except (CheckpointError, ExportError, ModelError, QuantizationRefused) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def onnx_scheme(path: Path) -> str:
    """The landmark scheme an exported file declares."""
    from core.runtime import load_model

    return load_model(path, device="cpu", precision="fp32").info.scheme


if __name__ == "__main__":
    sys.exit(main())
