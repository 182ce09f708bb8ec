"""Does the per-landmark uncertainty mean something? Rank correlation with the real error, on the
validation faces.

    python -m benchmarks.uncertainty [--model FILE] [--data DIR] [--limit N] [--plot PNG]

Protocol (``training.evaluate``'s): every validation face is cropped from its ground-truth landmark box,
the model's anchors are aggregated with each strategy (C_th 0.6), and for every point we compare its
uncertainty (``core.decode.anchor_spread``: the passing anchors' spread around the aggregate) with its
actual error (distance to the ground truth). Both are in crop pixels, which the crop policy makes
proportional to the face size, and are reported as % of the inter-ocular distance.

* per face: Spearman's rank correlation over the face's points, median over faces (does it rank the
  points of one face: which ones to trust less?);
* pooled: Spearman over all points of all faces (does a given uncertainty mean a given error?);
* face level: Spearman between a face's mean uncertainty and its NME (is the whole face doubtful?).

The issue's bar is pooled Spearman >= 0.3. The plot shows the error of the points in each pooled
uncertainty decile (mean and median).
"""
from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr
from tqdm import tqdm

from benchmarks.reporting import Section, append_section, benchmark_parser, command_line, markdown_table
from core.paths import SHARED_DATA as DEFAULT_DATA
from core.offline.datasets import DatasetError, FaceRecord
from core.decode import DEFAULT_THRESHOLD, STRATEGIES, aggregate
from core.geometry import transform_points, warp_to_crop
from core.offline.metrics import normaliser
from core.runtime import ModelError
from core.schemes import get_scheme
from benchmarks.accuracy import open_model
from core.offline.evaluation import AnchorPredictor, ground_truth_crop, load_records

log = logging.getLogger("benchmarks.uncertainty")

DEFAULT_PLOT = Path(__file__).resolve().parent / "uncertainty_deciles.png"
TARGET_SPEARMAN = 0.3
DECILES = 10


@dataclass
class Anchors:
    """The model's raw output on the ground-truth crops and the ground truth in crop pixels."""

    landmarks: np.ndarray  # [N, M, L, 2]
    confidence: np.ndarray  # [N, M]
    truth: np.ndarray  # [N, L, 2]


@dataclass
class Correlation:
    """One strategy's numbers: uncertainty and error per point in % IOD, and the three Spearman rhos."""

    uncertainty: np.ndarray  # [N, L]
    error: np.ndarray  # [N, L]
    per_face: float
    pooled: float
    face_level: float


def run_model(predictor: AnchorPredictor, records: list[FaceRecord], batch_size: int = 32) -> Anchors:
    """Anchor predictions for every record, cropped from its ground-truth box."""
    preds, confs, truths = [], [], []
    for start in tqdm(range(0, len(records), batch_size), desc="validation faces", unit="batch", leave=False):
        samples = [r.load() for r in records[start:start + batch_size]]
        matrices = [ground_truth_crop(s, predictor.input_size, predictor.crop_margin) for s in samples]
        crops = np.stack([warp_to_crop(s.image, m, predictor.input_size) for s, m in zip(samples, matrices)])
        anchor_landmarks, anchor_conf = predictor.predict(crops)
        preds.append(anchor_landmarks)
        confs.append(anchor_conf)
        truths.extend(transform_points(s.landmarks, m) for s, m in zip(samples, matrices))
    return Anchors(np.concatenate(preds), np.concatenate(confs), np.stack(truths))


def correlate(anchors: Anchors, scheme: str, strategy: str, threshold: float = DEFAULT_THRESHOLD) -> Correlation:
    """Uncertainty against error for one aggregation strategy (see the module docstring)."""
    result = aggregate(anchors.landmarks, anchors.confidence, strategy, threshold)
    if result.uncertainty is None:
        raise ValueError("the model has a single anchor (direct regression): it reports no uncertainty")
    iod = normaliser(anchors.truth, get_scheme(scheme))[:, None]
    uncertainty = 100 * result.uncertainty / iod
    error = 100 * np.linalg.norm(result.landmarks - anchors.truth, axis=2) / iod
    per_face = [spearmanr(u, e)[0] for u, e in zip(uncertainty, error)]
    return Correlation(uncertainty, error, float(np.nanmedian(per_face)),
                       float(spearmanr(uncertainty.ravel(), error.ravel())[0]),
                       float(spearmanr(uncertainty.mean(axis=1), error.mean(axis=1))[0]))


def deciles(uncertainty: np.ndarray, error: np.ndarray) -> list[tuple[float, float, float]]:
    """Per pooled uncertainty decile: (median uncertainty, mean error, median error)."""
    u, e = uncertainty.ravel(), error.ravel()
    edges = np.quantile(u, np.linspace(0, 1, DECILES + 1))
    which = np.clip(np.searchsorted(edges, u, side="right") - 1, 0, DECILES - 1)
    return [(float(np.median(u[which == d])), float(e[which == d].mean()), float(np.median(e[which == d])))
            for d in range(DECILES)]


def plot_deciles(bins: list[tuple[float, float, float]], path: str | Path, title: str) -> None:
    """Error vs uncertainty decile (mean and median error of the points in each decile), PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = np.arange(1, len(bins) + 1)
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    ax.plot(x, [b[1] for b in bins], "o-", label="mean error")
    ax.plot(x, [b[2] for b in bins], "s--", label="median error")
    ax.plot(x, [b[0] for b in bins], "^:", color="grey", label="median uncertainty (anchor spread)")
    ax.set_xticks(x, [f"{d}\n{b[0]:.1f}" for d, b in zip(x, bins)], fontsize=8)
    ax.set_xlabel("uncertainty decile (1 = most certain points) and its median uncertainty, % IOD")
    ax.set_ylabel("% of the inter-ocular distance")
    ax.grid(alpha=0.3), ax.legend(), ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def build_parser() -> argparse.ArgumentParser:
    p = benchmark_parser("benchmarks.uncertainty", __doc__)
    p.add_argument("--data", default=str(DEFAULT_DATA), help="shared data folder (its validation split is used)")
    p.add_argument("--limit", type=int, help="only the first N validation faces (smoke runs)")
    p.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD, help="confidence threshold C_th")
    p.add_argument("--plot", default=str(DEFAULT_PLOT), help="error-vs-uncertainty-decile PNG (weighted strategy)")
    return p


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        predictor = open_model(args.model)
        records = load_records(args.data, "val", predictor.scheme)[:args.limit]
    except (DatasetError, ModelError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not records:
        print(f"error: no {predictor.scheme} validation faces in {args.data}", file=sys.stderr)
        return 2
    anchors = run_model(predictor, records)
    if anchors.landmarks.shape[1] < 2:
        print("error: the model has a single anchor (direct regression): it reports no uncertainty", file=sys.stderr)
        return 2
    results = {s: correlate(anchors, predictor.scheme, s, args.threshold) for s in STRATEGIES}
    rows = [[s, f"{r.pooled:+.3f}", f"{r.per_face:+.3f}", f"{r.face_level:+.3f}", f"{np.median(r.uncertainty):.2f}",
             f"{np.median(r.error):.2f}"] for s, r in results.items()]
    table = markdown_table(["aggregation", "Spearman pooled (points)", "Spearman per face (median)",
                            "Spearman face level (mean unc. vs NME)", "median uncertainty % IOD",
                            "median error % IOD"], rows)
    weighted = results["weighted"]
    bins = deciles(weighted.uncertainty, weighted.error)
    plot_deciles(bins, args.plot, f"{Path(args.model).name}: {len(records)} validation faces, weighted, "
                                  f"C_th {args.threshold:g}\npooled Spearman {weighted.pooled:+.3f}")
    decile_table = markdown_table(["uncertainty decile", "median uncertainty % IOD", "mean error % IOD",
                                   "median error % IOD"],
                                  [[str(d + 1), f"{b[0]:.2f}", f"{b[1]:.2f}", f"{b[2]:.2f}"] for d, b in enumerate(bins)])
    verdict = "holds" if weighted.pooled >= TARGET_SPEARMAN else "NOT met"
    notes = [f"target pooled Spearman >= {TARGET_SPEARMAN:g} (weighted, the default): {weighted.pooled:+.3f} — {verdict}",
             f"data: {args.data}, validation split ({len(records)} faces), ground-truth crops; uncertainty = "
             f"confidence-weighted RMS distance of the anchors with C >= {args.threshold:g} from the aggregate "
             f"(all anchors where fewer than 2 pass), per point",
             f"plot: {args.plot}", f"model: {args.model} ({anchors.landmarks.shape[1]} anchors)"]
    print(table, "", decile_table, *(f"note: {n}" for n in notes), sep="\n")
    section = Section("Uncertainty vs error", command_line("benchmarks.uncertainty",
                                                           argv if argv is not None else sys.argv[1:]),
                      [table, decile_table], notes)
    print(f"appended to {append_section(section, args.results)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
