"""Smoke tests of the three benchmarks (a few frames and faces through each real CLI, results written
to a temporary RESULTS.md) and checks of the measuring tools they rely on. No timing asserts.

The model is the bundled one once it exists, else a tiny contract-valid ONNX graph
(tests/helpers_onnx.py): either way a real ONNX Runtime session; the torch rows use a real
(untrained, half-width) AnchorFace checkpoint written here.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from benchmarks import accuracy, speed, stability
from benchmarks.peers import dlib_unavailable_reason
from benchmarks.reporting import HEADER, Section, append_section, markdown_table
from core.detection import BoxCalibration
from core.geometry import Box
from core.smoothing import OneEuroConfig
from core.runtime import DEFAULT_MODEL_PATH, load_model
from tests.helpers_onnx import make_model
from core.paths import REPO_ROOT

pytestmark = pytest.mark.slow  # see pyproject.toml: left out of the quick run

DLIB_REASON = dlib_unavailable_reason()


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if DEFAULT_MODEL_PATH.is_file():
        return DEFAULT_MODEL_PATH
    return make_model(tmp_path_factory.mktemp("model") / "tiny.onnx")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory, model_path: Path) -> Path:
    """A small torch network at the ONNX model's input size (the speed table compares engines on one size)."""
    return save_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt",
                                load_model(model_path, device="cpu").info.input_size)


def save_tiny_checkpoint(path: Path, size: int) -> Path:
    """A width-0.5 AnchorFace checkpoint at ``size`` px with random templates inside the crop."""
    from models.anchorface import ModelConfig, build_model
    from training.checkpoint import save_checkpoint

    config = ModelConfig.for_input_size(size, width=0.5)
    templates = np.random.default_rng(0).uniform(0.25 * size, 0.75 * size, (config.num_templates, config.num_points, 2))
    save_checkpoint(path, build_model(config, templates.astype(np.float32)), config)
    return path


@pytest.fixture(scope="module")
def videos(shared_data: Path) -> dict[str, Path]:
    folder = shared_data / "video"
    return {"long": folder / "pyfeat_WolfgangLanger_Pexels.mp4", "short": folder / "pyfeat_single_face.mp4"}


def section_of(results: Path, title: str) -> str:
    text = results.read_text(encoding="utf-8")
    assert text.startswith(HEADER.splitlines()[0])
    assert text.count(f"## {title} — ") == 1
    return text


def test_speed_smoke(model_path: Path, checkpoint: Path, videos: dict[str, Path], tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    argv = ["--model", str(model_path), "--checkpoint", str(checkpoint), "--video", str(videos["long"]),
            "--frames", "6", "--warmup-frames", "2", "--passes", "2", "--rounds", "1", "--calls", "2", "--warmup-calls", "1",
            "--results", str(results)]
    assert speed.main(argv) == 0
    text = section_of(results, "Speed")
    assert "--frames 6" in text  # the exact command is recorded
    for engine in ("ONNX Runtime", "torch"):
        assert sum(line.startswith(f"| {engine}") for line in text.splitlines()) == 2  # batch 1 and 32
    race = [line for line in text.splitlines() if line.startswith(("| ours", "| MediaPipe", "| dlib"))]
    assert len(race) == (2 if DLIB_REASON else 3), race
    assert all(line.split("|")[2].strip() == "8" for line in race)  # 2 passes x (6 frames - 2 warm-up), for all
    for label in ("decode the video frame", "inference (ONNX)", "draw the overlay", "| total"):
        assert label in text


def test_speed_refuses_a_checkpoint_of_another_size(model_path: Path, videos: dict[str, Path], tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    size = 128 if load_model(model_path, device="cpu").info.input_size != 128 else 160
    other = save_tiny_checkpoint(tmp_path / "other.pt", size)
    argv = ["--model", str(model_path), "--checkpoint", str(other), "--video", str(videos["short"]), "--frames", "4",
            "--results", str(tmp_path / "RESULTS.md")]
    assert speed.main(argv) == 2
    assert f"is a {size} px network" in capsys.readouterr().err
    assert not (tmp_path / "RESULTS.md").exists()


def test_speed_runs_without_torch_or_a_checkpoint(model_path: Path, videos: dict[str, Path], tmp_path: Path) -> None:
    """The fresh-clone case: no checkpoint in runs/, and torch never imported (the bench extra lacks it)."""
    code = ("import sys; from benchmarks import speed\n"
            f"code = speed.main(['--model', {str(model_path)!r}, '--video', {str(videos['short'])!r}, '--frames', '4',"
            " '--warmup-frames', '1', '--passes', '1', '--rounds', '1', '--calls', '1', '--warmup-calls', '1',"
            f" '--peers', '--results', {str(tmp_path / 'RESULTS.md')!r}])\n"
            "assert code == 0 and 'torch' not in sys.modules and 'training' not in sys.modules, code\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "| ONNX Runtime" in (tmp_path / "RESULTS.md").read_text() and "| torch" not in (tmp_path / "RESULTS.md").read_text()
    missing = speed.main(["--model", str(model_path), "--checkpoint", str(tmp_path / "nothere.pt"), "--video",
                          str(videos["short"]), "--results", str(tmp_path / "R2.md")])
    assert missing == 2


def test_accuracy_smoke(model_path: Path, checkpoint: Path, shared_data: Path, tmp_path: Path) -> None:
    results, plot = tmp_path / "RESULTS.md", tmp_path / "ced.png"
    argv = ["--model", str(model_path), "--baseline", str(checkpoint), "--data", str(shared_data), "--limit", "4",
            "--calibration-faces", "12", "--plot", str(plot), "--results", str(results)]
    assert accuracy.main(argv) == 0
    text = section_of(results, "Accuracy")
    rows = [line.split("|") for line in text.splitlines() if line.startswith(("| ours", "| direct", "| dlib"))]
    assert len(rows) == (2 if DLIB_REASON else 4)
    assert all(row[2].strip() == "4" and float(row[3]) >= 0 for row in rows)
    assert ("dlib skipped" in text) == bool(DLIB_REASON)
    assert cv2.imread(str(plot)) is not None


@pytest.mark.skipif(DLIB_REASON is not None, reason=f"dlib peer: {DLIB_REASON}")
def test_dlib_on_ground_truth_crops_is_accurate(shared_data: Path) -> None:
    """dlib through the shared protocol lands on the faces (it has seen these photos: well under 10 %)."""
    from benchmarks.peers import DlibPeer
    from training.evaluate import evaluate, load_records

    val = load_records(str(shared_data), "val", "ibug68")[:6]
    result = evaluate(accuracy.DlibCropPredictor(DlibPeer(), None, use_detector=True), val)
    assert float(np.median(result.nmes)) < 0.1


def test_detector_box_inverts_the_calibration() -> None:
    calibration = BoxCalibration(offset_x=0.02, offset_y=-0.1, scale=0.9, aspect=1.0)
    truth = Box(40.0, 50.0, 140.0, 150.0)
    back = calibration.apply(accuracy.detector_box(truth, calibration))
    np.testing.assert_allclose(back.center, truth.center, atol=1e-9)
    assert back.size == pytest.approx(truth.size)


def test_stability_smoke(model_path: Path, videos: dict[str, Path], tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    argv = ["--model", str(model_path), "--video", str(videos["short"]), "--still-frames", "12",
            "--moving-frames", "14", "--settle-frames", "3", "--steady-after", "7", "--seeds", "2",
            "--video-frames", "8", "--results", str(results)]
    assert stability.main(argv) == 0
    text = section_of(results, "Stability")
    for label in (*stability.SMOOTHERS.values(), stability.MESH_LABEL):
        assert text.count(f"| {label}") == 2  # synthetic table and real-clip table
    assert sum(line.startswith("- target ") for line in text.splitlines()) == 4  # steady, settling, lag, One-Euro


def test_coverage_smoke(model_path: Path, videos: dict[str, Path], tmp_path: Path) -> None:
    """Every detector choice, MediaPipe's detectors alone and Face Mesh, with faces per frame and the
    share of frames our pipeline ran a detector on."""
    from benchmarks import coverage

    results = tmp_path / "RESULTS.md"
    argv = ["--model", str(model_path), "--video", str(videos["short"]), "--frames", "6", "--results", str(results)]
    assert coverage.main(argv) == 0
    text = section_of(results, "Coverage: frames with a face per detector")
    assert "faces / frame" in text and "detector runs % of frames" in text
    for detector in coverage.PIPELINE_DETECTORS:
        assert f"ours, --detector {detector} |" in text
    assert "MediaPipe Face Mesh (max_num_faces 3)" in text
    six = tmp_path / "six.md"
    assert coverage.main(argv[:-1] + [str(six), "--max-faces", "6"]) == 0
    assert "MediaPipe Face Mesh (max_num_faces 6)" in section_of(six, "Coverage: frames with a face per detector")


def sway_sequence(reference: np.ndarray, motion: stability.Motion, centre: tuple[float, float], size: float,
                  delay: float, frames: int, fps: float) -> stability.Sequence:
    times = (np.arange(frames) - delay) / fps
    points = list(stability.apply(motion.matrices(times, centre, size), reference))
    return stability.Sequence(points, [1.0] * frames, list(np.arange(frames) / fps), (0, 1))


def test_fit_lag_recovers_a_known_delay() -> None:
    reference = np.random.default_rng(1).uniform(100, 200, (10, 2))
    motion, centre, size, fps = stability.Motion(), (150.0, 150.0), 100.0, 30.0
    for delay in (0.0, 1.5, 3.0):
        seq = sway_sequence(reference, motion, centre, size, delay, 120, fps)
        tracking = stability.fit_lag(seq, reference, motion, centre, size, fps, start=5)
        assert tracking.lag == pytest.approx(delay, abs=0.01)
        assert (tracking.error == pytest.approx(0.0, abs=1e-9)) == (delay == 0.0)


def test_average_takes_the_mean_of_every_number() -> None:
    draws = [stability.SyntheticResult(0.2, 0.1, stability.Tracking(0.0, 0.02)),
             stability.SyntheticResult(0.4, 0.3, stability.Tracking(1.0, 0.04))]
    mean = stability.average(draws)
    assert (mean.settling, mean.steady, mean.tracking.lag, mean.tracking.error) == pytest.approx((0.3, 0.2, 0.5, 0.03))


def test_jitter_and_acceleration_measure_noise() -> None:
    rng = np.random.default_rng(2)
    shape = np.array([[0.0, 0.0], [100.0, 0.0], [50.0, 50.0], [50.0, 90.0]])
    still = stability.Sequence([shape.copy() for _ in range(50)], [1.0] * 50, list(range(50)), (0, 1))
    assert stability.jitter(still, 0) == 0.0 and stability.acceleration(still) == 0.0
    shaken = stability.Sequence([shape + (k >= 25) * rng.normal(0, 1, shape.shape) for k in range(50)],
                                [1.0] * 50, list(range(50)), (0, 1))
    assert stability.jitter(shaken, 0, 25) == 0.0 and stability.jitter(shaken, 25) > 0.005
    noisy = stability.Sequence([shape + rng.normal(0, 1.0, shape.shape) for _ in range(4000)], [1.0] * 4000,
                               list(range(4000)), (0, 1))
    # RMS of a 2-D unit Gaussian is sqrt(2); the inter-ocular distance is 100 px.
    assert stability.jitter(noisy, 0) == pytest.approx(np.sqrt(2) / 100, rel=0.05)
    # p[k+1] - 2 p[k] + p[k-1] of white noise has std sqrt(6) per axis: mean norm sqrt(6) * sqrt(pi / 2).
    noisy.points[10] = None  # frames without a face are skipped, not read as a jump
    assert stability.acceleration(noisy) == pytest.approx(np.sqrt(6) * np.sqrt(np.pi / 2) / 100, rel=0.05)


def test_one_euro_offline_matches_the_pipeline_contract() -> None:
    """Offline smoothing of a raw sequence restarts where the face was lost, as the tracker does."""
    shape = np.array([[0.0, 0.0], [100.0, 0.0], [50.0, 50.0], [50.0, 90.0]])
    points = [shape, shape + 10.0, None, shape + 20.0]
    raw = stability.Sequence(points, [1.0] * 4, [0.0, 0.1, 0.2, 0.3], (0, 1))
    smoothed = stability.smooth_offline(raw, OneEuroConfig(min_cutoff=0.5, beta=0.0))
    assert smoothed.points[2] is None
    np.testing.assert_allclose(smoothed.points[3], shape + 20.0)  # a fresh filter starts at the measurement
    assert np.all(smoothed.points[1] < shape + 10.0)  # a running filter lags behind the jump


def test_reporting_appends_dated_sections(tmp_path: Path) -> None:
    path = tmp_path / "RESULTS.md"
    table = markdown_table(["method", "value"], [["a", "1.0"], ["longer name", "22.5"]])
    append_section(Section("First", "python -m benchmarks.x --y 1", [table], ["a note"]), path)
    append_section(Section("Second", "python -m benchmarks.x", [table]), path)
    text = path.read_text(encoding="utf-8")
    assert text.count(HEADER.splitlines()[0]) == 1
    assert text.index("## First — ") < text.index("## Second — ")
    assert "- command: `python -m benchmarks.x --y 1`" in text and "- a note" in text
    assert "- machine: " in text and "numpy" in text
    assert "| longer name |  22.5 |" in text


def test_mesh_job_writes_one_row_per_face_and_the_video(videos: dict[str, Path], tmp_path: Path) -> None:
    pytest.importorskip("mediapipe")
    from benchmarks import mesh_job

    table, video = tmp_path / "mesh.csv", tmp_path / "mesh.mp4"
    assert mesh_job.main(["--source", str(videos["short"]), "--landmarks", str(table), "--output", str(video),
                          "--max-frames", "5"]) == 0
    rows = table.read_text().splitlines()
    assert len(rows) == 6 and len(rows[0].split(",")) == 4 + 2 * mesh_job.MESH_POINTS
    assert all(row.split(",")[2:4] == ["1", "0"] for row in rows[1:])  # one face found in every frame
    capture, frames = cv2.VideoCapture(str(video)), 0
    while capture.read()[0]:
        frames += 1
    capture.release()
    assert frames == 5


def test_mesh_job_follows_as_many_faces_as_it_is_given(videos: dict[str, Path], tmp_path: Path) -> None:
    """The yardstick on a clip with two faces side by side: one face by default, both with --max-faces 2."""
    pytest.importorskip("mediapipe")
    from benchmarks import mesh_job

    capture = cv2.VideoCapture(str(videos["short"]))
    frames = [capture.read()[1] for _ in range(4)]
    capture.release()
    pair = tmp_path / "pair.avi"
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(pair), cv2.VideoWriter_fourcc(*"MJPG"), 25, (2 * width, height))
    for frame in frames:
        writer.write(cv2.hconcat([frame, frame]))
    writer.release()
    for faces in (1, 2):
        table = tmp_path / f"mesh{faces}.csv"
        assert mesh_job.main(["--source", str(pair), "--landmarks", str(table), "--max-faces", str(faces)]) == 0
        rows = [row.split(",") for row in table.read_text().splitlines()[1:]]
        assert len(rows) == 4 * faces and all(row[2] == str(faces) for row in rows)


def test_whole_job_times_paired_processes(videos: dict[str, Path], model_path: Path, tmp_path: Path) -> None:
    from benchmarks import whole_job

    results = tmp_path / "RESULTS.md"
    assert whole_job.main(["--model", str(model_path), "--clips", str(videos["short"]), "--runs", "1", "--modes",
                           "startup", "--results", str(results)]) == 0
    text = section_of(results, "Whole job vs MediaPipe Face Mesh")
    row = next(line for line in text.splitlines() if line.startswith("| pyfeat_single_face.mp4"))
    cells = [c.strip() for c in row.split("|")[1:-1]]
    assert cells[1:3] == ["startup", "1"] and float(cells[3]) > 0 and float(cells[4]) > 0 and "x" in cells[5]


def test_threads_benchmark_smoke(model_path: Path, videos: dict[str, Path], tmp_path: Path) -> None:
    from benchmarks import threads

    results = tmp_path / "RESULTS.md"
    assert threads.main(["--model", str(model_path), "--rounds", "1", "--calls", "1", "--job-runs", "1",
                         "--job-frames", "8", "--video", str(videos["short"]), "--results", str(results)]) == 0
    text = section_of(results, "Inference threads")
    assert text.count("threads, spinning on |") == 2 and text.count("threads, spinning off |") == 2
    assert sum(line.startswith(("| 1 thread ", "| 2 threads ")) for line in text.splitlines()) >= 2


def test_whole_job_passes_our_options_to_our_command_only(tmp_path: Path) -> None:
    from benchmarks import whole_job

    ours, mesh = whole_job.commands("csv", Path("clip.mp4"), tmp_path, 0, "m.onnx", 1,
                                    ("--max-faces", "1", "--detector", "short"))
    assert ours[ours.index("--detector") + 1] == "short" and ours[ours.index("--max-faces") + 1] == "1"
    assert "--detector" not in mesh and mesh[mesh.index("--max-faces") + 1] == "1"


def test_whole_job_notes_the_faces_our_options_let_it_follow() -> None:
    from benchmarks import whole_job
    from core.tracker import TrackerConfig

    assert whole_job.faces_followed(()) == TrackerConfig().max_faces
    assert whole_job.faces_followed(("--max-faces", "6", "--detector", "short", "--max-faces", "1")) == 1
    assert whole_job.faces_followed(("--max-faces=3",)) == 3
