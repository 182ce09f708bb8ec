"""Models that go wrong at run time, on real video: the loop must go on, never crash."""
from __future__ import annotations

import json
import re
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import pytest

from core.runtime.contract import ModelError
from tools.make_clips import read_frames, write_clip
from core.pipeline import FramePipeline, PipelineConfig
from core.runtime import load_model
from core.runtime.verify import PIPELINE_BATCH_SIZES, probe_batch
from core.runtime.contract import INPUT_NAME
from core.tracker import TrackerConfig
from main import main
from tests.helpers_faulty_onnx import make_batch_one_nan_model, make_bright_nan_model, make_collapsing_model

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


def test_nan_only_at_batch_size_one_is_refused_at_load(tmp_path: Path) -> None:
    """Before: the load check ran one batch of 2, which this model passes, and a one-face video then
    gave 0 faces with no word. Now every batch size the pipeline uses (1 to the tracker's face limit)
    is probed, and the file is refused naming the size."""
    path = make_batch_one_nan_model(tmp_path / "batch_one_nan.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert all(np.isfinite(v).all() for v in session.run(None, {INPUT_NAME: probe_batch(224, 2)})), \
        "finite at batch 2: the old probe passed it"
    assert not np.isfinite(session.run(None, {INPUT_NAME: probe_batch(224, 1)})[0]).all()
    assert PIPELINE_BATCH_SIZES == tuple(range(1, TrackerConfig().max_faces + 1))
    with pytest.raises(ModelError, match="not finite .* at batch size 1, the pipeline's batch for 1 face"):
        load_model(path, "cpu", threads=1)


def test_frames_with_non_finite_output_are_counted_in_the_summary_and_the_sidecar(frames: list[np.ndarray],
                                                                                   tmp_path: Path, capsys) -> None:
    """A model that loads (finite on the probe) but gives NaN on glare frames: the run goes on, and the
    summary and the sidecar say on how many frames the model output was not finite."""
    glare = [cv2.convertScaleAbs(f, alpha=4.0) for f in frames[4:8]]
    clip = write_clip(tmp_path / "glare.mp4", frames[:4] + glare + frames[8:], 30.0)
    model = make_bright_nan_model(tmp_path / "bright_nan.onnx")
    csv = tmp_path / "out.csv"
    assert main(["--source", str(clip), "--headless", "--model", str(model), "--landmarks", str(csv),
                 "--detector", "short"]) == 0
    found = re.search(r"model output not finite \(NaN or inf\) on (\d+) of (\d+) frames", capsys.readouterr().out)
    assert found, "the summary names the frames"
    count = int(found.group(1))
    assert 1 <= count <= len(glare) and int(found.group(2)) == FRAMES
    assert json.loads(csv.with_suffix(".json").read_text())["recording"]["non_finite_frames"] == count
