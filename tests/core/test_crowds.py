"""A crowd: more faces than the tracker follows by default, some too small for short range.

The clip is ``tools.make_clips``' ``crowd_6.mp4`` (six shared clips in two rows of three). Short range
never finds one of its faces (the selfie panel's, about 50 px); full range finds it now and then, so it is
followed only when the sweep for new faces is widened to full range while faces are tracked."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from core.pipeline import FramePipeline, PipelineConfig
from core.runtime import load_model
from tools.make_clips import CROWD_ROWS, CROWD_SOURCES, make_side_by_side_clip, read_frames


@pytest.fixture(scope="module")
def crowd(shared_data: Path, tmp_path_factory) -> tuple[list[np.ndarray], float]:
    clip = make_side_by_side_clip([shared_data / "video" / name for name in CROWD_SOURCES],
                                  tmp_path_factory.mktemp("crowd") / "crowd_6.mp4", rows=CROWD_ROWS)
    return read_frames(clip)


def faces_followed(config: PipelineConfig, frames: list[np.ndarray], fps: float) -> list[int]:
    pipeline = FramePipeline(load_model(device="cpu", threads=1), config)
    counts = [len(pipeline.process(frame, index / fps).faces) for index, frame in enumerate(frames)]
    pipeline.close()
    return counts


@pytest.mark.slow
def test_a_crowd_is_followed_up_to_the_number_of_faces_asked_for(crowd: tuple[list[np.ndarray], float]) -> None:
    frames, fps = crowd
    assert max(faces_followed(PipelineConfig(), frames, fps)) == 4, "the default follows four"
    six = PipelineConfig(tracker=replace(PipelineConfig().tracker, max_faces=6))
    counts = faces_followed(six, frames, fps)
    assert max(counts) == 6, "the sixth face is one only full range finds"
    assert np.mean(counts) >= 5.0, f"faces per frame {np.mean(counts):.2f}"
