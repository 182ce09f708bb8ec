"""Fit ``assets/detector_calibration.json``: how each face detector's raw box maps to the landmark box.

    python -m tools.calibrate_detector --data ../shared/data

An offline tool that regenerates a shipped asset, so it lives here and not in :mod:`core.detection`
(which only reads the file): fit on the train split's ibug68 faces, measure on the validation split.
"""
from __future__ import annotations

import argparse
import datetime
import json
import logging
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
from tqdm import tqdm

from core.offline.datasets import read_dataset, select_split
from core.detection import (CALIBRATION_PAD, CALIBRATION_PATH, BoxCalibration, FaceDetector, HaarDetector,
                            MediaPipeDetector, best_match, load_calibration, pad_image)
from core.geometry import Box, landmark_box

#: Detector names (``FaceDetector.name``) the calibration file covers.
CALIBRATED_DETECTORS = ("mediapipe", "mediapipe_full", "haar")


def fit_calibration(detector_boxes: list[Box], landmark_boxes: list[Box]) -> tuple[BoxCalibration, dict[str, float]]:
    """Robust (median) fit over matched pairs; also returns each parameter's median absolute deviation."""
    if not detector_boxes or len(detector_boxes) != len(landmark_boxes):
        raise ValueError(f"need matched, non-empty box lists, got {len(detector_boxes)} and {len(landmark_boxes)}")
    samples = {
        "offset_x": [(g.center[0] - d.center[0]) / d.width for d, g in zip(detector_boxes, landmark_boxes)],
        "offset_y": [(g.center[1] - d.center[1]) / d.height for d, g in zip(detector_boxes, landmark_boxes)],
        "scale": [g.size / d.size for d, g in zip(detector_boxes, landmark_boxes)],
        "aspect": [g.height / g.width for g in landmark_boxes],
    }
    medians = {k: float(np.median(v)) for k, v in samples.items()}
    spread = {k: float(np.median(np.abs(np.asarray(v) - medians[k]))) for k, v in samples.items()}
    return BoxCalibration(**medians), spread


def _collect(records: list, detectors: list[FaceDetector], desc: str) -> dict[str, list[tuple[Box | None, Box]]]:
    """Per detector: (matched raw box or None, ground-truth landmark box) for every face, padded coordinates."""
    pairs: dict[str, list[tuple[Box | None, Box]]] = {d.name: [] for d in detectors}
    for record in tqdm(records, desc=desc, unit="face"):
        image, border = pad_image(record.load().image)
        truth = landmark_box(record.landmarks + border)
        for detector in detectors:
            match = best_match(detector.detect(image), truth)
            pairs[detector.name].append((match.box if match else None, truth))
    return pairs


def _measure(pairs: list[tuple[Box | None, Box]], calibration: BoxCalibration) -> dict[str, float]:
    found = [(d, g) for d, g in pairs if d is not None]
    raw = [d.iou(g) for d, g in found]
    calibrated = [calibration.apply(d).iou(g) for d, g in found]
    return {
        "faces": len(pairs),
        "detection_rate": len(found) / max(len(pairs), 1),
        "mean_iou_raw": float(np.mean(raw)) if found else float("nan"),
        "mean_iou_calibrated": float(np.mean(calibrated)) if found else float("nan"),
    }


def _build_detectors(names: list[str]) -> list[FaceDetector]:
    """Detectors by calibration key (``FaceDetector.name``)."""
    return [HaarDetector() if name == "haar" else MediaPipeDetector(full_range=name == "mediapipe_full")
            for name in names]


def calibrate(data: Path, out: Path, names: list[str], limit: int | None = None) -> dict:
    """Fit on the train split, measure on the val split (ibug68 faces), write ``out``; returns its content."""
    records = [r for r in read_dataset(data) if r.scheme == "ibug68"]
    train, val = select_split(records, "train")[:limit], select_split(records, "val")[:limit]
    detectors = _build_detectors(names)
    train_pairs = _collect(train, detectors, "calibrate (train)")
    val_pairs = _collect(val, detectors, "measure (val)")
    result = {
        "description": "raw face-detector box -> landmark bounding box (core.detection.BoxCalibration): centre "
                       "offset as a fraction of the detector box width/height, landmark-box longer side / "
                       "detector-box longer side, landmark-box height/width; medians over matched train faces, "
                       "spread = median absolute deviation. Regenerate: python -m tools.calibrate_detector",
        "data": f"{data} (ibug68 faces; fit on train, measured on val; images padded by {CALIBRATION_PAD} x side)",
        "created": datetime.date.today().isoformat(),
        "detectors": {},
    }
    for detector in detectors:
        matched = [(d, g) for d, g in train_pairs[detector.name] if d is not None]
        if not matched:
            raise RuntimeError(f"{detector.name} found none of the {len(train)} train faces; nothing to fit")
        calibration, spread = fit_calibration([d for d, _ in matched], [g for _, g in matched])
        result["detectors"][detector.name] = {
            **asdict(calibration), "n_faces": len(matched), "n_train": len(train), "spread": spread,
            "val": _measure(val_pairs[detector.name], calibration),
        }
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    load_calibration.cache_clear()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.calibrate_detector", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"),
                        help="dataset folder with manifest.csv (default: ../shared/data)")
    parser.add_argument("--out", type=Path, default=CALIBRATION_PATH,
                        help=f"calibration file (default: {CALIBRATION_PATH})")
    parser.add_argument("--detectors", nargs="+", default=list(CALIBRATED_DETECTORS), choices=CALIBRATED_DETECTORS,
                        help="detectors to calibrate (default: all)")
    parser.add_argument("--limit", type=int, default=None,
                        help="use only the first N faces of each split (quick check)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    result = calibrate(args.data, args.out, args.detectors, args.limit)
    print(f"{'detector':15} {'train n':>8} {'scale':>6} {'off x':>6} {'off y':>6} {'val rate':>8} "
          f"{'IoU raw':>8} {'IoU cal':>8}")
    for name, entry in result["detectors"].items():
        v = entry["val"]
        print(f"{name:15} {entry['n_faces']:8d} {entry['scale']:6.3f} {entry['offset_x']:6.3f} "
              f"{entry['offset_y']:6.3f} {v['detection_rate']:8.3f} {v['mean_iou_raw']:8.3f} "
              f"{v['mean_iou_calibrated']:8.3f}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
