"""Issue 23 item 2, profiles: a track survives a turn to profile and back, a face that first appears in
profile is found within 1 s, and the landmark search that finds it sees no face where there is none.

The clips are made from the shared MERL-RAV photos by ``tools.make_clips`` (its docstring says how): no
shared video turns further than about 20° of yaw."""
from __future__ import annotations

from pathlib import Path

import pytest

from core.landmark_search import LandmarkSearch
from core.pipeline import FramePipeline, PipelineConfig
from core.runtime import load_model
from tools.make_clips import (FACELESS_SOURCES, PROFILE_FADE, PROFILE_SECONDS, faceless_layout, make_faceless_clip,
                              make_profile_clip, make_turn_clip, profile_onsets, read_frames)


@pytest.fixture(scope="module")
def model():
    return load_model(device="cpu", threads=1)


@pytest.fixture(scope="module")
def clips(shared_data: Path, tmp_path_factory) -> tuple[Path, int]:
    """The made clips' folder and the number of faces in ``profile_start.mp4``."""
    folder = tmp_path_factory.mktemp("profiles")
    make_turn_clip(shared_data, folder / "turn.mp4")
    _, profiles = make_profile_clip(shared_data, folder / "profile_start.mp4")
    make_faceless_clip(shared_data / "video" / FACELESS_SOURCES[0], folder / "faceless.mp4", 48)
    return folder, profiles


def faces_per_frame(model, path: Path, config: PipelineConfig = PipelineConfig()) -> tuple[list[bool], float]:
    frames, fps = read_frames(path)
    pipeline = FramePipeline(model, config)
    found = [bool(pipeline.process(frame, index / fps).faces) for index, frame in enumerate(frames)]
    pipeline.close()
    return found, fps


def test_a_track_survives_a_turn_to_profile_and_back(model, clips) -> None:
    found, _ = faces_per_frame(model, clips[0] / "turn.mp4")
    assert sum(found) >= 0.9 * len(found)


def test_every_face_that_first_appears_in_profile_is_found_within_one_second(model, clips) -> None:
    """Each face fades in over a faceless gap; the delay counts from the first frame of the fade. Without
    the landmark search one face took 1.13 s with ``auto`` and four were never found with ``--detector
    short`` (benchmarks/RESULTS.md)."""
    folder, profiles = clips
    found, fps = faces_per_frame(model, folder / "profile_start.mp4")
    late = []
    for onset in profile_onsets(profiles):
        start = round(onset * fps)
        first = next((k for k in range(start, round((onset + PROFILE_FADE + PROFILE_SECONDS) * fps)) if found[k]), None)
        if first is None or first - start > fps:
            late.append((onset, first))
    assert not late, f"faces not found within 1 s: (onset s, first frame) {late}"


@pytest.mark.parametrize("source", FACELESS_SOURCES)
def test_no_face_is_reported_on_a_faceless_stretch(model, shared_data: Path, tmp_path: Path, source: str) -> None:
    """The whole pipeline (both detectors, the landmark search, the tracker) with the model the CPU runs
    by default reports no face on any background frame of each made faceless clip. The search alone may
    propose a background crop — its refined score reached 0.64 on these backgrounds with the fp32 model
    and 0.65 with INT8, above its 0.6 — and the crop the pipeline then takes from it must reach 0.6 too,
    not only the tracker's 0.5: with the tracker's bar alone the fp32 file followed a blurred shelf of the
    webcam clip at 0.508 and the INT8 file re-exported on whole-pixel crops at 0.505–0.535 (frames
    150–153), while every profile the search finds on the made profile-start clip reaches 0.65 there.
    An INT8 calibration that kept a false face on 28 of 120 background frames of the Pexels clip failed
    here before that."""
    path, faceless = make_faceless_clip(shared_data / "video" / source, tmp_path / "faceless.mp4", 240)
    frames, fps = read_frames(path)
    background = [flag for flag, count in faceless_layout(len(frames) - faceless, fps) for _ in range(count)]
    assert len(background) == len(frames)
    pipeline = FramePipeline(model, PipelineConfig())
    false = [index for index, frame in enumerate(frames)
             if pipeline.process(frame, index / fps).faces and background[index]]
    pipeline.close()
    assert not false, f"faces reported on background frames {false}"


def test_the_landmark_search_runs_only_the_crops_whose_picture_changed(model, clips, monkeypatch) -> None:
    """On one faceless picture the search runs its grid once (it would find nothing there again); when
    the left third of the picture changes, it runs again, and only the crops over that third."""
    frames, fps = read_frames(clips[0] / "faceless.mp4")
    background = frames[0]
    height, width = background.shape[:2]
    grid = LandmarkSearch(model).grid(width, height)
    batches: list[int] = []
    best_face = LandmarkSearch._best_face
    monkeypatch.setattr(LandmarkSearch, "_best_face",
                        lambda self, frame, boxes: batches.append(len(boxes)) or best_face(self, frame, boxes))
    pipeline = FramePipeline(model, PipelineConfig())
    for index in range(90):  # 3 s at 30 fps: three search intervals
        pipeline.process(background, index / 30)
    assert batches[0] == len(grid) and batches[1:] in ([], [1])  # the grid, and maybe its best crop refined
    first = len(batches)
    changed = background.copy()
    changed[:, : width // 3] = 255 - changed[:, : width // 3]
    for index in range(90, 120):
        pipeline.process(changed, index / 30)
    pipeline.close()
    margin, cell = model.info.crop_margin, width / 80  # crops reaching into the left third, to a watch cell
    reaching = [b.center[0] - margin * b.width / 2 < width / 3 - cell for b in grid]
    touching = [b.center[0] - margin * b.width / 2 < width / 3 + cell for b in grid]
    assert batches[first + 1:] in ([], [1]), "one search on the changed picture"
    assert sum(reaching) <= batches[first] <= sum(touching) < len(grid)
