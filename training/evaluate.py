"""Evaluate a model with the paper's metrics on any dataset layout core's readers know.

    python -m training.evaluate --model FILE --data DIR [--split val|train|all] [--strategy weighted|argmax|mean]
                                [--threshold 0.6] [--crops gt|mediapipe|haar] [--json OUT] [--plot CED.png]

FILE is an exported ``.onnx`` (run through core.runtime, exactly as the app runs it) or a training
checkpoint. Faces are cropped from their ground-truth landmark box (the standard protocol) with the
crop policy recorded in the model; ``--crops mediapipe|haar`` crops from the calibrated box of that
detector instead, as the app does on a first frame (faces it misses are counted and left out). Prints N, NME (inter-ocular, %), FR@0.1, AUC@0.1 and the Pearson
correlation between anchor confidence and anchor error, per source and overall; writes a CED plot.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from core.datasets import DatasetError, FaceRecord, read_dataset, select_split
from core.datasets import FaceSample
from core.decode import DEFAULT_THRESHOLD, STRATEGIES, aggregate
from core.detection import best_match, calibrated_box, make_detector, pad_image
from core.geometry import Box, crop_from_box, crop_from_landmarks, invert_affine, landmark_box, transform_points, warp_to_crop
from core.metrics import anchor_errors, auc, ced_curve, failure_rate, nme, pearson
from core.schemes import get_scheme
from training.predictors import AnchorPredictor, open_predictor

log = logging.getLogger("training.evaluate")


@dataclass
class Scores:
    """The table row of one subset; NME/FR/AUC as fractions."""

    n: int
    nme: float
    fr: float
    auc: float
    pearson: float


@dataclass
class Evaluation:
    """Per-face results of one pass, so several summaries (sources, strategies) reuse one inference."""

    sources: list[str]
    nmes: np.ndarray
    pearson: float
    missed: int = 0  # faces the detector did not find (detector crops only)


class DetectorCrops:
    """Crop from a detector's calibrated box, on the image padded as in calibration (faces in the
    shared data fill their photo; the border gives the detector the context a webcam frame has)."""

    def __init__(self, kind: str) -> None:
        self.detector = make_detector(kind)

    def __call__(self, sample: FaceSample, size: int, margin: float) -> np.ndarray | None:
        image, border = pad_image(sample.image)
        match = best_match(self.detector.detect(image), landmark_box(sample.landmarks + border))
        if match is None:
            return None
        box = calibrated_box(match, self.detector.name)
        shifted = Box(box.x0 - border, box.y0 - border, box.x1 - border, box.y1 - border)
        return crop_from_box(shifted, size, margin)


def ground_truth_crop(sample: FaceSample, size: int, margin: float) -> np.ndarray:
    """The standard protocol: the crop policy applied to the ground-truth landmarks."""
    return crop_from_landmarks(sample.landmarks, size, margin)


def predict_records(predictor: AnchorPredictor, records: list[FaceRecord], strategy: str, threshold: float,
                    batch_size: int = 32, crop=ground_truth_crop) -> tuple[np.ndarray, np.ndarray, list[float], list[float], list[bool]]:
    """Landmarks in image pixels for each record the crop source could place, anchor (confidence,
    error) pairs for Pearson, and per record whether it was kept."""
    scheme = get_scheme(predictor.scheme)
    preds, truths, confs, errs, kept = [], [], [], [], []
    for start in tqdm(range(0, len(records), batch_size), desc="evaluating", unit="batch", leave=False):
        loaded = [r.load() for r in records[start:start + batch_size]]
        placed = [crop(s, predictor.input_size, predictor.crop_margin) for s in loaded]
        kept.extend(m is not None for m in placed)
        batch = [s for s, m in zip(loaded, placed) if m is not None]
        matrices = [m for m in placed if m is not None]
        if not batch:
            continue
        crops = np.stack([warp_to_crop(s.image, m, predictor.input_size) for s, m in zip(batch, matrices)])
        anchor_landmarks, anchor_conf = predictor.predict(crops)
        agg = aggregate(anchor_landmarks, anchor_conf, strategy, threshold)
        for s, m, lm in zip(batch, matrices, agg.landmarks):
            preds.append(transform_points(lm, invert_affine(m)))
            truths.append(s.landmarks)
        if anchor_conf.shape[1] > 1:
            crop_truth = np.stack([transform_points(s.landmarks, m) for s, m in zip(batch, matrices)])
            confs.extend(anchor_conf.ravel().tolist())
            errs.extend(anchor_errors(anchor_landmarks, crop_truth, scheme).ravel().tolist())
    return np.stack(preds), np.stack(truths), confs, errs, kept


def evaluate(predictor: AnchorPredictor, records: list[FaceRecord], strategy: str = "weighted",
             threshold: float = DEFAULT_THRESHOLD, batch_size: int = 32, crop=ground_truth_crop) -> Evaluation:
    """Run the model over ``records`` (all of the predictor's scheme) and score every placed face."""
    preds, truths, confs, errs, kept = predict_records(predictor, records, strategy, threshold, batch_size, crop)
    nmes = nme(preds, truths, get_scheme(predictor.scheme))
    sources = [r.source for r, k in zip(records, kept) if k]
    return Evaluation(sources, nmes, pearson(confs, errs) if confs else float("nan"), kept.count(False))


def summarise(nmes: np.ndarray, corr: float = float("nan")) -> Scores:
    return Scores(len(nmes), float(nmes.mean()), failure_rate(nmes), auc(nmes), corr)


def report(result: Evaluation) -> dict:
    """Overall and per-source scores with the keys the --json contract names."""
    sources = np.array(result.sources)
    per_source = {s: asdict(summarise(result.nmes[sources == s])) for s in sorted(set(result.sources))}
    return {**asdict(summarise(result.nmes, result.pearson)), "per_source": per_source, "missed": result.missed}


def format_table(numbers: dict) -> str:
    rows = [("source", "N", "NME %", "FR@0.1 %", "AUC@0.1", "Pearson")]
    for name, s in list(numbers["per_source"].items()) + [("overall", numbers)]:
        rows.append((name, str(s["n"]), f"{100 * s['nme']:.2f}", f"{100 * s['fr']:.2f}", f"{s['auc']:.4f}",
                     "" if np.isnan(s["pearson"]) else f"{s['pearson']:+.3f}"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def plot_ced(curves: dict[str, np.ndarray], path: str | Path, title: str = "") -> None:
    """CED curves (one per label) up to NME 0.1, saved as PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5))
    for label, nmes in curves.items():
        xs, ys = ced_curve(nmes)
        ax.plot(100 * xs, ys, label=f"{label} (AUC {auc(nmes):.3f})")
    ax.set_xlabel("NME (inter-ocular, %)"), ax.set_ylabel("fraction of faces"), ax.set_xlim(0, 10), ax.set_ylim(0, 1)
    ax.grid(alpha=0.3), ax.legend(loc="lower right"), ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def load_records(data: str, split: str, scheme: str) -> list[FaceRecord]:
    """The records of ``split`` (the repository split applies only where it covers the dataset)."""
    records = [r for r in read_dataset(data) if r.scheme == scheme]
    if split == "all":
        return records
    chosen = select_split(records, split)
    if not chosen:
        log.warning("the repository split does not cover %s: evaluating all %d faces", data, len(records))
        return records
    return chosen


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="exported .onnx file or training checkpoint (.pt)")
    p.add_argument("--data", required=True, help="dataset folder or WFLW annotation file")
    p.add_argument("--split", choices=["val", "train", "all"], default="val",
                   help="part of the repository split to use (ignored for datasets it does not cover)")
    p.add_argument("--strategy", choices=STRATEGIES, default="weighted", help="anchor aggregation")
    p.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD, help="confidence threshold C_th of 'weighted'")
    p.add_argument("--crops", choices=["gt", "mediapipe", "haar"], default="gt",
                   help="crop from the ground-truth landmark box (standard) or from a calibrated detector box")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--batch-size", type=int, default=32, help="faces per inference call")
    p.add_argument("--limit", type=int, default=0, help="evaluate only the first N faces (quick checks)")
    p.add_argument("--json", help="write the numbers (n, nme, fr, auc, pearson, per_source) to this file")
    p.add_argument("--plot", help="CED plot PNG (default: ced_<model name>.png in the current folder)")
    args = p.parse_args(argv)
    try:
        predictor = open_predictor(args.model, args.device)
        records = load_records(args.data, args.split, predictor.scheme)
        records = records[:args.limit] if args.limit else records
    except (DatasetError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not records:
        print(f"error: {args.data} has no {predictor.scheme} faces", file=sys.stderr)
        return 2
    crop = ground_truth_crop if args.crops == "gt" else DetectorCrops(args.crops)
    result = evaluate(predictor, records, args.strategy, args.threshold, args.batch_size, crop)
    numbers = report(result)
    print(f"{args.model} on {args.data} ({args.split}, {args.strategy}, C_th {args.threshold}, {args.crops} crops)")
    if result.missed:
        print(f"the {args.crops} detector missed {result.missed} of {len(records)} faces (left out below)")
    print(format_table(numbers))
    plot = Path(args.plot or f"ced_{Path(args.model).stem}.png")
    plot_ced({Path(args.model).stem: result.nmes}, plot, f"{Path(args.data).name} ({args.split})")
    print(f"CED plot: {plot}")
    if args.json:
        Path(args.json).write_text(json.dumps(numbers, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
