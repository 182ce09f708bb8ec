"""Face detection for the first frame, lost tracks and periodic re-detection — offline, from pip only.

Detectors behind one small protocol: MediaPipe's BlazeFace in its short-range and full-range models
(both ship inside the 0.10.21 wheel) and, where mediapipe is missing, OpenCV's Haar cascade (ships
inside cv2). The default, ``auto``, runs short range and falls back to full range on frames where it
finds nothing: short range is the webcam case and misses faces under ~60 px (a person across a room or
on a stage), which full range finds. Detectors return their boxes *raw*: a detector's idea of a face box (forehead to chin, or a square around the eyes
and mouth) is not the crop policy's landmark bounding box. :func:`calibrated_box` maps a raw box to
a landmark-style box with a per-detector fit stored in ``assets/detector_calibration.json``, so
``crop_from_box(calibrated_box(d, kind))`` cuts the crop the model was trained on.

``python -m core.detection --calibrate --data ../shared/data`` refits that file on the train split
and measures it on the validation split.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import functools
import json
import logging
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator, Protocol

import cv2
import numpy as np

from core.geometry import Box, landmark_box

log = logging.getLogger(__name__)

CALIBRATION_PATH = Path(__file__).resolve().parent.parent / "assets" / "detector_calibration.json"
#: The detector choices (``PipelineConfig.detector``, ``--detector``, Settings), described in DETECTOR_HELP.
DETECTORS = ("auto", "short", "full", "haar")
DETECTOR_HELP = {
    "auto": "MediaPipe short range, full range on frames where it finds nothing (Haar without mediapipe)",
    "short": "MediaPipe short range only (faces within ~2 m; misses faces under ~60 px)",
    "full": "MediaPipe full range only (small and distant faces; looser boxes on near faces)",
    "haar": "OpenCV's Haar cascade (no mediapipe needed; frontal faces only)",
}
#: Detector names (``FaceDetector.name``) the calibration file covers.
CALIBRATED_DETECTORS = ("mediapipe", "mediapipe_full", "haar")
#: A detection counts as the annotated face when its raw box overlaps the landmark box this much.
MATCH_IOU = 0.3
#: Black border (fraction of the image side) added around a shared-data crop before detecting, so the
#: face sits inside a frame as at run time rather than touching the crop's edges.
CALIBRATION_PAD = 0.25


@dataclass(frozen=True)
class Detection:
    """A face as the detector saw it: its raw ``box`` in frame pixels, a ``score`` in [0, 1] and the
    ``detector`` that found it (its calibration key; a fallback detector mixes two)."""

    box: Box
    score: float
    detector: str = ""


class FaceDetector(Protocol):
    """Anything that finds faces in a BGR frame; ``name`` is its key in the calibration file."""

    name: str

    def detect(self, frame_bgr: np.ndarray) -> list[Detection]: ...


class MediaPipeDetector:
    """MediaPipe BlazeFace: short range (faces within ~2 m, the webcam case) or full range (``full_range``)."""

    def __init__(self, min_confidence: float = 0.5, full_range: bool = False) -> None:
        import mediapipe as mp  # imported here: optional, and slow to import

        self.name = "mediapipe_full" if full_range else "mediapipe"
        # TFLite/absl print INFO/WARNING lines straight to the C stderr when the graph first runs;
        # building it and running it once on a blank image inside the silenced block keeps them out.
        with _native_stderr_silenced():
            self._graph = mp.solutions.face_detection.FaceDetection(
                model_selection=1 if full_range else 0, min_detection_confidence=min_confidence)
            self._graph.process(np.zeros((64, 64, 3), np.uint8))

    def detect(self, frame_bgr: np.ndarray) -> list[Detection]:
        height, width = frame_bgr.shape[:2]
        result = self._graph.process(cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2RGB))
        detections = []
        for found in result.detections or []:
            rel = found.location_data.relative_bounding_box
            x0, y0 = rel.xmin * width, rel.ymin * height
            box = Box(x0, y0, x0 + rel.width * width, y0 + rel.height * height)
            detections.append(Detection(box, float(found.score[0]), self.name))
        return detections

    def close(self) -> None:
        self._graph.close()


class HaarDetector:
    """OpenCV's frontal-face Haar cascade: always available, weaker on turned or tilted faces.

    It has no probability; ``score`` is a monotone squash of the number of merged raw hits,
    ``n / (n + min_neighbors)``, good for ranking faces, not a calibrated confidence.
    """

    name = "haar"

    def __init__(self, scale_factor: float = 1.1, min_neighbors: int = 5, min_size: int = 24) -> None:
        path = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
        self._cascade = cv2.CascadeClassifier(str(path))
        if self._cascade.empty():
            raise RuntimeError(f"cannot load OpenCV's Haar cascade from {path}")
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self.min_size = min_size

    def detect(self, frame_bgr: np.ndarray) -> list[Detection]:
        gray = cv2.equalizeHist(cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2GRAY))
        rects, hits = self._cascade.detectMultiScale2(gray, scaleFactor=self.scale_factor,
                                                      minNeighbors=self.min_neighbors,
                                                      minSize=(self.min_size, self.min_size))
        return [Detection(Box(float(x), float(y), float(x + w), float(y + h)), n / (n + self.min_neighbors), self.name)
                for (x, y, w, h), n in zip(np.reshape(rects, (-1, 4)), np.ravel(hits))]


class FallbackDetector:
    """``primary`` on every frame; ``fallback`` only on frames where the primary finds nothing.

    Short range then full range: frames with a near face cost one detector, frames with only a small
    face (or none) cost both. Each detection keeps its own ``detector`` name, so it is calibrated
    with its own detector's fit.
    """

    def __init__(self, primary: FaceDetector, fallback: FaceDetector) -> None:
        self.primary, self.fallback = primary, fallback
        self.name = f"{primary.name}+{fallback.name}"

    def detect(self, frame_bgr: np.ndarray) -> list[Detection]:
        return self.primary.detect(frame_bgr) or self.fallback.detect(frame_bgr)

    def close(self) -> None:
        for detector in (self.primary, self.fallback):
            getattr(detector, "close", lambda: None)()


def make_detector(kind: str = "auto", min_confidence: float = 0.5) -> FaceDetector:
    """A detector for one of :data:`DETECTORS`; ``auto`` without mediapipe is the Haar cascade (logged)."""
    if kind not in DETECTORS:
        raise ValueError(f"unknown detector {kind!r}; use one of {', '.join(DETECTORS)}")
    if kind == "haar":
        detector: FaceDetector = HaarDetector()
    else:
        try:
            ranges = {"auto": (False, True), "short": (False,), "full": (True,)}[kind]
            parts = [MediaPipeDetector(min_confidence, full_range) for full_range in ranges]
        except ImportError as exc:
            if kind != "auto":
                raise RuntimeError(f"mediapipe face detection is not available: {exc}") from exc
            log.info("mediapipe not importable (%s); using OpenCV's Haar cascade", exc)
            return HaarDetector()
        detector = FallbackDetector(*parts) if len(parts) == 2 else parts[0]
    log.info("face detector: %s", detector.name)
    return detector


@contextlib.contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """Point file descriptor 2 at /dev/null for the block (native libraries ignore ``sys.stderr``).

    Process-wide while it lasts, so it only wraps the one-off graph start-up.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


# --- calibration: raw detector box -> landmark-style box --------------------------------------

@dataclass(frozen=True)
class BoxCalibration:
    """Map a raw detector box to the landmark bounding box the crop policy expects.

    Centre shift as a fraction of the detector box's width/height, the landmark box's longer side
    as a multiple of the detector box's longer side (the crop policy scales by the longer side), and
    the typical landmark-box aspect (height / width) so the result is box-shaped, not square.
    """

    offset_x: float
    offset_y: float
    scale: float
    aspect: float

    def apply(self, box: Box) -> Box:
        cx, cy = box.center
        cx += self.offset_x * box.width
        cy += self.offset_y * box.height
        side = self.scale * box.size
        width, height = (side / self.aspect, side) if self.aspect >= 1 else (side, side * self.aspect)
        return Box(cx - width / 2, cy - height / 2, cx + width / 2, cy + height / 2)


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


@functools.lru_cache(maxsize=4)
def load_calibration(path: str | Path = CALIBRATION_PATH) -> dict[str, BoxCalibration]:
    """Per-detector calibrations from the JSON file (read once per path)."""
    with Path(path).open(encoding="utf-8") as f:
        data = json.load(f)
    fields = BoxCalibration.__dataclass_fields__
    return {kind: BoxCalibration(**{k: float(entry[k]) for k in fields}) for kind, entry in data["detectors"].items()}


def calibrated_box(detection: Detection, kind: str = "", path: str | Path = CALIBRATION_PATH) -> Box:
    """The landmark-style box for a raw detection, calibrated for the detector that found it
    (``detection.detector``; ``kind`` names it for a detection that does not say)."""
    kind = detection.detector or kind
    calibrations = load_calibration(path)
    if kind not in calibrations:
        raise ValueError(f"no calibration for detector {kind!r} in {path}; it has {', '.join(sorted(calibrations))}")
    return calibrations[kind].apply(detection.box)


def best_match(detections: list[Detection], truth: Box, min_iou: float = MATCH_IOU) -> Detection | None:
    """The detection overlapping ``truth`` most, if it overlaps at least ``min_iou``."""
    best = max(detections, key=lambda d: d.box.iou(truth), default=None)
    return best if best is not None and best.box.iou(truth) >= min_iou else None


def pad_image(image: np.ndarray, fraction: float = CALIBRATION_PAD) -> tuple[np.ndarray, int]:
    """Black border of ``fraction`` × the longer side on every edge; returns the image and the border."""
    border = int(round(fraction * max(image.shape[:2])))
    return cv2.copyMakeBorder(image, border, border, border, border, cv2.BORDER_CONSTANT, value=0), border


# --- the calibration CLI ----------------------------------------------------------------------

def _collect(records: list, detectors: list[FaceDetector], desc: str) -> dict[str, list[tuple[Box | None, Box]]]:
    """Per detector: (matched raw box or None, ground-truth landmark box) for every face, padded coordinates."""
    from tqdm import tqdm

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
    from core.datasets import read_dataset, select_split

    records = [r for r in read_dataset(data) if r.scheme == "ibug68"]
    train, val = select_split(records, "train")[:limit], select_split(records, "val")[:limit]
    detectors = _build_detectors(names)
    train_pairs = _collect(train, detectors, "calibrate (train)")
    val_pairs = _collect(val, detectors, "measure (val)")
    result = {
        "description": "raw face-detector box -> landmark bounding box (core.detection.BoxCalibration): centre "
                       "offset as a fraction of the detector box width/height, landmark-box longer side / "
                       "detector-box longer side, landmark-box height/width; medians over matched train faces, "
                       "spread = median absolute deviation. Regenerate: python -m core.detection --calibrate",
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
    parser = argparse.ArgumentParser(prog="python -m core.detection", description=__doc__.split("\n\n")[0])
    parser.add_argument("--calibrate", action="store_true",
                        help="fit the detector-box -> landmark-box mapping on the train split, measure it on the "
                             "val split and write it to --out")
    parser.add_argument("--data", type=Path, default=Path("../shared/data"),
                        help="dataset folder with manifest.csv (default: ../shared/data)")
    parser.add_argument("--out", type=Path, default=CALIBRATION_PATH,
                        help=f"calibration file (default: {CALIBRATION_PATH})")
    parser.add_argument("--detectors", nargs="+", default=list(CALIBRATED_DETECTORS), choices=CALIBRATED_DETECTORS,
                        help="detectors to calibrate (default: all)")
    parser.add_argument("--limit", type=int, default=None,
                        help="use only the first N faces of each split (quick check)")
    args = parser.parse_args(argv)
    if not args.calibrate:
        parser.error("nothing to do: pass --calibrate")
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
