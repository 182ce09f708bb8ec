"""A crowd: more faces than the tracker follows by default, some too small for short range.

The clip is ``tools.make_clips``' ``crowd_6.mp4`` (six shared clips in two rows of three). Short range on
the whole frame finds one of its faces (the selfie panel's, about 50 px) on one frame in 176, full range
on a third of them, short range on one half of the frame (``core.detection.TileSweep``) on every one; the
widened sweep for new faces while faces are tracked tries the half, so that face is followed."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from benchmarks.peers import FaceMeshPeer
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
    assert max(counts) == 6, "the sixth face is one short range finds only on half the frame"
    assert counts.index(6) <= fps, f"all six followed only from frame {counts.index(6)}"
    mesh = FaceMeshPeer(max_faces=6)
    theirs = [len(mesh.faces(frame)) for frame in frames]
    mesh.close()
    assert np.mean(counts) >= np.mean(theirs), (f"faces per frame {np.mean(counts):.2f}, "
                                                f"Face Mesh at six {np.mean(theirs):.2f}")
