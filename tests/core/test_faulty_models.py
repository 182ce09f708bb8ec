"""Models that go wrong at run time, on real video: the loop must go on, never crash."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from tools.make_clips import read_frames, write_clip
from core.pipeline import FramePipeline, PipelineConfig
from core.runtime import load_model
from main import main
from tests.helpers_faulty_onnx import make_bright_nan_model, make_collapsing_model

FRAMES = 12


@pytest.fixture(scope="module")
def frames(shared_data: Path) -> list[np.ndarray]:
    pytest.importorskip("mediapipe")
    return read_frames(shared_data / "video" / "pyfeat_single_face.mp4", FRAMES)[0]


def test_collapsing_landmarks_do_not_end_the_headless_run(frames: list[np.ndarray], tmp_path: Path, capsys) -> None:
    """Before: the collapsed track reached solvePnP, cv2.error ended the run. Now the track is dropped
    as degenerate and every frame is processed (no face is reported: there is none in the output)."""
    clip = write_clip(tmp_path / "clip.mp4", frames, 30.0)
    model = make_collapsing_model(tmp_path / "collapsing.onnx")
    csv = tmp_path / "out.csv"
    assert main(["--source", str(clip), "--headless", "--model", str(model), "--landmarks", str(csv)]) == 0
    assert "Traceback" not in capsys.readouterr().err
    assert csv.read_text(encoding="utf-8").count("\n") >= 1


def test_per_frame_non_finite_output_is_a_lost_frame_and_tracking_resumes(frames: list[np.ndarray],
                                                                          tmp_path: Path) -> None:
    model = load_model(make_bright_nan_model(tmp_path / "bright_nan.onnx"), "cpu", threads=1)
    pipeline = FramePipeline(model, PipelineConfig(detector="short"))
    glare = [cv2.convertScaleAbs(f, alpha=4.0) for f in frames[4:8]]  # crops past the model's NaN limit
    sequence = frames[:4] + glare + frames[8:]
    faces = [pipeline.process(frame, i / 30).faces for i, frame in enumerate(sequence)]
    assert all(faces[:4]) and not any(faces[4:8]), "faces before the glare, none during it"
    assert any(faces[8:]), "found again after the glare"
    for frame_faces in faces:
        for face in frame_faces:
            assert np.isfinite(face.landmarks).all()
