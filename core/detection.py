"""Face detection for the first frame, lost tracks and periodic re-detection — offline, from pip only.

Detectors behind one small protocol: MediaPipe's BlazeFace in its short-range and full-range models
(both ship inside the 0.10.21 wheel) and, where mediapipe is missing, OpenCV's Haar cascade (ships
inside cv2). The default, ``auto``, is a cascade: short range, then full range on frames where no face
was accepted (decided by the pipeline, which runs the landmark model on short range's boxes first):
short range is the webcam case and misses faces under ~60 px (a person across a room or on a stage),
or returns boxes there the model rejects; full range finds them. The pipeline adds a last stage while
nothing is tracked, a grid search with the landmark model itself (``core.landmark_search``), for faces
in profile that neither finds. Detectors return their boxes *raw*: a detector's idea of a face box (forehead to chin, or a square around the eyes
and mouth) is not the crop policy's landmark bounding box. :func:`calibrated_box` maps a raw box to
a landmark-style box with a per-detector fit stored in ``assets/detector_calibration.json``, so
``crop_from_box(calibrated_box(d, kind))`` cuts the crop the model was trained on.

``python -m tools.calibrate_detector --data ../shared/data`` refits that file on the train split
and measures it on the validation split.
"""
from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Protocol

import cv2
import numpy as np

from core.geometry import Box
from core.paths import DETECTOR_CALIBRATION
from core.registry import Choice, Registry

log = logging.getLogger(__name__)

CALIBRATION_PATH = DETECTOR_CALIBRATION
#: Detectors whose boxes are landmark boxes already (``core.landmark_search``): no calibration applies.
LANDMARK_BOX_DETECTORS = frozenset({"landmark_search"})
#: A detection counts as the annotated face when its raw box overlaps the landmark box this much.
MATCH_IOU = 0.3
#: Black border (fraction of the image side) added around a shared-data crop before detecting, so the
#: face sits inside a frame as at run time rather than touching the crop's edges.
CALIBRATION_PAD = 0.25


@dataclass(frozen=True)
class Detection:
    """A face as the detector saw it: its raw ``box`` in frame pixels, a ``score`` in [0, 1] and the
    ``detector`` that found it (its calibration key; a cascade mixes two)."""

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
        from core.partial_imports import mediapipe_solution  # here: optional, and only this part of mediapipe

        self.name = "mediapipe_full" if full_range else "mediapipe"
        # TFLite/absl print INFO/WARNING lines straight to the C stderr when the graph first runs;
        # building it and running it once on a blank image inside the silenced block keeps them out.
        with _native_stderr_silenced():
            self._graph = mediapipe_solution("face_detection").FaceDetection(
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


class DetectorCascade:
    """Detectors tried in turn, cheapest first: short range, then full range.

    The pipeline (:class:`core.pipeline.FramePipeline`) walks :attr:`stages` itself and goes on to the
    next stage when no face was *accepted* on the frame — short range also returns boxes the landmark
    model then rejects (a crowd, a stage), and only the model can tell. :meth:`detect`, for a caller
    without a model, goes on only when a stage finds no box. Each detection keeps its own ``detector``
    name, so it is calibrated with its own detector's fit.
    """

    def __init__(self, *stages: FaceDetector) -> None:
        if len(stages) < 2:
            raise ValueError("a cascade needs at least two detectors")
        self.stages = stages
        self.name = "+".join(stage.name for stage in stages)

    def detect(self, frame_bgr: np.ndarray) -> list[Detection]:
        for stage in self.stages:
            found = stage.detect(frame_bgr)
            if found:
                return found
        return []

    def close(self) -> None:
        for detector in self.stages:
            getattr(detector, "close", lambda: None)()


class TileSweep:
    """One detector over one half of the frame per call, the halves in turn: faces too small for it in
    the whole frame.

    BlazeFace sees a frame shrunk to its input (128 px for short range), so a 50 px face in a 680 px
    wide frame becomes about 10 px there and is missed; in a half that overlaps the other by
    ``overlap`` of its side it becomes about 17 px and is found. On the made six-face crowd clip short
    range on both halves found all six faces on each of 88 frames checked (every second one), while on
    the whole frame full range finds 5.3 faces per frame and short range 4.3 (``benchmarks.coverage
    --max-faces 6``, ``benchmarks/RESULTS.md``). One half per call
    keeps each call's cost at one detector run; the pipeline calls it on its widened sweeps.

    The halves split the longer side. A box touching a half's inner edge is dropped: it may be part of
    a face cut there, and any face narrower than the overlap lies whole in the other half. Boxes keep
    the wrapped detector's name, so they are calibrated as its own. The wrapped detector is not closed
    here: its owner closes it.
    """

    def __init__(self, detector: FaceDetector, overlap: float = 0.25) -> None:
        if not 0 <= overlap < 1:
            raise ValueError(f"tile overlap must be in [0, 1), got {overlap}")
        self.detector, self.overlap = detector, overlap
        self.name = detector.name
        self._turn = 0

    def halves(self, width: int, height: int) -> list[tuple[int, int, int, int]]:
        """The two overlapping halves ``(x0, y0, x1, y1)`` of a ``width`` × ``height`` frame."""
        long_side = max(width, height)
        part = int(round(long_side / (2 - self.overlap)))
        spans = [(0, part), (long_side - part, long_side)]
        if width >= height:
            return [(a, 0, b, height) for a, b in spans]
        return [(0, a, width, b) for a, b in spans]

    def detect(self, frame_bgr: np.ndarray) -> list[Detection]:
        height, width = frame_bgr.shape[:2]
        x0, y0, x1, y1 = self.halves(width, height)[self._turn % 2]
        self._turn += 1
        # The cut edges (a frame edge cuts nothing): a box within a pixel of one may be part of a face.
        left, top = (x0 + 1 if x0 > 0 else -np.inf), (y0 + 1 if y0 > 0 else -np.inf)
        right, bottom = (x1 - 1 if x1 < width else np.inf), (y1 - 1 if y1 < height else np.inf)
        found = []
        for detection in self.detector.detect(frame_bgr[y0:y1, x0:x1]):
            b = detection.box
            box = Box(b.x0 + x0, b.y0 + y0, b.x1 + x0, b.y1 + y0)
            if box.x0 > left and box.y0 > top and box.x1 < right and box.y1 < bottom:
                found.append(Detection(box, detection.score, detection.detector))
        return found


def detector_stages(detector: FaceDetector) -> tuple[FaceDetector, ...]:
    """The detectors to try in turn: a cascade's stages, or the one detector."""
    return detector.stages if isinstance(detector, DetectorCascade) else (detector,)


def _mediapipe(min_confidence: float, full_range: bool) -> FaceDetector:
    """One MediaPipe range, asked for by name: without mediapipe that is an error, not a fallback."""
    try:
        return MediaPipeDetector(min_confidence, full_range)
    except ImportError as exc:
        raise RuntimeError(f"mediapipe face detection is not available: {exc}") from exc


def _automatic(min_confidence: float) -> FaceDetector:
    """Short range, then full range when no face is accepted; the Haar cascade where mediapipe is missing."""
    try:
        return DetectorCascade(MediaPipeDetector(min_confidence, False), MediaPipeDetector(min_confidence, True))
    except ImportError as exc:
        log.info("mediapipe not importable (%s); using OpenCV's Haar cascade", exc)
        return HaarDetector()


#: The detector choices (``PipelineConfig.detector``, ``--detector``, Settings → Processing): name, label,
#: and the factory taking the minimum detection confidence. A new detector is one entry here.
DETECTORS: Registry[Callable[[float], FaceDetector]] = Registry("detector", [
    Choice("auto", "Automatic (short range, full range when no face is accepted, a landmark search for profiles)",
           _automatic),
    Choice("short", "MediaPipe short range", lambda confidence: _mediapipe(confidence, False)),
    Choice("full", "MediaPipe full range (small, distant faces)", lambda confidence: _mediapipe(confidence, True)),
    Choice("haar", "OpenCV Haar cascade", lambda confidence: HaarDetector()),
])


def make_detector(kind: str = "auto", min_confidence: float = 0.5) -> FaceDetector:
    """A detector for one of :data:`DETECTORS` (ValueError for an unknown name)."""
    detector = DETECTORS[kind].make(min_confidence)
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
    if kind in LANDMARK_BOX_DETECTORS:
        return detection.box
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
