"""The per-frame pipeline of the design picture, top to bottom:

detect or track → crop (affine) → AnchorFace ONNX → aggregate → map back → smooth → pose.

The app, the headless runner and the benchmarks all call :meth:`FramePipeline.process`; nothing else
re-implements a step. Every stage is timed so benchmarks can say where the time goes.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, fields, replace

import numpy as np

from core.schemes import get_scheme
from core.decode import DEFAULT_THRESHOLD, STRATEGIES, aggregate, uncertainty_to_image, with_mirrored_pass
from core.detection import DETECTORS, FaceDetector, TileSweep, calibrated_box, detector_stages, make_detector
from core.face_state import FaceStates
from core.geometry import invert_affine, landmark_box, transform_points, warp_to_crop
from core.landmark_search import LandmarkSearch
from core.pose import estimate_pose
from core.results import FaceResult
from core.runtime import LandmarkModel
from core.shots import NewcomerWatch, ShotCutDetector
from core.smoothing import SMOOTHERS, KalmanConfig, OneEuroConfig, SmootherConfig
from core.tracker import SEARCH_SLOWDOWN, CropRequest, SearchSchedule, Tracker, TrackerConfig

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
    #: 1: the crop alone; 2: also its mirror image, the two passes averaged (flip test-time averaging:
    #: lower error for twice the model time — a choice for recordings and batch, not the live view).
    model_passes: int = 1

    def __post_init__(self) -> None:
        if self.model_passes not in (1, 2):
            raise ValueError(f"model passes must be 1 or 2, got {self.model_passes}")
        # An unknown name fails here, where the configuration is written, not in a processing thread.
        for registry, name in ((SMOOTHERS, self.smoothing), (STRATEGIES, self.strategy), (DETECTORS, self.detector)):
            registry.check(name)

    @property
    def smoother(self) -> SmootherConfig:
        """The active smoother's configuration: the field holding its tuning, or its defaults when it has
        none (``none``)."""
        kind = SMOOTHERS[self.smoothing].make
        held = [value for f in fields(self) if isinstance(value := getattr(self, f.name), kind)]
        return held[0] if held else kind()


@dataclass(frozen=True)
class Estimate:
    """The model's answer for one crop, in image pixels: landmarks, face confidence, per-point spread."""

    landmarks: np.ndarray
    confidence: float
    uncertainty: np.ndarray | None
    finite: bool = True  # False: the model answered this crop with NaN or inf (the face is lost for the frame)


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
    followed: frozenset[int] = frozenset()  # every track's id, the faces lost for this frame included

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
        self._new_schedule()
        return Tracker(self.config.tracker, self.config.smoother.build)

    def _new_schedule(self) -> None:
        """Fresh search state for the current detector, model and settings (every caller that changes one
        of them lands here): the stages tried while nothing is tracked are built once, here."""
        self._search_stages = self._stages(searching=True)
        first, *later = detector_stages(self.detector)
        # A widened sweep (see _stages_due) tries one half of the frame with the first stage before the
        # later ones: it is about as costly as short range on the whole frame and finds the small faces
        # of a crowd that neither range finds there (core.detection.TileSweep).
        self._widened_stages = (first, TileSweep(first), *later) if later else (first,)
        self.schedule = SearchSchedule(self.config.tracker.search_delay, len(self._search_stages))
        self.newcomers = NewcomerWatch()
        self._sweeps = 0  # sweeps for new faces while faces are tracked (every few is widened)
        self._last_detection: float | None = None

    def reconfigure(self, config: PipelineConfig) -> None:
        """Apply new settings live, keeping the faces being followed wherever the change allows.

        * strategy, threshold, pose, model passes, detection interval, search delay, faces followed:
          take effect on the next frame; tracks stay (the youngest beyond a lowered maximum end).
        * detector: the new one is built and the old one closed; tracks stay (only finding faces changes).
        * the active smoother's configuration or any other tracker setting: tracks restart, because
          their filters (or matching rules) were built for the old settings.
        """
        old, self.config = self.config, config
        if config.detector != old.detector:
            previous, self.detector = self.detector, make_detector(config.detector)
            close_detector(previous)
        self._new_schedule()
        searching = {"detection_interval": 0, "search_delay": 0.0, "max_faces": 0}
        if config.smoother != old.smoother or replace(config.tracker, **searching) != replace(old.tracker, **searching):
            self.tracker = self._new_tracker()
        else:
            self.tracker.config = config.tracker
        self.cuts.threshold = config.tracker.cut_threshold

    def close(self) -> None:
        """Release the detector (MediaPipe holds a graph and its threads)."""
        close_detector(self.detector)

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
        """Run one BGR frame through the pipeline and return its visible faces in image pixels, each
        with its head pose and face state: :meth:`track`, then :meth:`describe`."""
        return self.describe(self.track(frame, timestamp), frame)

    def track(self, frame: np.ndarray, timestamp: float | None = None) -> FrameResult:
        """Find and follow the faces of one BGR frame: their smoothed landmarks in image pixels, without
        pose or state yet (:meth:`describe`).

        Detection, when due (:meth:`_stages_due`), walks the detector's stages: each stage's boxes and
        the tracks' crops go through the model, and the next stage runs only when no face was accepted
        (``Tracker.accepts``) — on a widened sweep (:meth:`_stages_due`) only when no *new* face was.
        Each crop is inferred once per frame and each track updated once."""
        timings = dict.fromkeys(STAGES, 0.0)
        timestamp = time.monotonic() if timestamp is None else timestamp
        info = self.model.info
        clock = time.perf_counter()

        if self.cuts.is_cut(frame):
            self.tracker.end_shot()
            self.schedule.reset()
        stages, widened = self._stages_due(frame, timestamp)
        if stages:
            self.newcomers.seen(frame)
            self._last_detection = timestamp
        estimates: dict[bytes, Estimate] = {}
        requests = [] if stages else self.tracker.plan(None, info.input_size, info.crop_margin)
        clock = _lap(timings, "detect", clock)  # the cut check and the plan count as detect-or-track
        for index, stage in stages:
            boxes = [calibrated_box(d) for d in stage.detect(frame)]
            if not self.tracker.tracks:
                self.schedule.ran(index, timestamp)
            requests = self.tracker.plan(boxes, info.input_size, info.crop_margin)
            if isinstance(stage, LandmarkSearch):  # its faces must hold its own bar at the tracker's crop too
                requests = [r if r.track_id is not None else replace(r, start_confidence=stage.face_confidence)
                            for r in requests]
            clock = self._infer(frame, requests, estimates, timings, _lap(timings, "detect", clock))
            if any(self.tracker.accepts(estimates[_key(r)].landmarks, estimates[_key(r)].confidence)
                   for r in requests if r.track_id is None or not widened):
                break
        clock = self._infer(frame, requests, estimates, timings, clock)  # tracking only: no stage ran
        if requests:
            for request in requests:
                found = estimates[_key(request)]
                self.tracker.update(request, found.landmarks, found.confidence, timestamp, found.uncertainty)
            self.tracker.prune()
            clock = _lap(timings, "smooth", clock)
        faces = [FaceResult(track.track_id, track.smoothed, track.confidence, landmark_box(track.smoothed), None,
                            info.scheme, track.uncertainty) for track in self.tracker.tracks if not track.lost_frames]
        _lap(timings, "smooth", clock)
        non_finite = sum(not estimate.finite for estimate in estimates.values())
        result = FrameResult(self.frame_index, timestamp, faces, bool(stages), timings, non_finite,
                             frozenset(t.track_id for t in self.tracker.tracks))
        self.frame_index += 1
        return result

    def describe(self, result: FrameResult, frame: np.ndarray) -> FrameResult:
        """Add each face's head pose and face state (eye and mouth openness, blinks) to ``result``, the
        :meth:`track` of ``frame``; returns it. Nothing the tracker needs comes from here, so a caller
        may run it on another thread, while the model runs on the next frame, as long as it describes
        the frames in order (each track's blink detector carries state) and leaves ``frame`` unchanged
        until then (the blink cue reads its pixels)."""
        clock = time.perf_counter()
        scheme = self.model.info.scheme
        height, width = frame.shape[:2]
        result.faces = [replace(face, pose=estimate_pose(face.landmarks, (width, height), scheme)
                                if self.config.estimate_pose else None,
                                state=self.face_states.update(face.track_id, face.landmarks, scheme, result.timestamp,
                                                              frame))
                        for face in result.faces]
        self.face_states.keep(result.followed)
        _lap(result.timings, "pose", clock)
        return result

    def _stages(self, searching: bool) -> tuple[FaceDetector, ...]:
        """The detector's stages; with ``auto`` and nothing tracked (``searching``), the landmark model's
        own grid search after them (``core.landmark_search``: profiles the detectors miss). Tracks are
        found again by the detectors, so the search, tens of inferences, never runs while one is followed."""
        stages = detector_stages(self.detector)
        return (*stages, LandmarkSearch(self.model)) if searching and self.config.detector == "auto" else stages

    def _stages_due(self, frame: np.ndarray, timestamp: float) -> tuple[list[tuple[int, FaceDetector]], bool]:
        """The detector stages to try this frame, in order, and whether the sweep is widened.

        While nothing is tracked: those the search schedule says are due (``TrackerConfig.search_delay``),
        the landmark search last and most rarely. While faces are tracked: all of them when a track needs
        detection (one is lost, or the periodic sweep for new faces is due) or when someone may have come
        in (:meth:`_newcomer_due`). Such a sweep normally ends at the first stage, since the tracks' own
        crops are accepted there; every ``SEARCH_SLOWDOWN``-th sweep, while two or more faces are followed
        and there is room for more, it is *widened*: unless the first stage found a new face, it goes on to
        short range on one half of the frame (the halves in turn) and then to full range, stopping at the
        first that does. Faces in a crowd are small and short range misses them on the whole frame (on the
        made six-face clip it never found the selfie panel's face; full range found it on a third of the
        frames, short range on either half on all of them); the condition keeps the cost off the one-face
        case, where a second face usually comes in large and close."""
        tracks = self.tracker.tracks
        if not tracks:
            due = set(self.schedule.due(timestamp))
            return [(k, stage) for k, stage in enumerate(self._search_stages) if k in due], False
        if not (self.tracker.needs_detection() or self._newcomer_due(frame, timestamp)):
            return [], False
        stages = self._stages(searching=False)
        self._sweeps += 1
        widened = (len(stages) > 1 and 2 <= len(tracks) < self.config.tracker.max_faces
                   and self._sweeps % SEARCH_SLOWDOWN == 0)
        return list(enumerate(self._widened_stages if widened else stages)), widened

    def _newcomer_due(self, frame: np.ndarray, timestamp: float) -> bool:
        """Sweep for new faces before the periodic sweep when the picture changed away from the tracked
        faces (``core.shots.NewcomerWatch``), at most once per ``search_delay``: a face coming in is
        picked up within about that delay, as on a faceless frame, and a busy scene costs at most a
        detection per ``search_delay``."""
        tracks = self.tracker.tracks
        if len(tracks) >= self.config.tracker.max_faces or self._last_detection is None:
            return False
        if 0 <= timestamp - self._last_detection < self.config.tracker.search_delay:
            return False
        return self.newcomers.changed(frame, [t.box for t in tracks])

    def _infer(self, frame: np.ndarray, requests: list[CropRequest], estimates: dict[bytes, Estimate],
               timings: dict[str, float], clock: float) -> float:
        """Run the model on the crops of ``requests`` not yet in ``estimates`` (one batch) and add them,
        each marked whether the model's output for it was finite; returns the clock after the last
        timed step."""
        todo = list({_key(r): r for r in requests if _key(r) not in estimates}.values())
        if not todo:
            return clock
        info = self.model.info
        crops = np.stack([warp_to_crop(frame, r.matrix, info.input_size) for r in todo])
        clock = _lap(timings, "crop", clock)
        if self.config.model_passes == 2:
            anchors, confidences = with_mirrored_pass(self.model.run, crops, get_scheme(info.scheme).mirror)
        else:
            anchors, confidences = self.model.run(crops)
        finite = np.isfinite(anchors).all(axis=(1, 2, 3)) & np.isfinite(confidences).all(axis=1)
        clock = _lap(timings, "infer", clock)
        decoded = aggregate(anchors, confidences, self.config.strategy, self.config.threshold)
        to_image = [invert_affine(r.matrix) for r in todo]
        spreads = ([None] * len(todo) if decoded.uncertainty is None else
                   [uncertainty_to_image(u, m) for u, m in zip(decoded.uncertainty, to_image)])
        for request, landmarks, m, score, spread, ok in zip(todo, decoded.landmarks, to_image, decoded.confidence,
                                                            spreads, finite):
            estimates[_key(request)] = Estimate(transform_points(landmarks, m).astype(np.float32), float(score), spread,
                                                bool(ok))
        return _lap(timings, "decode", clock)


def _key(request: CropRequest) -> bytes:
    """Two requests with the same crop need one inference: the crop's matrix identifies it."""
    return np.asarray(request.matrix, dtype=np.float64).tobytes()


def close_detector(detector: FaceDetector) -> None:
    """Release a detector's resources, if it holds any."""
    close = getattr(detector, "close", None)  # the Haar cascade holds nothing to release
    if close is not None:
        close()


def _lap(timings: dict[str, float], stage: str, since: float) -> float:
    now = time.perf_counter()
    timings[stage] += now - since
    return now

