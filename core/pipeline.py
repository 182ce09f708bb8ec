"""The per-frame pipeline of the design picture, top to bottom:

detect or track → crop (affine) → AnchorFace ONNX → aggregate → map back → smooth → pose.

The app, the headless runner and the benchmarks all call :meth:`FramePipeline.process`; nothing else
re-implements a step. Every stage is timed so benchmarks can say where the time goes.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace

import numpy as np

from core.decode import DEFAULT_THRESHOLD, aggregate, uncertainty_to_image
from core.detection import FaceDetector, calibrated_box, make_detector
from core.face_state import FaceStates
from core.geometry import invert_affine, landmark_box, transform_points, warp_to_crop
from core.pose import estimate_pose
from core.results import FaceResult
from core.runtime import LandmarkModel
from core.shots import ShotCutDetector
from core.smoothing import SMOOTHERS, KalmanConfig, NoSmoothingConfig, OneEuroConfig, SmootherConfig
from core.tracker import Tracker, TrackerConfig

log = logging.getLogger(__name__)

STAGES = ("detect", "crop", "infer", "decode", "smooth", "pose")


@dataclass(frozen=True)
class PipelineConfig:
    """Run-time settings (the app's settings dialog edits these; defaults are the paper's/ours).

    Every smoother's configuration is held, the active one named by ``smoothing``, so switching
    methods back and forth keeps each one's tuning.
    """

    strategy: str = "weighted"
    threshold: float = DEFAULT_THRESHOLD
    smoothing: str = "kalman"
    kalman: KalmanConfig = KalmanConfig()
    one_euro: OneEuroConfig = OneEuroConfig()
    tracker: TrackerConfig = TrackerConfig()
    detector: str = "auto"
    estimate_pose: bool = True

    def __post_init__(self) -> None:
        if self.smoothing not in SMOOTHERS:
            raise ValueError(f"unknown smoother {self.smoothing!r}; choose one of {', '.join(SMOOTHERS)}")

    @property
    def smoother(self) -> SmootherConfig:
        """The active smoother's configuration."""
        return {"kalman": self.kalman, "one-euro": self.one_euro, "none": NoSmoothingConfig()}[self.smoothing]


@dataclass
class FrameResult:
    """What one frame produced: visible faces, whether the detector ran, seconds per stage, and how
    many crops the model answered with NaN or inf (those faces are lost for the frame; callers count
    such frames so a broken model is reported instead of looking like an empty picture)."""

    index: int
    timestamp: float
    faces: list[FaceResult]
    detected: bool
    timings: dict[str, float]
    non_finite: int = 0

    @property
    def total_seconds(self) -> float:
        return sum(self.timings.values())


class FramePipeline:
    """Stateful (tracks, smoothers) frame processor around one model session and one detector."""

    def __init__(self, model: LandmarkModel, config: PipelineConfig = PipelineConfig(),
                 detector: FaceDetector | None = None) -> None:
        self.model = model
        self.config = config
        self.detector = detector if detector is not None else make_detector(config.detector)
        self.tracker = self._new_tracker()
        self.cuts = ShotCutDetector(config.tracker.cut_threshold)
        self.frame_index = 0

    def _new_tracker(self) -> Tracker:
        self.face_states = FaceStates()
        return Tracker(self.config.tracker, self.config.smoother.build)

    def reconfigure(self, config: PipelineConfig) -> None:
        """Apply new settings live, keeping the faces being followed wherever the change allows.

        * strategy, threshold, pose, detection interval: take effect on the next frame; tracks stay.
        * detector: the new one is built and the old one closed; tracks stay (only finding faces changes).
        * the active smoother's configuration or any other tracker setting: tracks restart, because
          their filters (or matching rules) were built for the old settings.
        """
        old, self.config = self.config, config
        if config.detector != old.detector:
            previous, self.detector = self.detector, make_detector(config.detector)
            _close(previous)
        if config.smoother != old.smoother or replace(config.tracker, detection_interval=0) != replace(
                old.tracker, detection_interval=0):
            self.tracker = self._new_tracker()
        else:
            self.tracker.config = config.tracker
        self.cuts.threshold = config.tracker.cut_threshold

    def close(self) -> None:
        """Release the detector (MediaPipe holds a graph and its threads)."""
        _close(self.detector)

    def set_model(self, model: LandmarkModel) -> None:
        """Swap the model (e.g. a custom file from settings); tracks restart since crops may differ."""
        self.model = model
        self.tracker = self._new_tracker()

    def reset(self) -> None:
        """Forget all faces (new video, camera restart)."""
        self.tracker = self._new_tracker()
        self.cuts.reset()
        self.frame_index = 0

    def process(self, frame: np.ndarray, timestamp: float | None = None) -> FrameResult:
        """Run one BGR frame through the pipeline and return its visible faces in image pixels."""
        timings = dict.fromkeys(STAGES, 0.0)
        timestamp = time.monotonic() if timestamp is None else timestamp
        info = self.model.info
        clock = time.perf_counter()

        boxes = None
        non_finite = 0
        if self.cuts.is_cut(frame):
            self.tracker.end_shot()
        if self.tracker.needs_detection():
            boxes = [calibrated_box(d) for d in self.detector.detect(frame)]
        clock = _lap(timings, "detect", clock)  # the cut check counts as part of detect-or-track
        requests = self.tracker.plan(boxes, info.input_size, info.crop_margin)
        if requests:
            crops = np.stack([warp_to_crop(frame, r.matrix, info.input_size) for r in requests])
            clock = _lap(timings, "crop", clock)
            anchors, confidences = self.model.run(crops)
            non_finite = count_non_finite(anchors, confidences)
            clock = _lap(timings, "infer", clock)
            decoded = aggregate(anchors, confidences, self.config.strategy, self.config.threshold)
            to_image = [invert_affine(r.matrix) for r in requests]
            image_points = [transform_points(lm, m) for lm, m in zip(decoded.landmarks, to_image)]
            spreads = ([None] * len(requests) if decoded.uncertainty is None else
                       [uncertainty_to_image(u, m) for u, m in zip(decoded.uncertainty, to_image)])
            clock = _lap(timings, "decode", clock)
            for request, points, score, spread in zip(requests, image_points, decoded.confidence, spreads):
                self.tracker.update(request, points.astype(np.float32), float(score), timestamp, spread)
            self.tracker.prune()
            clock = _lap(timings, "smooth", clock)
        faces = []
        height, width = frame.shape[:2]
        for track in self.tracker.tracks:
            if track.lost_frames:
                continue
            pose = estimate_pose(track.smoothed, (width, height), info.scheme) if self.config.estimate_pose else None
            state = self.face_states.update(track.track_id, track.smoothed, info.scheme, timestamp)
            faces.append(FaceResult(track.track_id, track.smoothed, track.confidence, landmark_box(track.smoothed),
                                    pose, info.scheme, track.uncertainty, state))
        self.face_states.keep({t.track_id for t in self.tracker.tracks})
        _lap(timings, "pose", clock)
        result = FrameResult(self.frame_index, timestamp, faces, boxes is not None, timings, non_finite)
        self.frame_index += 1
        return result


def count_non_finite(anchors: np.ndarray, confidences: np.ndarray) -> int:
    """Crops of a batch (``[N, M, L, 2]`` landmarks, ``[N, M]`` confidences) with any NaN or inf output."""
    finite = np.isfinite(anchors).all(axis=(1, 2, 3)) & np.isfinite(confidences).all(axis=1)
    return int((~finite).sum())


def _close(detector: FaceDetector) -> None:
    close = getattr(detector, "close", None)  # the Haar cascade holds nothing to release
    if close is not None:
        close()


def _lap(timings: dict[str, float], stage: str, since: float) -> float:
    now = time.perf_counter()
    timings[stage] += now - since
    return now

