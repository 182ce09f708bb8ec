"""When the pipeline looks for faces, on the shipped model and real or honestly made clips:

* the ``auto`` cascade goes on to full range when no face is *accepted* by the landmark model, not only
  when short range returns no box (issue 23, item 1);
* while nothing is tracked the detector runs on a schedule from the frames' timestamps, and a face that
  appears is picked up within ``search_delay`` (item 3);
* while faces are tracked, one that comes in is picked up within about ``search_delay`` too, not at the
  next periodic sweep (item 4).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.detection import Detection, DetectorCascade, FaceDetector, MediaPipeDetector
from core.geometry import Box
from core.pipeline import FramePipeline, PipelineConfig
from core.runtime import DEFAULT_MODEL_PATH, LandmarkModel, load_model
from core.tracker import SEARCH_SLOWDOWN, SearchSchedule, TrackerConfig
from core.shots import NewcomerWatch
from tools.make_clips import FACELESS_PATTERN, make_faceless_clip, make_side_by_side_clip, read_frames

pytestmark = pytest.mark.skipif(not Path(DEFAULT_MODEL_PATH).exists(), reason="default model not built")

SOURCE = "pyfeat_single_face.mp4"  # 72 frames at 30 fps, one man at a webcam
#: The faceless clip's source: the close-up leaves a background band beside the face (the webcam clip's
#: band shows part of the man, and the tool refuses it); its first 2 s, at 23.98 fps.
FACELESS_SOURCE, FACELESS_FRAMES = "pyfeat_WolfgangLanger_Pexels.mp4", 48


class Counting:
    """A real detector, counting the frames it was run on (by frame index, set by the test)."""

    def __init__(self, detector: FaceDetector) -> None:
        self.detector, self.name = detector, detector.name
        self.frame = 0
        self.runs: list[int] = []

    def detect(self, frame_bgr: np.ndarray) -> list[Detection]:
        self.runs.append(self.frame)
        return self.detector.detect(frame_bgr)

    def close(self) -> None:
        self.detector.close()


class FalseFace:
    """Reports a face in the top-left corner of every frame, where the clips show only background: what
    short range does on a crowd or a stage (boxes the landmark model then rejects). Named as short range,
    so its box is calibrated as short range's would be."""

    name = "mediapipe"

    def detect(self, frame_bgr: np.ndarray) -> list[Detection]:
        return [Detection(Box(4.0, 4.0, 84.0, 84.0), 0.9, self.name)]


@pytest.fixture(scope="module")
def model() -> LandmarkModel:
    return load_model(DEFAULT_MODEL_PATH, device="cpu")


@pytest.fixture(scope="module")
def clip_frames(shared_data: Path) -> tuple[list[np.ndarray], float]:
    return read_frames(shared_data / "video" / SOURCE, 12)


#: Two panels: a face from the start (30 fps) and one that comes in after ``ENTERS`` seconds (frame 36),
#: between two periodic sweeps (every 10 frames: 30 and 40).
STAGGERED_SOURCES, ENTERS = ("liveportrait_d3_expressions.mp4", "pyfeat_WolfgangLanger_Pexels.mp4"), 1.2


@pytest.fixture(scope="module")
def staggered(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[list[np.ndarray], float, int]:
    """The made clip: two faces side by side, the second coming in (no cut); its frames, fps and the
    first frame of the second face."""
    path = make_side_by_side_clip([shared_data / "video" / n for n in STAGGERED_SOURCES],
                                  tmp_path_factory.mktemp("made") / "staggered.mp4", 60, stagger=ENTERS)
    frames, fps = read_frames(path)
    return frames, fps, int(np.ceil(ENTERS * fps))


@pytest.fixture(scope="module")
def faceless(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[list[np.ndarray], float, int]:
    """The made clip: background, half the clip, background, half, background; returns its frames, fps
    and the index of the first frame of the clip's first half."""
    path, _ = make_faceless_clip(shared_data / "video" / FACELESS_SOURCE, tmp_path_factory.mktemp("made") / "faceless.mp4",
                                 FACELESS_FRAMES)
    frames, fps = read_frames(path)
    return frames, fps, round(FACELESS_PATTERN[0] * fps)


def run(pipeline: FramePipeline, frames: list[np.ndarray], fps: float, *counters: Counting) -> list[int]:
    """Faces per frame."""
    counts = []
    for index, frame in enumerate(frames):
        for counter in counters:
            counter.frame = index
        counts.append(len(pipeline.process(frame, index / fps).faces))
    return counts


def test_full_range_runs_when_short_range_boxes_are_all_rejected(model, clip_frames) -> None:
    """Short range returns a box (a false one) on every frame: the old cascade never tried full range and
    found no face; now the model's rejection sends the frame on to full range, which finds the man."""
    frames, fps = clip_frames
    full = Counting(MediaPipeDetector(full_range=True))
    pipeline = FramePipeline(model, PipelineConfig(detector="auto"), detector=DetectorCascade(FalseFace(), full))
    counts = run(pipeline, frames, fps, full)
    assert counts[0] == 1 and all(c == 1 for c in counts)
    assert pipeline.tracker.tracks[0].box.iou(Box(4.0, 4.0, 84.0, 84.0)) == 0.0
    assert full.runs[0] == 0
    pipeline.close()


def test_full_range_does_not_run_while_short_range_faces_are_accepted(model, clip_frames) -> None:
    frames, fps = clip_frames
    short, full = Counting(MediaPipeDetector()), Counting(MediaPipeDetector(full_range=True))
    pipeline = FramePipeline(model, PipelineConfig(detector="auto"), detector=DetectorCascade(short, full))
    assert all(c == 1 for c in run(pipeline, frames, fps, short, full))
    assert short.runs and full.runs == []
    pipeline.close()


@pytest.mark.slow
def test_faceless_stretch_is_searched_on_a_schedule_and_a_face_is_found_within_the_delay(model, faceless) -> None:
    """The face enters at a cut, where the pipeline would search at once (a new shot); with the cut check
    off, the pick-up within ``search_delay`` comes from the schedule alone. The clip starts 2 frames in,
    so the face appears just after a search (every 3rd frame at 23.98 fps): the worst case."""
    frames, fps, face_from = faceless
    frames, face_from = frames[2:], face_from - 2
    config = PipelineConfig(detector="auto", tracker=TrackerConfig(cut_threshold=0.0))
    delay = config.tracker.search_delay
    short, full = Counting(MediaPipeDetector()), Counting(MediaPipeDetector(full_range=True))
    pipeline = FramePipeline(model, config, detector=DetectorCascade(short, full))
    counts = run(pipeline, frames, fps, short, full)
    assert not any(counts[:face_from]), "the made background must be faceless"
    first_face = next(k for k in range(face_from, len(frames)) if counts[k])
    assert 0 < (first_face - face_from) / fps <= delay
    stretch = [k for k in short.runs if k < face_from]
    assert len(stretch) <= np.ceil(face_from / round(delay * fps)) + 1  # every 3rd frame at 30 fps, not all
    assert np.diff(stretch).min() >= round(delay * fps)
    assert len([k for k in full.runs if k < face_from]) <= np.ceil(face_from / round(SEARCH_SLOWDOWN * delay * fps)) + 1
    pipeline.close()


def test_search_delay_zero_searches_every_faceless_frame(model, faceless) -> None:
    frames, fps, face_from = faceless
    short = Counting(MediaPipeDetector())
    pipeline = FramePipeline(model, PipelineConfig(detector="short", tracker=TrackerConfig(search_delay=0.0)),
                             detector=short)
    run(pipeline, frames[:face_from], fps, short)
    assert short.runs == list(range(face_from))
    pipeline.close()


def test_schedule_follows_timestamps_and_restarts() -> None:
    schedule = SearchSchedule(0.1, 2)
    assert schedule.due(0.0) == [0, 1]
    schedule.ran(0, 0.0), schedule.ran(1, 0.0)
    assert schedule.due(1 / 30) == [] and schedule.due(2 / 30) == []
    assert schedule.due(3 / 30) == [0]  # 0.1 s at 30 fps: every 3rd frame
    assert schedule.due(0.3) == [0, 1]
    assert schedule.due(-1.0) == [0, 1]  # a seek back
    schedule.reset()
    assert schedule.due(0.01) == [0, 1]



@pytest.mark.slow
def test_a_face_coming_in_is_picked_up_within_the_search_delay_not_at_the_next_sweep(model, staggered) -> None:
    frames, fps, enters = staggered
    config = PipelineConfig(detector="short")
    pipeline = FramePipeline(model, config)
    counts = run(pipeline, frames, fps)
    assert counts[:enters] == [1] * enters, "the second panel must show only background before it comes in"
    found = next(k for k in range(enters, len(frames)) if counts[k] == 2)
    interval = config.tracker.detection_interval
    assert (found - enters) / fps <= config.tracker.search_delay < (-enters % interval) / fps  # sweep: frame 40
    pipeline.close()


def test_newcomer_watch_ignores_the_tracked_faces_surroundings_and_sees_a_face_come_in(staggered) -> None:
    frames, _, enters = staggered
    first = MediaPipeDetector()
    (face,) = first.detect(frames[0])
    first.close()
    watch, sensitive = NewcomerWatch(), NewcomerWatch(fraction=0.005)
    for w in (watch, sensitive):
        w.seen(frames[0])
    assert not watch.changed(frames[enters - 2], [face.box])  # her expressions, in her own panel
    assert not sensitive.changed(frames[enters - 2], [face.box])
    assert sensitive.changed(frames[enters - 2], [])  # without leaving her out, they count
    assert watch.changed(frames[enters + 2], [face.box])  # the second face came in
