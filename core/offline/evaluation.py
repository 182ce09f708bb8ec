"""The evaluation protocol, torch-free: crop each face, run a predictor, map the points back, score.

Used by ``training.evaluate`` (which adds torch checkpoints) and by ``benchmarks.accuracy`` (which runs
on the ``bench`` extra, without torch). Faces are cropped from their ground-truth landmark box (the
standard protocol; visible points only) with the crop policy recorded in the model, or from a
calibrated detector box (:class:`DetectorCrops`). NME is inter-ocular; a face whose outer eye corner is
hidden falls back to the box diagonal (core.offline.metrics), and every table says how many faces did.

Beyond per-source rows, :func:`report` scores the *turned* faces (a MERL-RAV yaw bucket other than
frontal, from the data's ``faces_meta.json``) and the share of them whose face score — the best anchor's
confidence, what the tracker keeps a track on — reaches the tracker's loss threshold.
"""
from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Protocol

import numpy as np
from tqdm import tqdm

from core.offline.datasets import FaceRecord, FaceSample, read_dataset, select_split
from core.decode import DEFAULT_THRESHOLD, aggregate, with_mirrored_pass
from core.geometry import Box, crop_from_box, crop_from_landmarks, invert_affine, landmark_box, transform_points, \
    warp_to_crop
from core.offline.metrics import anchor_errors, auc, ced_curve, eyelid_nme, failure_rate, nme, normalisations, pearson, \
    signed_errors
from core.schemes import get_scheme
from core.tracker import TrackerConfig

log = logging.getLogger("core.offline.evaluation")

#: The face score below which the tracker drops a track (core.tracker): a turned face must reach it.
LOSS_THRESHOLD = TrackerConfig().lost_confidence
#: MERL-RAV's yaw bucket of a frontal face; every other bucket counts as turned.
FRONTAL = "frontal"


class AnchorPredictor(Protocol):
    """What evaluation runs: uint8 BGR policy crops in, per-anchor points and confidences out."""

    scheme: str
    input_size: int
    crop_margin: float

    def predict(self, crops_bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``[N, S, S, 3]`` uint8 BGR → (``[N, M, L, 2]`` crop px, ``[N, M]`` confidences)."""
        ...


@dataclass
class OnnxPredictor:
    """An exported model through core.runtime (identical to what the app runs)."""

    runtime: object
    scheme: str
    input_size: int
    crop_margin: float

    @classmethod
    def from_file(cls, path: str | Path, device: str = "auto") -> "OnnxPredictor":
        from core.runtime import load_model

        model = load_model(path, device=device, precision="fp32")  # the file named, not a sibling
        return cls(model, model.info.scheme, model.info.input_size, model.info.crop_margin)

    def predict(self, crops_bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.runtime.run(crops_bgr)


@dataclass
class FlipAveraged:
    """A predictor that also runs the mirrored crop and averages both (core.decode.with_mirrored_pass):
    measures what flip test-time averaging buys, and shows where a model sits against its own mirror
    image (a flip-trained network cannot learn a label set's horizontal offset)."""

    inner: AnchorPredictor

    def __post_init__(self) -> None:
        self.scheme, self.input_size, self.crop_margin = self.inner.scheme, self.inner.input_size, self.inner.crop_margin

    def predict(self, crops_bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return with_mirrored_pass(self.inner.predict, crops_bgr, get_scheme(self.scheme).mirror)


CropSource = Callable[[FaceSample, int, float], "np.ndarray | None"]


def ground_truth_crop(sample: FaceSample, size: int, margin: float) -> np.ndarray:
    """The standard protocol: the crop policy applied to the ground-truth (visible) landmarks."""
    return crop_from_landmarks(sample.landmarks, size, margin)


class CropsFrom:
    """The standard crop, but from the landmarks of ``records`` rather than of the truth being scored:
    scoring against moved labels (per-source offsets) must not move the crop with them, or a model's
    error would move with its input instead of being measured against the new truth."""

    def __init__(self, records: list[FaceRecord]) -> None:
        self.landmarks = {r.image_path: r.landmarks for r in records}

    def __call__(self, sample: FaceSample, size: int, margin: float) -> np.ndarray:
        return crop_from_landmarks(self.landmarks[sample.path], size, margin)


class DetectorCrops:
    """Crop from a detector's calibrated box, on the image padded as in calibration (faces in the
    shared data fill their photo; the border gives the detector the context a webcam frame has)."""

    def __init__(self, kind: str) -> None:
        from core.detection import make_detector

        self.detector = make_detector(kind)

    def __call__(self, sample: FaceSample, size: int, margin: float) -> np.ndarray | None:
        from core.detection import best_match, calibrated_box, pad_image

        image, border = pad_image(sample.image)
        match = best_match(self.detector.detect(image), landmark_box(sample.landmarks + border))
        if match is None:
            return None
        box = calibrated_box(match, self.detector.name)
        shifted = Box(box.x0 - border, box.y0 - border, box.x1 - border, box.y1 - border)
        return crop_from_box(shifted, size, margin)


@dataclass
class Evaluation:
    """Per-face results of one pass, so several summaries (sources, subsets) reuse one inference."""

    keys: list[str]
    sources: list[str]
    nmes: np.ndarray
    scores: np.ndarray  # face score: the best anchor's confidence
    norms: np.ndarray  # the normalisation each face got (core.offline.metrics.normalisations)
    bias: np.ndarray  # [N, 2] mean signed error (dx, dy) / the normaliser (core.offline.metrics.signed_errors)
    eyelids: np.ndarray  # [N] NME over the eyelid points (NaN for a scheme without them)
    pearson: float
    missed: int = 0  # faces the detector did not find (detector crops only)


def evaluate(predictor: AnchorPredictor, records: list[FaceRecord], strategy: str = "weighted",
             threshold: float = DEFAULT_THRESHOLD, batch_size: int = 32,
             crop: CropSource = ground_truth_crop) -> Evaluation:
    """Run the model over ``records`` (all of the predictor's scheme) and score every placed face."""
    scheme = get_scheme(predictor.scheme)
    preds, truths, scores, confs, errs, kept = [], [], [], [], [], []
    for start in tqdm(range(0, len(records), batch_size), desc="evaluating", unit="batch", leave=False):
        loaded = [r.load() for r in records[start:start + batch_size]]
        placed = [crop(s, predictor.input_size, predictor.crop_margin) for s in loaded]
        kept.extend(m is not None for m in placed)
        batch = [(s, m) for s, m in zip(loaded, placed) if m is not None]
        if not batch:
            continue
        crops = np.stack([warp_to_crop(s.image, m, predictor.input_size) for s, m in batch])
        anchor_landmarks, anchor_conf = predictor.predict(crops)
        agg = aggregate(anchor_landmarks, anchor_conf, strategy, threshold)
        for (s, m), lm in zip(batch, agg.landmarks):
            preds.append(transform_points(lm, invert_affine(m)))
            truths.append(s.landmarks)
        scores.extend(agg.confidence.tolist())
        if anchor_conf.shape[1] > 1:
            crop_truth = np.stack([transform_points(s.landmarks, m) for s, m in batch])
            confs.extend(anchor_conf.ravel().tolist())
            errs.extend(anchor_errors(anchor_landmarks, crop_truth, scheme).ravel().tolist())
    placed_records = [r for r, k in zip(records, kept) if k]
    gt = np.stack(truths) if truths else np.zeros((0, scheme.num_points, 2))
    pred = np.stack(preds) if preds else np.zeros_like(gt)
    return Evaluation([r.key for r in placed_records], [r.source for r in placed_records], nme(pred, gt, scheme),
                      np.asarray(scores), normalisations(gt, scheme), signed_errors(pred, gt, scheme),
                      eyelid_nme(pred, gt, scheme),
                      pearson(confs, errs) if confs else float("nan"), kept.count(False))


@dataclass
class Scores:
    """The table row of one subset; NME/FR/AUC as fractions; ``fallback`` faces had no inter-ocular
    distance (an outer eye corner hidden) and were normalised by the box diagonal. ``dx``/``dy`` are the
    mean signed error (prediction − truth, fractions of the normaliser): a label-convention mismatch or a
    biased source shows up there and nowhere else. ``eyelid`` is the NME over the eyelid points only."""

    n: int
    nme: float
    fr: float
    auc: float
    pearson: float
    fallback: int = 0
    tracked: float = float("nan")  # share of faces scored ≥ LOSS_THRESHOLD (turned-face rows only)
    dx: float = float("nan")
    dy: float = float("nan")
    eyelid: float = float("nan")


def summarise(nmes: np.ndarray, corr: float = float("nan"), norms: np.ndarray | None = None,
              scores: np.ndarray | None = None, bias: np.ndarray | None = None,
              eyelids: np.ndarray | None = None) -> Scores:
    fallback = int((np.asarray(norms) != "inter_ocular").sum()) if norms is not None else 0
    tracked = float((np.asarray(scores) >= LOSS_THRESHOLD).mean()) if scores is not None and len(scores) else float("nan")
    if not len(nmes):
        return Scores(0, float("nan"), float("nan"), float("nan"), corr, fallback, tracked)
    dx, dy = np.nanmean(bias, axis=0) if bias is not None and len(bias) else (float("nan"), float("nan"))
    lid = float(np.nanmean(eyelids)) if eyelids is not None and np.isfinite(eyelids).any() else float("nan")
    return Scores(len(nmes), float(nmes.mean()), failure_rate(nmes), auc(nmes), corr, fallback, tracked,
                  float(dx), float(dy), lid)


def yaw_buckets(data_root: str | Path) -> dict[str, str]:
    """``{record key: yaw bucket}`` from the data's ``faces_meta.json`` (faces that have one)."""
    path = Path(data_root) / "faces_meta.json"
    if not path.is_file():
        return {}
    buckets = {}
    for face in json.loads(path.read_text(encoding="utf-8")):
        if "yaw_bucket" in face:
            buckets[f"{face['source']}/{Path(face['image']).stem}"] = face["yaw_bucket"]
    return buckets


def report(result: Evaluation, buckets: dict[str, str] | None = None) -> dict:
    """Overall, per-source and (where ``buckets`` names any) turned-face scores, with the keys the
    ``--json`` contract names."""
    sources = np.array(result.sources)

    def subset(mask: np.ndarray, with_scores: bool = False) -> dict:
        return asdict(summarise(result.nmes[mask], norms=result.norms[mask],
                                scores=result.scores[mask] if with_scores else None,
                                bias=result.bias[mask], eyelids=result.eyelids[mask]))

    per_source = {s: subset(sources == s) for s in sorted(set(result.sources))}
    numbers = {**asdict(summarise(result.nmes, result.pearson, result.norms, bias=result.bias,
                                  eyelids=result.eyelids)), "per_source": per_source, "missed": result.missed}
    turned = np.array([(buckets or {}).get(k, FRONTAL) != FRONTAL for k in result.keys], dtype=bool)
    if turned.any():
        numbers["turned"] = subset(turned, with_scores=True)
    return numbers


def format_table(numbers: dict) -> str:
    """Plain-text table: one row per source, the turned faces, and the overall row."""
    rows = [("subset", "N", "NME %", "FR@0.1 %", "AUC@0.1", "dx %", "dy %", "eyelid %", "Pearson", "norm",
             f"score≥{LOSS_THRESHOLD} %")]
    named = list(numbers["per_source"].items())
    if "turned" in numbers:
        named.append(("turned (yaw not frontal)", numbers["turned"]))
    for name, s in named + [("overall", numbers)]:
        norm = "inter-ocular" + (f" ({s['fallback']} box-diag)" if s.get("fallback") else "")
        tracked = s.get("tracked", float("nan"))
        rows.append((name, str(s["n"]), f"{100 * s['nme']:.2f}", f"{100 * s['fr']:.2f}", f"{s['auc']:.4f}",
                     *(_percent(s.get(k, float("nan")), signed=k != "eyelid") for k in ("dx", "dy", "eyelid")),
                     "" if np.isnan(s["pearson"]) else f"{s['pearson']:+.3f}", norm,
                     "" if np.isnan(tracked) else f"{100 * tracked:.1f}"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def _percent(value: float, signed: bool) -> str:
    """A table cell in %, blank where the subset has no value."""
    if np.isnan(value):
        return ""
    return f"{100 * value:+.2f}" if signed else f"{100 * value:.2f}"


def plot_ced(curves: dict[str, np.ndarray], path: str | Path, title: str = "") -> None:
    """CED curves (one per label) up to NME 0.1, saved as PNG (matplotlib is imported only here)."""
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


def load_records(data: str | Path, split: str, scheme: str) -> list[FaceRecord]:
    """The records of ``split`` (``train``/``val``/``val_new``/``all``; the repository split applies only
    where it covers the dataset)."""
    records = [r for r in read_dataset(data) if r.scheme == scheme]
    if split == "all":
        return records
    chosen = select_split(records, split)
    if not chosen:
        log.warning("the repository split does not cover %s: evaluating all %d faces", data, len(records))
        return records
    return chosen
