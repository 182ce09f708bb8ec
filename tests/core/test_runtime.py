"""core.runtime: contract validation, provider choice and inference on real ONNX Runtime sessions.

Models are tiny generated graphs (tests/helpers_onnx.py), so these tests never wait for training.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto

from core.anchors import anchor_area, anchor_grid
from core.decode import aggregate
from core.geometry import INPUT_SIZES
from core.runtime import DEFAULT_MODEL_PATH, DeviceError, LandmarkModel, ModelError, load_model
from core.runtime.providers import cuda_unavailable_reason
from core.runtime.model_input import to_model_input
from core.runtime.threads import (MAX_THREADS, AdaptiveSession, ThreadTrial, physical_cores, session_options,
                                  thread_candidates)
from tests.helpers_onnx import expected_outputs, make_model
from main import main


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_model(tmp_path_factory.mktemp("models") / "tiny.onnx")


@pytest.fixture(scope="module")
def model(model_path: Path) -> LandmarkModel:
    return load_model(model_path, device="cpu")


def random_crops(n: int, seed: int = 0, size: int = 224) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, size, size, 3), dtype=np.uint8)


def test_conforming_model_loads_with_its_metadata(model: LandmarkModel, model_path: Path) -> None:
    info = model.info
    assert info.path == model_path
    assert (info.name, info.model_type, info.scheme, info.format_version) == ("tiny-test-model", "anchorface",
                                                                              "ibug68", "1")
    assert (info.input_size, info.num_templates, info.grid, info.num_anchors, info.num_points) == (224, 2, 2, 8, 68)
    assert info.crop_margin == 1.5 and info.anchor_area == 56.0 and info.val_nme == pytest.approx(0.048)
    assert model.scheme.num_points == 68 and model.input_size == 224
    assert model.provider == "CPU"


def test_auto_device_reports_the_provider_really_used(model_path: Path) -> None:
    loaded = load_model(model_path, device="auto")
    assert loaded.provider in ("CPU", "CUDA", "TensorRT")
    if cuda_unavailable_reason() is not None:
        assert loaded.provider == "CPU"
    assert loaded.session.get_providers()[0].startswith(
        {"CPU": "CPU", "CUDA": "CUDA", "TensorRT": "Tensorrt"}[loaded.provider])


def test_cuda_requested_without_cuda_is_a_device_problem(model_path: Path, shared_data: Path, capsys) -> None:
    if cuda_unavailable_reason() is None:
        pytest.skip("CUDA works on this machine")
    with pytest.raises(DeviceError, match="CUDA requested but not available: "):
        load_model(model_path, device="cuda")
    clip = shared_data / "video" / "pyfeat_single_face.mp4"
    assert main(["--source", str(clip), "--headless", "--model", str(model_path), "--device", "cuda"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: device problem: CUDA requested but not available")


def test_unknown_device_is_rejected(model_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown device 'gpu'"):
        load_model(model_path, device="gpu")


def test_thread_candidates_are_one_and_all_cores_but_one_unless_fixed() -> None:
    assert 1 <= physical_cores() <= (os.cpu_count() or 1)
    most = min(physical_cores() - 1, MAX_THREADS)
    assert thread_candidates() == ((1,) if most <= 1 else (1, most))
    assert thread_candidates(3) == (3,)


def test_a_fixed_thread_count_is_one_session_without_spinning(model_path: Path) -> None:
    fixed = load_model(model_path, device="cpu", threads=1)
    options = fixed.session.get_session_options()
    assert options.intra_op_num_threads == 1 and fixed.threads == 1 and fixed.runner.candidates == (1,)
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"


def test_trial_keeps_the_candidate_measured_faster_and_measures_again() -> None:
    trial = ThreadTrial(2, start=4, trial=3, every=20)
    cost = {0: 2.0, 1: 1.0}  # seconds per crop of each candidate: the second is faster at first
    used = []
    for run in range(60):
        if run == 20:
            cost = {0: 1.0, 1: 3.0}  # load arrives: one thread is faster now (seen at the next trial)
        candidate = trial.next_candidate(ready=2)
        used.append(candidate)
        trial.record(candidate, cost[candidate], ready=2)
    assert used[:4] == [0] * 4, "the first runs stay on the first session"
    assert used[4:10] == [0, 1] * 3, "a trial alternates the candidates"
    assert set(used[10:24]) == {1}, "the faster one wins until the next trial"
    assert used[24:30] == [0, 1] * 3 and set(used[30:44]) == {0}, "the next trial follows the change"


def test_trial_waits_for_the_background_sessions() -> None:
    trial = ThreadTrial(2, start=2, trial=2, every=10)
    for _ in range(8):
        candidate = trial.next_candidate(ready=1)
        assert candidate == 0
        trial.record(candidate, 1.0, ready=1)


def test_adaptive_session_builds_the_other_sessions_and_never_changes_an_output(model_path: Path) -> None:
    """Two candidates whatever this machine's core count (load_model offers them with more than 2 cores)."""
    def build(threads: int) -> ort.InferenceSession:
        return ort.InferenceSession(str(model_path), sess_options=session_options(threads),
                                    providers=["CPUExecutionProvider"])

    adaptive = AdaptiveSession(build(1), (1, 2), build, ThreadTrial(2, start=5, trial=2, every=20))
    batch = to_model_input(random_crops(2, seed=3))
    first = adaptive.run(None, {"image": batch}, 2)
    for _ in range(5):
        adaptive.run(None, {"image": batch}, 2)
    adaptive.wait_for_candidates(timeout=60)
    assert [s.get_session_options().intra_op_num_threads for s in adaptive.sessions] == [1, 2]
    for _ in range(40):  # two trials and what follows each
        landmarks, confidence = adaptive.run(None, {"image": batch}, 2)
        np.testing.assert_array_equal(landmarks, first[0])
        np.testing.assert_array_equal(confidence, first[1])
    assert adaptive.threads in (1, 2) and adaptive.current is adaptive.sessions[adaptive.trial.best]


def test_batch_of_three_crops_gives_the_graph_values_in_rgb_order(model: LandmarkModel) -> None:
    crops = random_crops(3)
    crops[1] = 0
    crops[1, ..., 0] = 255  # pure blue in BGR: only the heaviest RGB weight (B) may see it
    landmarks, confidence = model.run(crops)
    assert landmarks.shape == (3, 8, 68, 2) and confidence.shape == (3, 8)
    assert landmarks.dtype == np.float32 and confidence.dtype == np.float32
    rgb = crops[..., ::-1].transpose(0, 3, 1, 2).astype(np.float32) / 255.0
    want_landmarks, want_confidence = expected_outputs(rgb, 8, 68)
    np.testing.assert_allclose(landmarks, want_landmarks, atol=1e-3)
    np.testing.assert_allclose(confidence, want_confidence, atol=1e-5)
    assert not np.allclose(landmarks[0], landmarks[1])  # outputs depend on each face's own crop


def test_preprocess_is_bgr_to_rgb_scaled_nchw(model: LandmarkModel) -> None:
    crops = random_crops(2, seed=1)
    batch = model.preprocess(crops)
    assert batch.shape == (2, 3, 224, 224) and batch.dtype == np.float32 and batch.flags.c_contiguous
    np.testing.assert_allclose(batch[1, 0], crops[1, ..., 2] / 255.0, rtol=1e-6)  # R from BGR's last channel
    np.testing.assert_allclose(batch[0, 2], crops[0, ..., 0] / 255.0, rtol=1e-6)


def test_predict_aggregates_the_run(model: LandmarkModel) -> None:
    crops = random_crops(2, seed=2)
    result = model.predict(crops, strategy="argmax")
    want = aggregate(*model.run(crops), strategy="argmax")
    assert result.landmarks.shape == (2, 68, 2) and result.confidence.shape == (2,)
    np.testing.assert_array_equal(result.landmarks, want.landmarks)


def test_empty_batch_returns_empty_outputs(model: LandmarkModel) -> None:
    landmarks, confidence = model.run(np.zeros((0, 224, 224, 3), np.uint8))
    assert landmarks.shape == (0, 8, 68, 2) and confidence.shape == (0, 8)


@pytest.mark.parametrize("crops", [np.zeros((1, 224, 224, 3), np.float32), np.zeros((1, 112, 112, 3), np.uint8),
                                   np.zeros((224, 224, 3), np.uint8)])
def test_wrong_crops_are_rejected(model: LandmarkModel, crops: np.ndarray) -> None:
    with pytest.raises(ValueError, match=r"crops must be uint8 BGR \[N, 224, 224, 3\]"):
        model.run(crops)


def test_direct_regression_model_with_one_anchor_loads(tmp_path: Path) -> None:
    path = make_model(tmp_path / "direct.onnx", num_templates=1, grid=1, metadata={"model_type": "direct"})
    loaded = load_model(path, device="cpu")
    assert loaded.info.num_anchors == 1
    assert loaded.predict(random_crops(1)).landmarks.shape == (1, 68, 2)


def test_symbolic_output_dims_are_resolved_by_a_probe_run(tmp_path: Path) -> None:
    """torch's exporter often declares M and L as names; the loader still learns and checks them."""
    loaded = load_model(make_model(tmp_path / "symbolic.onnx", symbolic_outputs=True), device="cpu")
    assert (loaded.info.num_anchors, loaded.info.num_points) == (8, 68)
    with pytest.raises(ModelError, match="L=67 landmarks but scheme ibug68 has 68"):
        load_model(make_model(tmp_path / "symbolic67.onnx", symbolic_outputs=True, num_points=67), device="cpu")


def test_empty_val_nme_means_unknown(tmp_path: Path) -> None:
    assert load_model(make_model(tmp_path / "m.onnx", metadata={"val_nme": ""}), device="cpu").info.val_nme is None


BAD_MODELS = {
    "missing_keys": (dict(drop_keys=("scheme", "val_nme")), r"lack required key\(s\) scheme, val_nme"),
    "wrong_input_size": (dict(input_shape=["N", 3, 112, 112]),
                         r"input 'image' must be \[N, 3, 224, 224\] .*it is \['N', 3, 112, 112\]"),
    "wrong_input_name": (dict(input_name="input"), r"exactly one input named 'image', it has \['input'\]"),
    "wrong_input_rank": (dict(input_shape=["N", 3, 224]), r"\(rank 3\)"),
    "wrong_input_dtype": (dict(input_type=TensorProto.UINT8), r"input 'image' must be float32, it is tensor\(uint8\)"),
    "missing_output": (dict(outputs=("anchor_landmarks",)), r"output\(s\) anchor_confidence missing"),
    "wrong_output_shape": (dict(confidence_trailing_dim=True),
                           r"'anchor_confidence' must be \[N, M\], it is \['N', 8, 1\]"),
    "logits_not_confidence": (dict(sigmoid=False), r"must lie in \(0, 1\), the probe crops gave values from -2 to 2.64"),
    "nan_everywhere": (dict(nan_on="all"), r"not finite on a real face crop: NaN or inf in anchor_landmarks "
                                           r"\(2176 of 2176 values\)"),
    "nan_on_real_faces_only": (dict(nan_on="real"), r"not finite on a real face crop: NaN or inf in "
                                                    r"anchor_landmarks \(1088 of 2176 values\)"),
    "unknown_scheme": (dict(metadata={"scheme": "foo68"}), r"scheme 'foo68' is unknown \(known: ibug68, wflw98\)"),
    "unsupported_format": (dict(metadata={"anchorface_format": "2"}), r"anchorface_format '2' is not supported"),
    "points_vs_scheme": (dict(num_points=67), r"L=67 landmarks but scheme ibug68 has 68"),
    "anchors_vs_metadata": (dict(metadata={"num_templates": "24"}), r"M=8 anchors but .* = 96"),
    "direct_with_grid": (dict(metadata={"model_type": "direct"}), r"a direct model has num_templates=1 and grid=1"),
    "bad_number": (dict(metadata={"crop_margin": "wide"}), r"crop_margin='wide' is not a number"),
    "old_opset": (dict(opset=16), r"opset 16; the model contract needs opset >= 17"),
}


@pytest.mark.parametrize("case", sorted(BAD_MODELS))
def test_contract_violations_are_named(tmp_path: Path, case: str) -> None:
    kwargs, message = BAD_MODELS[case]
    path = make_model(tmp_path / f"{case}.onnx", **kwargs)
    with pytest.raises(ModelError, match=message):
        load_model(path, device="cpu")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="model file not found: .*nothere.onnx"):
        load_model(tmp_path / "nothere.onnx")


def test_text_file_renamed_onnx_is_not_onnx(tmp_path: Path) -> None:
    path = tmp_path / "notes.onnx"
    path.write_text("this is a text file, not a model\n")
    with pytest.raises(ModelError, match=r"notes.onnx is not an ONNX model \(it starts with b'this is a te'"):
        load_model(path)


def test_jpeg_renamed_onnx_is_not_onnx(tmp_path: Path) -> None:
    path = tmp_path / "photo.onnx"
    path.write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(200))
    with pytest.raises(ModelError, match="photo.onnx is not an ONNX model"):
        load_model(path)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.onnx"
    path.write_bytes(b"")
    with pytest.raises(ModelError, match=r"empty \(0 bytes\)"):
        load_model(path)


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9, 0.99])
def test_truncated_copy_is_rejected(model_path: Path, tmp_path: Path, fraction: float) -> None:
    data = model_path.read_bytes()
    path = tmp_path / "cut.onnx"
    path.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(ModelError, match="truncated"):
        load_model(path)


def test_complete_copy_still_loads(model_path: Path, tmp_path: Path) -> None:
    copy = shutil.copy(model_path, tmp_path / "copy.onnx")
    assert load_model(copy, device="cpu").info.num_anchors == 8


@pytest.mark.skipif(not DEFAULT_MODEL_PATH.exists(), reason=f"{DEFAULT_MODEL_PATH.name} not exported yet")
def test_shipped_model_follows_the_contract() -> None:
    shipped = load_model(DEFAULT_MODEL_PATH, device="cpu")
    info = shipped.info
    assert info.scheme == "ibug68" and info.input_size in INPUT_SIZES
    assert info.grid == anchor_grid(info.input_size) and info.anchor_area == anchor_area(info.input_size)
    assert info.num_anchors == info.grid ** 2 * info.num_templates
    landmarks, confidence = shipped.run(random_crops(2, size=info.input_size))
    assert landmarks.shape == (2, shipped.info.num_anchors, 68, 2)
    assert np.all((confidence > 0) & (confidence < 1)) or shipped.info.model_type == "direct"
