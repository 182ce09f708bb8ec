"""Multi-face tracking with stable ids: detect sometimes, follow landmarks otherwise.

Each frame, a track's crop comes from its previous smoothed landmarks (the crop policy applied to them),
which is faster and steadier than detecting. Smoothed, not raw: cropping from the raw output feeds the
model's own noise back into the next crop, a slow random walk the smoother then has to chase. The
detector runs on the first frame, whenever a track's confidence falls below ``lost_confidence``, and
every ``detection_interval`` frames to pick up new faces. Detections are matched to tracks by box
overlap; a track that stays lost for ``max_lost_frames`` consecutive frames is dropped.

A face is one person only while the picture is one shot: on a shot cut (``core.shots``, seen by the
pipeline) every track ends, and a face box that jumps further in one frame than real motion takes it
(``max_jump``) starts a new track with a new id. Output that is not a face at all — non-finite numbers,
or landmarks collapsed to a few pixels — never reaches the smoother or the pose fit: a frame of
non-finite output counts as a lost frame, a collapsed track is dropped.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from core.geometry import Box, crop_from_box, landmark_box
from core.shots import CUT_THRESHOLD
from core.smoothing import Smoother

#: While nothing is tracked, each later stage of a detector cascade runs this many times less often
#: than the one before it (``TrackerConfig.search_delay``): full range's small faces within 0.3 s.
SEARCH_SLOWDOWN = 3
#: A landmark box whose longer side is below this many pixels is a collapsed output, not a face (the
#: smallest faces MediaPipe full range finds have landmark boxes of about 30 px).
MIN_FACE_PX = 8.0


@dataclass(frozen=True)
class TrackerConfig:
    """When to detect, how to match, when to give up; every field is a run-time setting."""

    detection_interval: int = 10
    lost_confidence: float = 0.5
    max_lost_frames: int = 3
    match_iou: float = 0.3
    #: Faces followed at once; each costs a model run per frame. 4 covers a webcam and a small group; a
    #: crowd, an audience or a class needs more (``--max-faces``). Past it, detections start no track.
    max_faces: int = 4
    duplicate_iou: float = 0.6
    #: A track keeps its crop until its smoothed landmark box moves or resizes by more than this fraction
    #: of the box size. Re-cropping on every sub-pixel change lets the model's noise walk the crop
    #: around (the output partly follows its crop); a small dead band breaks that loop, and is far
    #: inside the ±6 % crop jitter the model was trained with.
    recrop_threshold: float = 0.02
    #: Colour change between neighbouring frames that counts as a shot cut (``core.shots``; 0 = off).
    cut_threshold: float = CUT_THRESHOLD
    #: Largest plausible one-frame move of a tracked face: centre shift or log size change, as a
    #: fraction of the box size. On the shared clips real motion reached 0.04 (centre) and 0.03 (size);
    #: a jump beyond this is a different face (a cut the colours did not show) and gets a new id.
    max_jump: float = 0.35
    #: While nothing is tracked, the detector runs every ``search_delay`` seconds (of the frames' own
    #: timestamps, so the interval in frames follows the source's frame rate: every 3rd frame at 30 fps),
    #: not on every frame: most of a faceless frame's cost was detection. A face that appears is picked
    #: up within ``search_delay`` (by the next run); a cascade's later, slower stages (full range) run
    #: every ``SEARCH_SLOWDOWN``-th interval. 0 = every frame. While faces are tracked, it is also the
    #: soonest the pipeline sweeps for a newcomer when the picture changed away from them
    #: (``core.shots.NewcomerWatch``), instead of waiting for the periodic sweep.
    search_delay: float = 0.1


@dataclass
class Track:
    """One followed face. ``landmarks`` are the raw model output; ``smoothed`` is what is shown,
    recorded and cropped from next."""

    track_id: int
    landmarks: np.ndarray
    smoothed: np.ndarray
    confidence: float
    smoother: Smoother
    lost_frames: int = 0
    crop_box: Box | None = None  # the landmark box the current tracking crop was made from
    uncertainty: np.ndarray | None = None  # per-point anchor spread of ``landmarks`` in image pixels

    def tracking_crop(self, threshold: float, input_size: int, margin: float) -> np.ndarray:
        """The crop for the next frame: the current one unless the smoothed box left the dead band."""
        box = landmark_box(self.smoothed)
        old = self.crop_box
        if old is None or max(abs(box.center[0] - old.center[0]), abs(box.center[1] - old.center[1]),
                              abs(box.size - old.size)) > threshold * old.size:
            self.crop_box = old = box
        return crop_from_box(old, input_size, margin)

    @property
    def box(self) -> Box:
        return landmark_box(self.landmarks)


@dataclass(frozen=True)
class CropRequest:
    """A face to run the model on this frame: an existing track or a new detection (``track_id`` None)."""

    track_id: int | None
    matrix: np.ndarray
    from_detection: bool
    #: A new face from this crop is followed only at this confidence or above, when it is higher than the
    #: tracker's own ``lost_confidence`` (a proposal of the landmark search: ``core.landmark_search``).
    start_confidence: float = 0.0


@dataclass
class Tracker:
    """Owns the tracks and the decision logic; the pipeline runs the detector and the model."""

    config: TrackerConfig
    make_smoother: Callable[[], Smoother]
    tracks: list[Track] = field(default_factory=list)
    frames_since_detection: int = 0
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def needs_detection(self) -> bool:
        """First frame / no face yet, a lost track, or the periodic sweep for new faces (every
        ``detection_interval`` frames: frames 0, N, 2N, … when nothing is lost)."""
        return (not self.tracks or any(t.lost_frames > 0 for t in self.tracks)
                or self.frames_since_detection + 1 >= self.config.detection_interval)

    def plan(self, detections: list[Box] | None, input_size: int, margin: float) -> list[CropRequest]:
        """Crops to run this frame. ``detections`` are calibrated (landmark-style) boxes, or None when
        the detector did not run. A lost track matched by a detection restarts from the detection."""
        if detections is None:
            self.frames_since_detection += 1
            return [CropRequest(t.track_id, t.tracking_crop(self.config.recrop_threshold, input_size, margin), False)
                    for t in self.tracks]
        self.frames_since_detection = 0
        requests: list[CropRequest] = []
        unmatched = sorted(detections, key=lambda b: -b.width * b.height)
        for track in self.tracks:
            match = max(unmatched, key=lambda b: b.iou(track.box), default=None)
            if match is not None and match.iou(track.box) >= self.config.match_iou:
                unmatched.remove(match)
                if track.lost_frames > 0:
                    requests.append(CropRequest(track.track_id, crop_from_box(match, input_size, margin), True))
                    continue
            requests.append(CropRequest(track.track_id,
                                        track.tracking_crop(self.config.recrop_threshold, input_size, margin), False))
        room = self.config.max_faces - len(self.tracks)
        requests += [CropRequest(None, crop_from_box(b, input_size, margin), True) for b in unmatched[:max(room, 0)]]
        return requests

    def update(self, request: CropRequest, landmarks: np.ndarray, confidence: float, timestamp: float,
               uncertainty: np.ndarray | None = None) -> Track | None:
        """Feed one model result back (``uncertainty``: per-point spread in image pixels, if the model has
        one); returns the track it updated or created (None if discarded).

        Non-finite output counts as a lost frame; a collapsed one (:func:`is_degenerate`) drops the
        track; a tracked face that jumped (:meth:`_jumped`) ends its track and starts a new one."""
        track = self._find(request.track_id)
        if not (np.isfinite(confidence) and np.isfinite(landmarks).all()):
            landmarks, confidence = track.landmarks if track else landmarks, 0.0
        elif is_degenerate(landmarks):
            if track is not None:
                self.tracks.remove(track)
            return None
        believed = self.accepts(landmarks, confidence)
        if track is not None and believed and not request.from_detection and self._jumped(track, landmarks):
            self.tracks.remove(track)
            track = None
        if track is None:
            if not believed or confidence < request.start_confidence:
                return None  # a detection the model does not believe is a face
            smoother = self.make_smoother()
            track = Track(next(self._ids), landmarks, smoother.update(landmarks, confidence, timestamp, uncertainty), confidence,
                          smoother, uncertainty=uncertainty)
            self.tracks.append(track)
            return track
        track.confidence = confidence
        if not believed:
            track.lost_frames += 1  # keep the last good landmarks; detection will look for the face
            return track
        if request.from_detection or track.lost_frames > 0:
            track.smoother.reset()  # a jump after re-detection must not be smoothed into a slide
        track.lost_frames = 0
        track.landmarks, track.uncertainty = landmarks, uncertainty
        track.smoothed = track.smoother.update(landmarks, confidence, timestamp, uncertainty)
        return track

    def accepts(self, landmarks: np.ndarray, confidence: float) -> bool:
        """Is this model output a face the tracker keeps (finite, not collapsed, confident enough)? The
        pipeline asks it to decide whether a detector cascade must try its next stage."""
        return bool(np.isfinite(confidence) and confidence >= self.config.lost_confidence
                    and np.isfinite(landmarks).all() and not is_degenerate(landmarks))

    def prune(self) -> None:
        """Drop tracks lost too long, the younger of two tracks that converged on one face, and the
        youngest beyond ``max_faces`` (after the setting was lowered while they were followed)."""
        self.tracks = [t for t in self.tracks if t.lost_frames <= self.config.max_lost_frames]
        keep: list[Track] = []
        for track in sorted(self.tracks, key=lambda t: t.track_id):
            if all(track.box.iou(k.box) < self.config.duplicate_iou for k in keep):
                keep.append(track)
        self.tracks = keep[:self.config.max_faces]

    def end_shot(self) -> None:
        """A shot cut: every face may be someone else now, so all tracks end (their ids are not reused)
        and the next frame detects afresh."""
        self.tracks.clear()
        self.frames_since_detection = 0

    def _jumped(self, track: Track, landmarks: np.ndarray) -> bool:
        """Did the face box move or resize in one frame by more than ``max_jump`` of its size?"""
        old, new = track.box, landmark_box(landmarks)
        shift = np.hypot(new.center[0] - old.center[0], new.center[1] - old.center[1]) / old.size
        return bool(max(shift, abs(np.log(new.size / old.size))) > self.config.max_jump)

    def _find(self, track_id: int | None) -> Track | None:
        return next((t for t in self.tracks if t.track_id == track_id), None)


def is_degenerate(landmarks: np.ndarray, min_size: float = MIN_FACE_PX) -> bool:
    """Landmarks collapsed to a few pixels (or with no extent): not a face, and poison for the pose fit."""
    box = landmark_box(landmarks)
    return not box.size >= min_size or min(box.width, box.height) <= 0


@dataclass
class SearchSchedule:
    """When each stage of the detector runs while nothing is tracked (``TrackerConfig.search_delay``).

    Stage k runs when ``search_delay · SEARCH_SLOWDOWN^k`` seconds have passed since its last run, so a
    faceless stretch costs a detection every few frames instead of every frame; :meth:`reset` (a new
    shot, a new source) makes every stage due at once."""

    delay: float
    stages: int
    _last: list[float | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._last = [None] * self.stages

    def due(self, timestamp: float) -> list[int]:
        """The stages whose interval has passed at ``timestamp`` (a timestamp going backwards, a seek,
        counts as passed)."""
        tolerance = 1e-6  # frame times like k / 30 do not add up exactly
        return [k for k, last in enumerate(self._last)
                if last is None or not 0 <= timestamp - last < self.delay * SEARCH_SLOWDOWN ** k - tolerance]

    def ran(self, stage: int, timestamp: float) -> None:
        self._last[stage] = timestamp
