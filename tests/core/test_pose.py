"""Head pose: the derived 3D mean face, the documented sign convention, and recovery of known poses."""
from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest

from core.offline.datasets import read_dataset, select_split
from core.pose import INTER_OCULAR_MM, angles_to_rotation, camera_matrix, estimate_pose, load_mean_face, rotation_to_angles
from core.schemes import get_scheme

IBUG = get_scheme("ibug68")
SIZE = (640, 480)
FRONTAL_FACE = "300w_afw/310076750_1"  # a frontal adult face (checked by eye)


@pytest.fixture(scope="module")
def records(shared_data):
    return read_dataset(shared_data)


@pytest.fixture(scope="module")
def val_shapes(records) -> list[np.ndarray]:
    return [r.landmarks.astype(np.float64) for r in select_split(records, "val") if r.scheme == "ibug68"]


def project(yaw: float, pitch: float, roll: float, t=(0.0, 0.0, 600.0), size=SIZE) -> np.ndarray:
    rvec = cv2.Rodrigues(angles_to_rotation(yaw, pitch, roll))[0]
    return cv2.projectPoints(load_mean_face(), rvec, np.array(t), camera_matrix(size), None)[0][:, 0]


def nose_tip() -> int:
    return int(load_mean_face()[:, 2].argmin())


def mirror(shape: np.ndarray, width: int) -> np.ndarray:
    """The shape as it would be annotated on the horizontally flipped image."""
    flipped = shape[list(IBUG.mirror)].copy()
    flipped[:, 0] = width - flipped[:, 0]
    return flipped


def centred(shape: np.ndarray, size=SIZE, inter_ocular_px: float = 80.0) -> np.ndarray:
    """An annotated shape moved to the image centre at webcam size (80 px between the outer eye corners
    in 640x480, about 70 cm away): the crops' own scale would put the face a few cm from the lens."""
    left, right = IBUG.outer_eye_corners
    scale = inter_ocular_px / np.linalg.norm(shape[right] - shape[left])
    return (shape - shape.mean(axis=0)) * scale + np.array(size) / 2.0


# --- the 3D mean face ------------------------------------------------------------------------------

def test_mean_face_is_a_plausible_human_face():
    model = load_mean_face()
    left, right = IBUG.outer_eye_corners
    assert np.linalg.norm(model[right] - model[left]) == pytest.approx(INTER_OCULAR_MM)
    mirrored = model[list(IBUG.mirror)] * np.array([-1.0, 1.0, 1.0])
    np.testing.assert_allclose(model, mirrored, atol=1e-9)  # exactly left-right symmetric
    jaw = [c for c in IBUG.contours if c.name == "jaw"][0].indices
    nose = [c for c in IBUG.contours if c.name == "nose_bridge"][0].indices
    assert model[list(nose), 2].mean() < model[:, 2].mean() - 20.0  # the nose sticks out towards the camera
    assert model[nose_tip(), 2] < model[list(jaw), 2].min() - 40.0
    assert model[left, 1] < model[jaw[len(jaw) // 2], 1]  # eyes above the chin
    assert 120.0 < np.ptp(model[:, 0]) < 170.0 and 100.0 < np.ptp(model[:, 1]) < 160.0  # face-sized (mm)


# --- sign convention and synthetic recovery --------------------------------------------------------

def test_sign_convention_as_documented():
    frontal = project(0, 0, 0)
    left, right = IBUG.outer_eye_corners
    eyes_mid = (frontal[left] + frontal[right]) / 2
    turned = project(25, 0, 0)
    assert turned[nose_tip(), 0] - (turned[left, 0] + turned[right, 0]) / 2 > frontal[nose_tip(), 0] - eyes_mid[0]
    assert project(0, 20, 0)[nose_tip(), 1] < frontal[nose_tip(), 1]  # pitch > 0: nose moves up
    rolled = project(0, 0, 15)
    assert rolled[right, 1] > rolled[left, 1]  # roll > 0: clockwise, the right-hand eye goes down


def test_angles_round_trip():
    for angles in itertools.product([-40, 0, 35], [-25, 0, 20], [-30, 0, 10]):
        assert rotation_to_angles(angles_to_rotation(*angles)) == pytest.approx(angles, abs=1e-9)


@pytest.mark.parametrize("yaw,pitch,roll", [(0, 0, 0), (30, 0, 0), (-30, 0, 0), (0, 20, 0), (0, -20, 0),
                                            (0, 0, 25), (25, -15, 10), (-40, 15, -20)])
def test_synthetic_pose_is_recovered_within_two_degrees(yaw, pitch, roll):
    rng = np.random.default_rng(1)
    shape = project(yaw, pitch, roll, t=(40.0, -30.0, 650.0)) + rng.normal(0.0, 0.5, (68, 2))
    pose = estimate_pose(shape, SIZE)
    assert (pose.yaw, pose.pitch, pose.roll) == pytest.approx((yaw, pitch, roll), abs=2.0)
    np.testing.assert_allclose(pose.translation_vector, [40.0, -30.0, 650.0], rtol=0.05, atol=5.0)


# --- real annotated shapes -------------------------------------------------------------------------

def test_frontal_face_reads_near_zero(records):
    shape = next(r for r in records if r.key == FRONTAL_FACE).landmarks
    pose = estimate_pose(centred(shape), SIZE)
    assert abs(pose.yaw) < 5 and abs(pose.pitch) < 5 and abs(pose.roll) < 5


def test_symmetric_faces_have_small_yaw(val_shapes):
    """The most mirror-symmetric annotated faces (a 2D criterion, independent of the model) face the camera."""
    def asymmetry(shape: np.ndarray) -> float:
        flipped = mirror(shape, 0)
        matrix, _ = cv2.estimateAffinePartial2D(flipped.astype(np.float32), shape.astype(np.float32))
        return float(np.linalg.norm(flipped @ matrix[:, :2].T + matrix[:, 2] - shape, axis=1).mean())

    for shape in sorted(val_shapes, key=asymmetry)[:5]:
        assert abs(estimate_pose(centred(shape), SIZE).yaw) < 10


def test_image_roll_is_read_as_roll(records):
    shape = centred(next(r for r in records if r.key == FRONTAL_FACE).landmarks)
    base = estimate_pose(shape, SIZE)
    for angle in (-30.0, 20.0):
        # A clockwise (as displayed) rotation by ``angle`` about the principal point; y points down.
        a = np.radians(angle)
        rotation = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        rotated = (shape - np.array(SIZE) / 2) @ rotation.T + np.array(SIZE) / 2
        pose = estimate_pose(rotated, SIZE)
        assert pose.roll - base.roll == pytest.approx(angle, abs=1.0)
        assert pose.yaw == pytest.approx(base.yaw, abs=1.0) and pose.pitch == pytest.approx(base.pitch, abs=1.0)


def test_mirrored_face_flips_yaw(val_shapes):
    poses = [(estimate_pose(centred(s), SIZE), s) for s in val_shapes]
    pose, shape = max(poses, key=lambda p: abs(p[0].yaw))
    assert abs(pose.yaw) > 25
    flipped = estimate_pose(mirror(centred(shape), SIZE[0]), SIZE)
    assert flipped.yaw == pytest.approx(-pose.yaw, abs=0.5)
    assert flipped.roll == pytest.approx(-pose.roll, abs=0.5)
    assert flipped.pitch == pytest.approx(pose.pitch, abs=0.5)


def test_real_faces_fit_the_model(val_shapes):
    """The mean face explains real validation shapes: median reprojection error under 6 % of inter-ocular."""
    errors = []
    left, right = IBUG.outer_eye_corners
    for shape in val_shapes:
        shape = centred(shape)
        pose = estimate_pose(shape, SIZE)
        reproj = cv2.projectPoints(load_mean_face(), pose.rotation_vector, pose.translation_vector,
                                   camera_matrix(SIZE), None)[0][:, 0]
        errors.append(np.linalg.norm(reproj - shape, axis=1)[17:].mean() / np.linalg.norm(shape[left] - shape[right]))
    assert np.median(errors) < 0.06


# --- what has no pose ------------------------------------------------------------------------------

def test_other_schemes_and_bad_input_give_none():
    assert estimate_pose(np.zeros((98, 2)) + 100, SIZE, scheme="wflw98") is None
    assert estimate_pose(np.zeros((50, 2)), SIZE) is None
    shape = project(0, 0, 0)
    shape[3] = np.nan
    assert estimate_pose(shape, SIZE) is None


@pytest.mark.parametrize("extent_px", [0.0, 0.01, 3.0, 6.0])
def test_collapsed_landmarks_give_no_pose_instead_of_a_cv2_error(val_shapes, extent_px):
    """A real face shrunk about its centre to a few pixels (what a collapsing track outputs): SQPnP
    asserts on such input; estimate_pose must answer None, never raise."""
    shape = val_shapes[0]
    centre = shape.mean(axis=0)
    collapsed = centre + (shape - centre) * extent_px / np.ptp(shape, axis=0).max()
    assert estimate_pose(collapsed, SIZE) is None


def test_non_finite_landmarks_give_no_pose(val_shapes):
    shape = val_shapes[0].copy()
    shape[5] = np.nan
    assert estimate_pose(shape, SIZE) is None
