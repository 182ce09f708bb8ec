"""FramePipeline.reconfigure: which changes keep the faces being followed and which restart them,
on the shipped model and real frames."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from core.detection import HaarDetector
from core.pipeline import FramePipeline, PipelineConfig
from core.runtime import DEFAULT_MODEL_PATH, LandmarkModel
from core.smoothing import KalmanConfig, OneEuroConfig

pytestmark = pytest.mark.skipif(not Path(DEFAULT_MODEL_PATH).exists(), reason="default model not built")


class ClosableHaar(HaarDetector):
    """The real Haar detector, remembering whether the pipeline released it."""

    closed = False

    def close(self) -> None:
        self.closed = True


def tracking(model: LandmarkModel, frames: list[np.ndarray]) -> FramePipeline:
    """A pipeline following the clip's face, with a detector whose release can be seen."""
    pipeline = FramePipeline(model, PipelineConfig(detector="haar"), detector=ClosableHaar())
    for i, image in enumerate(frames[:4]):
        pipeline.process(image.copy(), i / 30)
    assert [t.track_id for t in pipeline.tracker.tracks] == [1]
    return pipeline


@pytest.mark.parametrize("change", [
    {"tracker": {"detection_interval": 3}}, {"tracker": {"search_delay": 0.5}}, {"tracker": {"max_faces": 8}},
    {"threshold": 0.3}, {"strategy": "argmax"}, {"estimate_pose": False},
    {"model_passes": 2},
    {"one_euro": OneEuroConfig(beta=3.0)},  # not the active smoother
])
def test_changes_that_keep_the_tracks(bundled_model, clip_frames, change: dict) -> None:
    pipeline = tracking(bundled_model, clip_frames)
    tracker, track = pipeline.tracker, pipeline.tracker.tracks[0]
    if "tracker" in change:
        config = replace(pipeline.config, tracker=replace(pipeline.config.tracker, **change["tracker"]))
    else:
        config = replace(pipeline.config, **change)
    pipeline.reconfigure(config)
    assert pipeline.tracker is tracker and pipeline.tracker.tracks[0] is track
    assert pipeline.tracker.config == config.tracker  # the new interval or delay is the one used from now on
    assert pipeline.schedule.delay == config.tracker.search_delay
    result = pipeline.process(clip_frames[4].copy(), 4 / 30)
    assert [f.track_id for f in result.faces] == [1]


@pytest.mark.parametrize("change", [
    {"kalman": KalmanConfig(measurement_noise=0.02)}, {"smoothing": "one-euro"},
    {"tracker_match_iou": 0.5},
])
def test_changes_that_restart_the_tracks(bundled_model, clip_frames, change: dict) -> None:
    pipeline = tracking(bundled_model, clip_frames)
    if "tracker_match_iou" in change:
        config = replace(pipeline.config, tracker=replace(pipeline.config.tracker, match_iou=0.5))
    else:
        config = replace(pipeline.config, **change)
    pipeline.reconfigure(config)
    assert pipeline.tracker.tracks == []
    result = pipeline.process(clip_frames[4].copy(), 4 / 30)
    assert [f.track_id for f in result.faces] == [1]  # found again by a fresh tracker


def test_a_new_detector_closes_the_old_one_and_keeps_the_tracks(bundled_model, clip_frames) -> None:
    pipeline = tracking(bundled_model, clip_frames)
    old, track = pipeline.detector, pipeline.tracker.tracks[0]
    pipeline.reconfigure(replace(pipeline.config, detector="auto"))
    assert old.closed and pipeline.detector is not old
    assert pipeline.tracker.tracks[0] is track
    pipeline.close()


def test_two_model_passes_run_the_mirrored_crop_and_average_close_to_one_pass(bundled_model, clip_frames) -> None:
    """Flip averaging costs exactly one more model call per batch and moves the points only by what
    the model's mirror-disagreement is (well under a pixel or two on a clear face)."""
    calls = []

    class Counting:
        info, provider = bundled_model.info, bundled_model.provider

        def run(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            calls.append(len(crops))
            return bundled_model.run(crops)

    results = {}
    for passes in (1, 2):
        calls.clear()
        pipeline = FramePipeline(Counting(), PipelineConfig(detector="haar", model_passes=passes,
                                                           smoothing="none"), detector=HaarDetector())
        for i, image in enumerate(clip_frames[:3]):
            result = pipeline.process(image.copy(), i / 30)
        results[passes] = (len(calls), result.faces[0].landmarks)
    assert results[2][0] == 2 * results[1][0]
    shift = np.linalg.norm(results[2][1] - results[1][1], axis=1)
    assert 0 < shift.mean() < 2.0
    with pytest.raises(ValueError, match="model passes"):
        PipelineConfig(model_passes=3)
