"""tools/: the offline tools that regenerate shipped assets reproduce them, and their fits recover known truths."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.offline.datasets import read_dataset
from core.detection import BoxCalibration, load_calibration
from core.geometry import Box
from core.paths import MEAN_FACE_3D, PROBE_CROP_PATH
from core.pose import angles_to_rotation, load_mean_face
from tools.calibrate_detector import fit_calibration
from tools.mean_face import derive_mean_face, main, pose_training_shapes
from tools.probe_crop import probe_crop

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def train_shapes(shared_data: Path) -> np.ndarray:
    return pose_training_shapes(read_dataset(shared_data))


@pytest.mark.slow
def test_shipped_model_is_regenerated_exactly_by_the_cli(tmp_path, shared_data, train_shapes):
    out = tmp_path / "mean_face.npy"
    main(["--data", str(shared_data), "--out", str(out)])
    regenerated = np.load(out, allow_pickle=False)
    np.testing.assert_allclose(regenerated, np.load(MEAN_FACE_3D, allow_pickle=False), atol=1e-6)
    np.testing.assert_allclose(derive_mean_face(train_shapes), regenerated, atol=1e-9)


def test_factorisation_recovers_a_known_rigid_shape():
    """Orthographic views of the model in random poses (and scales, shifts, noise) give the model back."""
    model = load_mean_face()
    rng = np.random.default_rng(0)
    views = []
    for _ in range(300):
        yaw, pitch, roll = rng.uniform([-50, -30, -30], [50, 30, 30])
        rotated = model @ angles_to_rotation(yaw, pitch, roll).T
        views.append(rng.uniform(1.0, 4.0) * rotated[:, :2] + rng.uniform(0, 300, 2) + rng.normal(0, 0.5, (68, 2)))
    recovered = derive_mean_face(np.stack(views))
    assert np.abs(recovered - model).mean() < 1.0  # mm


def test_derivation_needs_several_views():
    with pytest.raises(ValueError, match="at least 3"):
        derive_mean_face(np.zeros((2, 68, 2)))
    with pytest.raises(ValueError, match="68"):
        derive_mean_face(np.zeros((10, 98, 2)))


def test_fit_recovers_a_known_mapping_despite_outliers() -> None:
    known = BoxCalibration(offset_x=0.03, offset_y=0.12, scale=0.9, aspect=1.1)
    rng = np.random.default_rng(0)
    detector_boxes = []
    for x, y, side in zip(rng.uniform(0, 500, 40), rng.uniform(0, 300, 40), rng.uniform(30, 200, 40)):
        detector_boxes.append(Box(x, y, x + side, y + side * rng.uniform(0.95, 1.05)))
    truth = [known.apply(b) for b in detector_boxes]
    truth[:5] = [Box(0, 0, 5, 50)] * 5  # mismatched faces must not drag a median fit
    fitted, spread = fit_calibration(detector_boxes, truth)
    for name in ("offset_x", "offset_y", "scale", "aspect"):
        assert getattr(fitted, name) == pytest.approx(getattr(known, name), abs=1e-6), name
        assert spread[name] < 1e-6


@pytest.mark.slow
def test_calibrate_cli_writes_a_loadable_file(shared_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "calibration.json"
    done = subprocess.run([sys.executable, "-m", "tools.calibrate_detector", "--data", str(shared_data),
                           "--out", str(out), "--detectors", "haar", "--limit", "8"],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    entry = json.loads(out.read_text(encoding="utf-8"))["detectors"]["haar"]
    assert entry["n_train"] == 8 and 1 <= entry["n_faces"] <= 8 and entry["val"]["faces"] == 8
    assert set(load_calibration(out)) == {"haar"}


def test_probe_crop_tool_reproduces_the_shipped_face_crop() -> None:
    shipped = cv2.imread(str(PROBE_CROP_PATH), cv2.IMREAD_COLOR)
    regenerated = probe_crop()
    assert shipped.shape == regenerated.shape == (224, 224, 3)
    assert np.abs(shipped.astype(int) - regenerated).mean() < 1.0  # decoders may differ by a grey level


@pytest.mark.slow
def test_make_clips_cli_writes_every_derived_clip_as_documented(shared_data: Path, tmp_path: Path) -> None:
    """The tool's clips, from 30 frames of each source: side by side shows two and three faces on one
    frame (MediaPipe short range, run here on a middle frame), the crowd five or six (full range), the small face is about 40 px wide, the
    faceless clip starts with 2 s of background in which no detector finds a face (the tool checks that
    itself and refuses otherwise)."""
    from core.detection import MediaPipeDetector
    from tools.make_clips import FACELESS_SOURCES, main as make_clips_main, read_frames

    assert make_clips_main([str(tmp_path), "--videos", str(shared_data / "video"), "--frames", "30"]) == 0
    names = sorted(p.name for p in tmp_path.glob("*.mp4"))
    assert names == sorted([*(f"faceless_{Path(n).stem}.mp4" for n in FACELESS_SOURCES), "side_by_side_2.mp4",
                            "side_by_side_3.mp4", "side_by_side_3_staggered.mp4", "crowd_6.mp4", "small_face.mp4",
                            "cut.mp4", "turn.mp4", "profile_start.mp4"])
    detector, full = MediaPipeDetector(), MediaPipeDetector(full_range=True)
    for name, faces in (("side_by_side_2.mp4", 2), ("side_by_side_3.mp4", 3)):
        frames, _ = read_frames(tmp_path / name)
        assert frames[0].shape[0] == 360 and len(detector.detect(frames[len(frames) // 2])) == faces
    crowd, _ = read_frames(tmp_path / "crowd_6.mp4")  # two rows of three, 180 px each: full range sees five
    assert crowd[0].shape[0] == 360 and len(full.detect(crowd[len(crowd) // 2])) >= 5
    (small,) = full.detect(read_frames(tmp_path / "small_face.mp4", 1)[0][0])
    assert 30 < small.box.width < 50
    frames, fps = read_frames(tmp_path / "faceless_pyfeat_WolfgangLanger_Pexels.mp4")
    assert len(frames) == 30 + round(5 * fps)
    assert not detector.detect(frames[0]) and not full.detect(frames[0]) and detector.detect(frames[round(2 * fps)])
    detector.close(), full.close()
