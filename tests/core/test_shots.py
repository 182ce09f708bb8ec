"""Shot cuts on a real clip: the two shared clips one after the other, the second framed so its face
starts where the first one's face was — the case where a tracker would follow the face onto the other
person and keep its id."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from tools.make_clips import make_cut_clip, read_frames
from core.pipeline import FramePipeline, PipelineConfig
from core.runtime import DEFAULT_MODEL_PATH, LandmarkModel, load_model
from core.shots import CUT_THRESHOLD, ShotCutDetector

SHOT_FRAMES = 8


@pytest.fixture(scope="module")
def cut_clip(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    pytest.importorskip("mediapipe")
    videos = [shared_data / "video" / name for name in ("pyfeat_WolfgangLanger_Pexels.mp4", "pyfeat_single_face.mp4")]
    return make_cut_clip(videos, tmp_path_factory.mktemp("cut") / "cut.mp4", SHOT_FRAMES)


@pytest.fixture(scope="module")
def model() -> LandmarkModel:
    return load_model(DEFAULT_MODEL_PATH, "cpu", threads=1)


def ids_per_frame(model: LandmarkModel, clip: Path, config: PipelineConfig) -> list[set[int]]:
    frames, fps = read_frames(clip)
    pipeline = FramePipeline(model, config)
    return [{face.track_id for face in pipeline.process(frame, i / fps).faces} for i, frame in enumerate(frames)]


def test_the_cut_is_seen_and_only_the_cut(cut_clip: tuple[Path, int]) -> None:
    clip, first_after = cut_clip
    detector = ShotCutDetector()
    cuts = [i for i, frame in enumerate(read_frames(clip)[0]) if detector.is_cut(frame)]
    assert cuts == [first_after]


def test_a_cut_onto_another_person_starts_a_new_track(model: LandmarkModel, cut_clip: tuple[Path, int]) -> None:
    clip, first_after = cut_clip
    ids = ids_per_frame(model, clip, PipelineConfig(detector="short"))
    before, after = set().union(*ids[:first_after]), set().union(*ids[first_after:])
    assert len(before) == 1 and len(after) == 1 and before != after, ids
    assert all(ids), "a face on every frame of both shots"


def test_without_cut_detection_the_track_follows_the_other_person(model: LandmarkModel,
                                                                  cut_clip: tuple[Path, int]) -> None:
    """The failure the cut detector exists for, on the same clip: the box barely moves at this cut,
    so only the picture change tells the two people apart."""
    clip, _ = cut_clip
    config = PipelineConfig(detector="short")
    ids = ids_per_frame(model, clip, replace(config, tracker=replace(config.tracker, cut_threshold=0.0)))
    assert set().union(*ids) == {1}


def test_real_motion_stays_far_below_the_cut_threshold(shared_data: Path) -> None:
    for name in ("pyfeat_WolfgangLanger_Pexels.mp4", "pyfeat_single_face.mp4"):
        detector = ShotCutDetector()
        distances = [detector.distance(frame) for frame in read_frames(shared_data / "video" / name, 60)[0]]
        assert max(distances) < CUT_THRESHOLD / 3, name
