"""Tracker decisions without a model: when it detects, how it matches, when it forgets."""
from __future__ import annotations

import numpy as np

from core.geometry import Box, landmark_box
from core.smoothing import NoSmoother
from core.tracker import CropRequest, Tracker, TrackerConfig


def face_at(cx: float, cy: float, size: float = 100.0) -> np.ndarray:
    rng = np.random.default_rng(int(cx))
    return (rng.uniform(-0.5, 0.5, size=(68, 2)) * size + [cx, cy]).astype(np.float32)


def make_tracker(**kw: object) -> Tracker:
    return Tracker(TrackerConfig(**kw), NoSmoother)


def test_first_frame_detects_then_tracks_with_a_stable_id() -> None:
    tracker = make_tracker(detection_interval=5)
    assert tracker.needs_detection()
    face = face_at(200, 200)
    requests = tracker.plan([landmark_box(face)], 224, 1.5)
    assert len(requests) == 1 and requests[0].track_id is None and requests[0].from_detection
    track = tracker.update(requests[0], face, 0.9, 0.0)
    assert track.track_id == 1
    for step in range(4):
        assert not tracker.needs_detection()
        (req,) = tracker.plan(None, 224, 1.5)
        assert req.track_id == 1 and not req.from_detection
        tracker.update(req, face + step, 0.9, step / 30)
    assert tracker.needs_detection(), "the periodic sweep for new faces is due"


def test_detection_matching_keeps_ids_and_adds_new_faces() -> None:
    tracker = make_tracker()
    a, b = face_at(100, 100), face_at(400, 120)
    for req, face in zip(tracker.plan([landmark_box(a)], 224, 1.5), [a]):
        tracker.update(req, face, 0.9, 0.0)
    requests = tracker.plan([landmark_box(b), landmark_box(a + 3)], 224, 1.5)
    ids = [r.track_id for r in requests]
    assert ids.count(1) == 1 and ids.count(None) == 1
    for req in requests:
        tracker.update(req, a + 3 if req.track_id == 1 else b, 0.9, 0.1)
    assert sorted(t.track_id for t in tracker.tracks) == [1, 2]


def test_low_confidence_marks_lost_and_track_is_dropped_after_max_lost() -> None:
    tracker = make_tracker(max_lost_frames=2)
    face = face_at(200, 200)
    (req,) = tracker.plan([landmark_box(face)], 224, 1.5)
    tracker.update(req, face, 0.9, 0.0)
    for _ in range(3):
        (req,) = tracker.plan([] if tracker.needs_detection() else None, 224, 1.5)
        track = tracker.update(req, face + 50, 0.1, 0.1)
        np.testing.assert_array_equal(track.landmarks, face), "a lost track keeps its last good landmarks"
        tracker.prune()
    assert tracker.tracks == [], "dropped after staying lost longer than max_lost_frames"


def test_lost_track_recovers_from_a_matching_detection_with_the_same_id() -> None:
    tracker = make_tracker()
    face = face_at(200, 200)
    (req,) = tracker.plan([landmark_box(face)], 224, 1.5)
    tracker.update(req, face, 0.9, 0.0)
    (req,) = tracker.plan(None, 224, 1.5)
    tracker.update(req, face, 0.2, 0.03)
    assert tracker.needs_detection()
    (req,) = tracker.plan([landmark_box(face + 10)], 224, 1.5)
    assert req.track_id == 1 and req.from_detection
    tracker.update(req, face + 10, 0.9, 0.06)
    assert tracker.tracks[0].lost_frames == 0 and tracker.tracks[0].track_id == 1


def test_unconvincing_new_detection_is_discarded_and_duplicates_merge() -> None:
    tracker = make_tracker()
    face = face_at(200, 200)
    (req,) = tracker.plan([landmark_box(face)], 224, 1.5)
    assert tracker.update(req, face, 0.2, 0.0) is None and tracker.tracks == []
    (req,) = tracker.plan([landmark_box(face)], 224, 1.5)
    tracker.update(req, face, 0.9, 0.0)
    requests = tracker.plan([Box(500, 500, 600, 600)], 224, 1.5)
    for r in requests:
        tracker.update(r, face + 1, 0.9, 0.03)  # the "new" face converged onto the same one
    tracker.prune()
    assert [t.track_id for t in tracker.tracks] == [1]


def test_a_new_face_is_followed_only_at_its_requests_start_confidence() -> None:
    """A landmark-search proposal carries the search's own bar (0.6): at 0.55 the tracker, whose bar is
    0.5, still starts no track from it; a track it follows keeps the tracker's bar."""
    from dataclasses import replace

    tracker = make_tracker()
    face = face_at(200, 200)
    (req,) = tracker.plan([landmark_box(face)], 224, 1.5)
    assert tracker.update(replace(req, start_confidence=0.6), face, 0.55, 0.0) is None and tracker.tracks == []
    (req,) = tracker.plan([landmark_box(face)], 224, 1.5)
    track = tracker.update(replace(req, start_confidence=0.6), face, 0.65, 0.0)
    assert track is not None and track.lost_frames == 0
    (req,) = tracker.plan(None, 224, 1.5)
    assert tracker.update(req, face, 0.55, 0.03) is track and track.lost_frames == 0


def test_max_faces_caps_new_tracks() -> None:
    tracker = make_tracker(max_faces=2)
    boxes = [landmark_box(face_at(100 + 150 * i, 100)) for i in range(4)]
    assert len(tracker.plan(boxes, 224, 1.5)) == 2


def test_a_lowered_max_faces_ends_the_youngest_tracks() -> None:
    """The setting changes live (the pipeline keeps its tracker): the oldest faces stay followed."""
    tracker = make_tracker(max_faces=4)
    faces = [face_at(100 + 150 * i, 100) for i in range(3)]
    for req, face in zip(tracker.plan([landmark_box(f) for f in faces], 224, 1.5), faces):
        tracker.update(req, face, 0.9, 0.0)
    assert [t.track_id for t in tracker.tracks] == [1, 2, 3]
    tracker.config = TrackerConfig(max_faces=2)
    tracker.prune()
    assert [t.track_id for t in tracker.tracks] == [1, 2]


class ShiftingSmoother:
    """A stand-in filter whose output is visibly different from its input."""

    def update(self, landmarks: np.ndarray, confidence: float, t: float, uncertainty: np.ndarray | None = None) -> np.ndarray:
        return landmarks + 7.0

    def reset(self) -> None:
        pass


def test_tracking_crop_comes_from_the_smoothed_shape() -> None:
    """Cropping from the raw output would feed the model's noise back into the next crop."""
    from core.geometry import crop_from_landmarks

    tracker = Tracker(TrackerConfig(), ShiftingSmoother)
    face = face_at(200, 200)
    (req,) = tracker.plan([landmark_box(face)], 224, 1.5)
    track = tracker.update(req, face, 0.9, 0.0)
    (req,) = tracker.plan(None, 224, 1.5)
    np.testing.assert_allclose(req.matrix, crop_from_landmarks(track.smoothed, 224, 1.5))
    assert not np.allclose(req.matrix, crop_from_landmarks(track.landmarks, 224, 1.5))


def test_tracking_crop_stays_put_inside_the_dead_band_and_follows_beyond_it() -> None:
    tracker = make_tracker(recrop_threshold=0.02)
    face = face_at(200, 200)  # a ~100 px landmark box
    (req,) = tracker.plan([landmark_box(face)], 224, 1.5)
    tracker.update(req, face, 0.9, 0.0)
    (first,) = tracker.plan(None, 224, 1.5)
    tracker.update(first, face + 1.0, 0.9, 0.03)  # 1 % of the box: noise, the crop must not move
    (second,) = tracker.plan(None, 224, 1.5)
    np.testing.assert_array_equal(second.matrix, first.matrix)
    tracker.update(second, face + 5.0, 0.9, 0.06)  # 5 %: real motion, the crop follows
    (third,) = tracker.plan(None, 224, 1.5)
    assert not np.allclose(third.matrix, first.matrix)


def tracked(face: np.ndarray, **kw: object) -> Tracker:
    tracker = make_tracker(**kw)
    (req,) = tracker.plan([landmark_box(face)], 224, 1.5)
    tracker.update(req, face, 0.9, 0.0)
    return tracker


def test_a_face_box_jump_no_motion_makes_starts_a_new_track() -> None:
    face = face_at(200, 200)
    tracker = tracked(face)
    (req,) = tracker.plan(None, 224, 1.5)
    assert tracker.update(req, face + 4, 0.9, 0.04).track_id == 1, "real motion: 0.04 of the face size"
    (req,) = tracker.plan(None, 224, 1.5)
    assert tracker.update(req, face + 50, 0.9, 0.08).track_id == 2, "half a face in one frame: someone else"
    assert [t.track_id for t in tracker.tracks] == [2]
    (req,) = tracker.plan(None, 224, 1.5)
    centre = (face + 50).mean(axis=0)
    assert tracker.update(req, centre + (face + 50 - centre) * 1.6, 0.9, 0.12).track_id == 3, "60 % larger at once"


def test_a_collapsed_track_is_dropped() -> None:
    face = face_at(200, 200)
    tracker = tracked(face)
    (req,) = tracker.plan(None, 224, 1.5)
    centre = face.mean(axis=0)
    assert tracker.update(req, centre + (face - centre) * 0.05, 0.9, 0.04) is None
    assert tracker.tracks == [] and tracker.needs_detection()


def test_non_finite_output_is_a_lost_frame_that_keeps_the_last_good_landmarks() -> None:
    face = face_at(200, 200)
    tracker = tracked(face)
    (req,) = tracker.plan(None, 224, 1.5)
    track = tracker.update(req, np.full_like(face, np.nan), float("nan"), 0.04)
    assert track.lost_frames == 1 and np.isfinite(track.smoothed).all()
    np.testing.assert_array_equal(track.landmarks, face)
    (req,) = tracker.plan([], 224, 1.5)
    assert tracker.update(req, face, float("inf"), 0.08).lost_frames == 2
    assert tracker.update(CropRequest(None, req.matrix, True), np.full_like(face, np.nan), 0.9, 0.1) is None


def test_a_shot_cut_ends_every_track_and_ids_are_not_reused() -> None:
    face = face_at(200, 200)
    tracker = tracked(face)
    tracker.end_shot()
    assert tracker.tracks == [] and tracker.needs_detection()
    (req,) = tracker.plan([landmark_box(face)], 224, 1.5)
    assert tracker.update(req, face, 0.9, 0.04).track_id == 2
