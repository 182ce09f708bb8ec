"""Evaluate a model with the paper's metrics on any dataset layout core's readers know.

    python -m training.evaluate --model FILE --data DIR [--split val|train|all] [--strategy weighted|argmax|mean]
                                [--threshold 0.6] [--json OUT] [--plot CED.png]

FILE is an exported ``.onnx`` (run through core.runtime, exactly as the app runs it) or a training
checkpoint. Faces are cropped from their ground-truth landmark box (the standard protocol) with the
crop policy recorded in the model. Prints N, NME (inter-ocular, %), FR@0.1, AUC@0.1 and the Pearson
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
from core.decode import DEFAULT_THRESHOLD, STRATEGIES, aggregate
from core.geometry import crop_from_landmarks, invert_affine, transform_points, warp_to_crop
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


def predict_records(predictor: AnchorPredictor, records: list[FaceRecord], strategy: str, threshold: float,
                    batch_size: int = 32) -> tuple[np.ndarray, np.ndarray, list[float], list[float]]:
    """Landmarks in image pixels for each record, plus anchor (confidence, error) pairs for Pearson."""
    scheme = get_scheme(predictor.scheme)
    preds, truths, confs, errs = [], [], [], []
    for start in tqdm(range(0, len(records), batch_size), desc="evaluating", unit="batch", leave=False):
        batch = [r.load() for r in records[start:start + batch_size]]
        matrices = [crop_from_landmarks(s.landmarks, predictor.input_size, predictor.crop_margin) for s in batch]
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
    return np.stack(preds), np.stack(truths), confs, errs


def evaluate(predictor: AnchorPredictor, records: list[FaceRecord], strategy: str = "weighted",
             threshold: float = DEFAULT_THRESHOLD, batch_size: int = 32) -> Evaluation:
    """Run the model over ``records`` (all of the predictor's scheme) and score every face."""
    preds, truths, confs, errs = predict_records(predictor, records, strategy, threshold, batch_size)
    nmes = nme(preds, truths, get_scheme(predictor.scheme))
    return Evaluation([r.source for r in records], nmes, pearson(confs, errs) if confs else float("nan"))


def summarise(nmes: np.ndarray, corr: float = float("nan")) -> Scores:
    return Scores(len(nmes), float(nmes.mean()), failure_rate(nmes), auc(nmes), corr)


def report(result: Evaluation) -> dict:
    """Overall and per-source scores with the keys the --json contract names."""
    sources = np.array(result.sources)
    per_source = {s: asdict(summarise(result.nmes[sources == s])) for s in sorted(set(result.sources))}
    return {**asdict(summarise(result.nmes, result.pearson)), "per_source": per_source}


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
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--batch-size", type=int, default=32, help="faces per inference call")
    p.add_argument("--json", help="write the numbers (n, nme, fr, auc, pearson, per_source) to this file")
    p.add_argument("--plot", help="CED plot PNG (default: ced_<model name>.png in the current folder)")
    args = p.parse_args(argv)
    try:
        predictor = open_predictor(args.model, args.device)
        records = load_records(args.data, args.split, predictor.scheme)
    except (DatasetError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not records:
        print(f"error: {args.data} has no {predictor.scheme} faces", file=sys.stderr)
        return 2
    result = evaluate(predictor, records, args.strategy, args.threshold, args.batch_size)
    numbers = report(result)
    print(f"{args.model} on {args.data} ({args.split}, {args.strategy}, C_th {args.threshold})")
    print(format_table(numbers))
    plot = Path(args.plot or f"ced_{Path(args.model).stem}.png")
    plot_ced({Path(args.model).stem: result.nmes}, plot, f"{Path(args.data).name} ({args.split})")
    print(f"CED plot: {plot}")
    if args.json:
        Path(args.json).write_text(json.dumps(numbers, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
