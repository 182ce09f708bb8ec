"""core.detection: real detectors on real shared-data faces and a real video frame, and the calibration."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from tools.make_clips import shrink_into_frame
from core.offline.datasets import FaceSample, read_dataset, select_split
from core.detection import (CALIBRATION_PATH, DETECTORS, BoxCalibration, Detection, FaceDetector,
                            DetectorCascade, HaarDetector, TileSweep, best_match, calibrated_box,
                            load_calibration, make_detector)
from core.geometry import Box, crop_from_box, landmark_box, warp_to_crop

REPO_ROOT = Path(__file__).resolve().parents[2]
NUM_VAL_FACES = 6


@pytest.fixture(scope="module")
def mediapipe_detector() -> FaceDetector:
    pytest.importorskip("mediapipe")
    return make_detector("short")


@pytest.fixture(scope="module")
def haar_detector() -> FaceDetector:
    return make_detector("haar")


@pytest.fixture(scope="module")
def val_faces(shared_data: Path) -> list[FaceSample]:
    """Validation faces spread over the split (every 30th: AFW and HELEN, different photos), decoded."""
    records = select_split([r for r in read_dataset(shared_data) if r.scheme == "ibug68"], "val")
    return [r.load() for r in sorted(records, key=lambda r: r.key)[::30][:NUM_VAL_FACES]]


@pytest.fixture(scope="module")
def video_frame(shared_data: Path) -> np.ndarray:
    capture = cv2.VideoCapture(str(shared_data / "video" / "pyfeat_single_face.mp4"))
    capture.set(cv2.CAP_PROP_POS_FRAMES, 30)
    ok, frame = capture.read()
    capture.release()
    assert ok, "cannot read pyfeat_single_face.mp4"
    return frame


def test_mediapipe_finds_each_val_face_and_calibration_matches_the_landmark_box(
        mediapipe_detector: FaceDetector, val_faces: list[FaceSample]) -> None:
    for face in val_faces:
        truth = landmark_box(face.landmarks)
        detections = mediapipe_detector.detect(face.image)
        assert len(detections) == 1, f"{face.path.name}: {len(detections)} faces in a one-face crop"
        match = best_match(detections, truth)
        assert match is not None, f"{face.path.name}: the detection misses the annotated face"
        assert 0.0 < match.score <= 1.0
        assert calibrated_box(match, mediapipe_detector.name).iou(truth) > 0.7, face.path.name


@pytest.mark.slow
def test_calibration_corrects_the_haar_box_centre(haar_detector: FaceDetector, val_faces: list[FaceSample]) -> None:
    """Haar boxes sit ~14 % of their height above the landmark box (they include the forehead).

    (MediaPipe's correction is a few per cent, within face-to-face noise on a handful of faces; its
    effect over the whole val split is in the calibration file.)
    """
    raw, calibrated = [], []
    for face in val_faces:
        truth = landmark_box(face.landmarks)
        match = best_match(haar_detector.detect(face.image), truth)
        if match is None:
            continue
        for errors, box in ((raw, match.box), (calibrated, calibrated_box(match, "haar"))):
            errors.append(np.hypot(box.center[0] - truth.center[0], box.center[1] - truth.center[1]) / truth.size)
    assert raw and np.mean(calibrated) < np.mean(raw)


def test_calibrated_crop_reproduces_the_training_crop(mediapipe_detector: FaceDetector,
                                                      val_faces: list[FaceSample]) -> None:
    """Crop centre and scale from the detector land close to the ones ground truth gives."""
    for face in val_faces:
        truth = landmark_box(face.landmarks)
        match = best_match(mediapipe_detector.detect(face.image), truth)
        from_detector = crop_from_box(calibrated_box(match, mediapipe_detector.name))
        from_truth = crop_from_box(truth)
        assert from_detector[0, 0] / from_truth[0, 0] == pytest.approx(1.0, abs=0.15)  # scale
        assert np.abs(from_detector[:, 2] - from_truth[:, 2]).max() < 0.1 * 224  # shift, in crop pixels


@pytest.mark.slow
def test_haar_finds_most_val_faces(haar_detector: FaceDetector, val_faces: list[FaceSample]) -> None:
    ious = []
    for face in val_faces:
        truth = landmark_box(face.landmarks)
        match = best_match(haar_detector.detect(face.image), truth)
        if match is not None:
            ious.append(calibrated_box(match, "haar").iou(truth))
    assert len(ious) >= NUM_VAL_FACES // 2
    assert np.median(ious) > 0.65


@pytest.mark.parametrize("kind", ["mediapipe", "haar"])
def test_one_face_in_the_video_frame(kind: str, video_frame: np.ndarray, request: pytest.FixtureRequest) -> None:
    detector = request.getfixturevalue(f"{kind}_detector")
    detections = detector.detect(video_frame)
    assert len(detections) == 1
    box = calibrated_box(detections[0], detector.name)
    height, width = video_frame.shape[:2]
    assert 0 <= box.center[0] <= width and 0 <= box.center[1] <= height and box.size > 40
    assert warp_to_crop(video_frame, crop_from_box(box)).shape == (224, 224, 3)


def test_both_detectors_agree_on_the_video_face(mediapipe_detector: FaceDetector, haar_detector: FaceDetector,
                                                video_frame: np.ndarray) -> None:
    """No ground truth in the video: two independent detectors, each calibrated, must land on one box."""
    a = calibrated_box(mediapipe_detector.detect(video_frame)[0], mediapipe_detector.name)
    b = calibrated_box(haar_detector.detect(video_frame)[0], haar_detector.name)
    assert a.iou(b) > 0.6


@pytest.mark.parametrize("kind", ["mediapipe", "haar"])
def test_blank_black_image_has_no_face(kind: str, request: pytest.FixtureRequest) -> None:
    detector = request.getfixturevalue(f"{kind}_detector")
    assert detector.detect(np.zeros((360, 640, 3), np.uint8)) == []


def test_mediapipe_start_up_keeps_stderr_quiet(shared_data: Path) -> None:
    pytest.importorskip("mediapipe")
    code = ("import cv2, sys; from core.detection import MediaPipeDetector; "
            "d = MediaPipeDetector(); cap = cv2.VideoCapture(sys.argv[1]); ok, f = cap.read(); "
            "print(len(d.detect(f)))")
    done = subprocess.run([sys.executable, "-c", code, str(shared_data / "video" / "pyfeat_single_face.mp4")],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1"
    assert "XNNPACK" not in done.stderr and "inference_feedback_manager" not in done.stderr, done.stderr


def test_make_detector_kinds() -> None:
    assert isinstance(make_detector("haar"), HaarDetector)
    with pytest.raises(ValueError, match="unknown detector 'yolo'"):
        make_detector("yolo")


def test_auto_is_short_range_with_full_range_fallback(mediapipe_detector: FaceDetector) -> None:
    auto = make_detector("auto")
    assert isinstance(auto, DetectorCascade)
    assert [stage.name for stage in auto.stages] == ["mediapipe", "mediapipe_full"]
    assert make_detector("full").name == "mediapipe_full"
    assert list(DETECTORS) == ["auto", "short", "full", "haar"] and all(DETECTORS[name].label for name in DETECTORS)


@pytest.fixture(scope="module")
def auto_detector(mediapipe_detector: FaceDetector) -> FaceDetector:
    return make_detector("auto")


def test_auto_uses_short_range_where_it_finds_the_face(auto_detector: FaceDetector, video_frame: np.ndarray) -> None:
    (found,) = auto_detector.detect(video_frame)
    assert found.detector == "mediapipe"


def test_small_face_is_found_by_the_full_range_fallback_and_calibrated_as_full_range(
        auto_detector: FaceDetector, mediapipe_detector: FaceDetector, video_frame: np.ndarray) -> None:
    """The video frame shrunk into a black frame of its size (face about 40 px): short range misses it,
    the fallback finds it, and its calibrated box is where the shrunk full-size face box lands."""
    (big,) = mediapipe_detector.detect(video_frame)
    scale = 40.0 / big.box.width
    small = shrink_into_frame(video_frame, scale)
    assert mediapipe_detector.detect(small) == []
    (found,) = auto_detector.detect(small)
    assert found.detector == "mediapipe_full" and 25 < found.box.width < 60
    height, width = video_frame.shape[:2]
    dx, dy = (width - round(width * scale)) // 2, (height - round(height * scale)) // 2
    expected = calibrated_box(big)
    expected = Box(expected.x0 * scale + dx, expected.y0 * scale + dy, expected.x1 * scale + dx,
                   expected.y1 * scale + dy)
    assert calibrated_box(found).iou(expected) > 0.6


def test_a_face_too_small_for_short_range_in_the_frame_is_found_in_its_half(
        mediapipe_detector: FaceDetector, video_frame: np.ndarray) -> None:
    """The video frame shrunk so its face is about 50 px, pasted near the left edge of a 680 x 360 black
    frame (the made crowd clip's size): short range misses it there, and finds it in the left half, the
    box in frame pixels where the shrunk face box lands; the right half, next call, holds no face."""
    (big,) = mediapipe_detector.detect(video_frame)
    scale = 50.0 / big.box.width
    small = cv2.resize(video_frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    frame = np.zeros((360, 680, 3), np.uint8)
    x, y = 60, (360 - small.shape[0]) // 2
    frame[y:y + small.shape[0], x:x + small.shape[1]] = small
    assert mediapipe_detector.detect(frame) == []
    tiles = TileSweep(mediapipe_detector)
    (found,) = tiles.detect(frame)
    expected = Box(big.box.x0 * scale + x, big.box.y0 * scale + y, big.box.x1 * scale + x, big.box.y1 * scale + y)
    assert found.detector == "mediapipe" and found.box.iou(expected) > 0.6
    assert tiles.detect(frame) == [], "the right half shows no face"
    assert tiles.detect(frame) != [], "the halves take turns"


@pytest.mark.parametrize("width, height", [(680, 360), (360, 640)])
def test_the_halves_split_the_longer_side_and_overlap_by_the_share_asked_for(width: int, height: int) -> None:
    first, second = TileSweep(make_detector("haar"), overlap=0.25).halves(width, height)
    axis = 0 if width >= height else 1
    long_side, short_side = max(width, height), min(width, height)
    part = round(long_side / 1.75)
    assert first[axis] == 0 and second[axis + 2] == long_side, "together they cover the frame"
    assert first[axis + 2] - first[axis] == part == second[axis + 2] - second[axis]
    assert abs((first[axis + 2] - second[axis]) - 0.25 * part) <= 1
    assert first[1 - axis] == second[1 - axis] == 0 and first[3 - axis] == second[3 - axis] == short_side


class FixedBoxes:
    """A detector reporting the same boxes (in the coordinates of the image it is given) on any image:
    for the bookkeeping of boxes a real detector would return from a half."""

    name = "mediapipe"

    def __init__(self, *boxes: Box) -> None:
        self.boxes = boxes

    def detect(self, frame_bgr: np.ndarray) -> list[Detection]:
        return [Detection(box, 0.9, self.name) for box in self.boxes]


def test_boxes_from_a_half_move_to_frame_pixels_and_those_cut_by_its_inner_edge_are_dropped() -> None:
    """Each box touches one edge of the half it comes from: kept where that edge is the frame's,
    dropped where it is the cut between the halves."""
    frame = np.zeros((360, 680, 3), np.uint8)
    tiles = TileSweep(FixedBoxes(Box(0, 10, 50, 70), Box(340, 100, 389, 160)), overlap=0.25)
    (left, right) = tiles.halves(680, 360)
    assert left == (0, 0, 389, 360) and right == (291, 0, 680, 360)
    (kept,) = tiles.detect(frame)  # the left half: the second box ends on its cut (right) edge
    assert kept.box == Box(0, 10, 50, 70) and kept.detector == "mediapipe"
    (kept,) = tiles.detect(frame)  # the right half: the first box starts on its cut (left) edge
    assert kept.box == Box(631, 100, 680, 160), "moved by the half's left edge"
    assert [d.box for d in tiles.detect(frame)] == [Box(0, 10, 50, 70)], "the left half again"


def test_calibration_file_loads() -> None:
    calibrations = load_calibration()
    assert {"mediapipe", "mediapipe_full", "haar"} <= set(calibrations)
    for calibration in calibrations.values():
        assert 0.6 < calibration.scale < 1.4 and abs(calibration.offset_x) < 0.2 and abs(calibration.offset_y) < 0.3
        assert 0.7 < calibration.aspect < 1.3
    stored = json.loads(CALIBRATION_PATH.read_text(encoding="utf-8"))["detectors"]
    assert stored["mediapipe"]["n_faces"] > 500 and 0 < stored["mediapipe"]["spread"]["scale"] < 0.2


def test_calibrated_box_for_an_unknown_detector_is_refused() -> None:
    with pytest.raises(ValueError, match="no calibration for detector 'dlib'"):
        calibrated_box(Detection(Box(0, 0, 10, 10), 1.0), "dlib")


def test_box_calibration_arithmetic() -> None:
    calibration = BoxCalibration(offset_x=0.1, offset_y=-0.2, scale=2.0, aspect=1.25)
    # centre (5, 10) + (0.1*10, -0.2*20) = (6, 6); longer side 2*20 = 40 is the height, width 40/1.25 = 32
    assert calibration.apply(Box(0, 0, 10, 20)).as_array() == pytest.approx([-10.0, -14.0, 22.0, 26.0])
    wide = BoxCalibration(0.0, 0.0, 1.0, 0.5).apply(Box(0, 0, 10, 10))
    assert (wide.width, wide.height) == pytest.approx((10.0, 5.0))
