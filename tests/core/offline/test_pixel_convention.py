"""Each reader returns 0-based pixel centres, checked on hand-made files with a known answer: a single
bright pixel at column 5, row 3 of a small image, written the way each layout writes it."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from core.offline.datasets import read_manifest, read_pts_folder, read_wflw

COLUMN, ROW = 5, 3


def _image_with_one_bright_pixel(path: Path) -> None:
    image = np.zeros((8, 12, 3), np.uint8)
    image[ROW, COLUMN] = 255
    cv2.imwrite(str(path), image)


def _pts(path: Path, x: float, y: float, count: int = 68) -> None:
    lines = [f"{x} {y}"] * count
    path.write_text("version: 1\nn_points: %d\n{\n%s\n}\n" % (count, "\n".join(lines)), encoding="utf-8")


def _lands_on_the_bright_pixel(image_path: Path, point: np.ndarray) -> bool:
    image = cv2.imread(str(image_path), cv2.IMREAD_GRAYSCALE)
    return image[int(round(point[1])), int(round(point[0]))] == 255


def test_300w_folder_points_are_one_based_and_come_back_zero_based(tmp_path: Path) -> None:
    root = tmp_path / "300W" / "afw"
    root.mkdir(parents=True)
    _image_with_one_bright_pixel(root / "face.png")
    _pts(root / "face.pts", COLUMN + 1, ROW + 1)  # Matlab: the top-left pixel's centre is (1, 1)
    (record,) = read_pts_folder(tmp_path / "300W")
    np.testing.assert_allclose(record.landmarks[0], [COLUMN, ROW])
    assert _lands_on_the_bright_pixel(record.image_path, record.landmarks[0])


def test_300w_folder_keeps_hidden_points_hidden(tmp_path: Path) -> None:
    root = tmp_path / "merl"
    root.mkdir()
    _image_with_one_bright_pixel(root / "face.png")
    _pts(root / "face.pts", -1, -1)  # MERL-RAV's hidden point is a marker, not a position: no shift
    (record,) = read_pts_folder(root)
    assert np.isnan(record.landmarks).all()


def test_manifest_points_are_taken_as_zero_based(tmp_path: Path) -> None:
    _image_with_one_bright_pixel(tmp_path / "face.png")
    _pts(tmp_path / "face.pts", COLUMN, ROW)
    (tmp_path / "manifest.csv").write_text("image,pts,source,n_points,width,height\n"
                                           "face.png,face.pts,made,68,12,8\n", encoding="utf-8")
    (record,) = read_manifest(tmp_path)
    np.testing.assert_allclose(record.landmarks[0], [COLUMN, ROW])
    assert _lands_on_the_bright_pixel(record.image_path, record.landmarks[0])


def test_wflw_points_are_taken_as_zero_based(tmp_path: Path) -> None:
    images = tmp_path / "WFLW_images" / "0--Parade"
    images.mkdir(parents=True)
    _image_with_one_bright_pixel(images / "face.png")
    line = " ".join([f"{COLUMN} {ROW}"] * 98 + ["0", "0", "11", "7"] + ["0"] * 6 + ["0--Parade/face.png"])
    annotation = tmp_path / "list.txt"
    annotation.write_text(line + "\n", encoding="utf-8")
    (record,) = read_wflw(annotation, tmp_path / "WFLW_images")
    np.testing.assert_allclose(record.landmarks[0], [COLUMN, ROW])
    assert _lands_on_the_bright_pixel(record.image_path, record.landmarks[0])
