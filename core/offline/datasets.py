"""Readers for annotated face datasets (numpy + OpenCV only), so training, evaluation and benchmarks
read every layout the same way.

Layouts understood:

* a folder laid out like ``../shared/data`` with a ``manifest.csv`` (``image,pts,source,...``);
* an iBUG/300-W folder tree: images with a ``.pts`` file of the same stem beside them (LFPW, HELEN,
  AFW, iBUG, 300-W test, Menpo);
* a WFLW annotation file: one face per line, 196 coordinates, 4 box values, 6 attribute flags and
  the image path relative to the image folder.

Readers return :class:`FaceRecord` (path + landmarks, image not yet decoded) so large datasets are
cheap to index; :meth:`FaceRecord.load` decodes one image. Malformed input raises
:class:`DatasetError` naming the file and line.

Hidden points: a self-occluded point written as ``-1 -1`` (MERL-RAV's convention) has no position, so
the readers store it as NaN. NaN rides along through every affine map and index permutation (crops,
flips), so the visibility mask cannot fall out of step with the points; :func:`visible_mask` reads it
back, and the crop policy, losses and metrics use visible points only.
"""
from __future__ import annotations

import csv
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from core.paths import SPLIT_FILE
from core.schemes import scheme_for_point_count

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".ppm")


#: Where the public 300-W / menpo ``.pts`` put the top-left pixel's centre (Matlab's 1-based pixels;
#: menpo, the 300-W group's toolkit, subtracts 1 on reading).
PTS_FOLDER_ORIGIN = 1.0

#: How MERL-RAV writes a self-occluded point in a ``.pts`` file.
HIDDEN_POINT = (-1.0, -1.0)


def visible_mask(landmarks: np.ndarray) -> np.ndarray:
    """``[..., L]`` bool: True where a point has a position (hidden points are NaN)."""
    return np.isfinite(np.asarray(landmarks)).all(axis=-1)


class DatasetError(ValueError):
    """A dataset file is missing or malformed; the message names the file (and line)."""


@dataclass(frozen=True)
class FaceRecord:
    """One annotated face: where its image is and its landmarks in that image's pixels."""

    image_path: Path
    landmarks: np.ndarray = field(repr=False)
    scheme: str
    source: str

    @property
    def key(self) -> str:
        """Stable identifier: ``source/stem`` (unique within a dataset)."""
        return f"{self.source}/{self.image_path.stem}"

    def load(self) -> "FaceSample":
        image = cv2.imread(str(self.image_path), cv2.IMREAD_COLOR)
        if image is None:
            raise DatasetError(f"{self.image_path}: cannot read image (missing or not an image)")
        return FaceSample(image, self.landmarks, self.scheme, self.source, self.image_path)


@dataclass(frozen=True)
class FaceSample:
    """A decoded face: ``image`` BGR uint8, ``landmarks [L, 2]`` float in its pixels."""

    image: np.ndarray = field(repr=False)
    landmarks: np.ndarray = field(repr=False)
    scheme: str
    source: str
    path: Path


def read_pts(path: str | Path, origin: float = 0.0) -> np.ndarray:
    """Read an iBUG ``.pts`` file into ``[L, 2]`` float32 (a ``-1 -1`` hidden point becomes NaN);
    errors name the file and line.

    ``origin`` is the coordinate the file gives the top-left pixel's centre; it is subtracted so the
    result is in the project's convention (``core.geometry.PIXEL_CONVENTION``: 0-based pixel centres). The 300-W
    and menpo files are 1-based (Matlab); the shared data is already 0-based.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8", errors="strict").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read landmarks file ({exc})") from exc
    declared = None
    declared_line = 0
    points: list[tuple[float, float]] = []
    inside = False
    for lineno, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line:
            continue
        if not inside:
            if line.startswith("n_points"):
                match = re.fullmatch(r"n_points\s*:\s*(\d+)", line)
                if not match:
                    raise DatasetError(f"{path}:{lineno}: malformed n_points line {line!r}")
                declared, declared_line = int(match.group(1)), lineno
            elif line == "{":
                if declared is None:
                    raise DatasetError(f"{path}:{lineno}: point list starts before any 'n_points:' header")
                inside = True
            elif not line.startswith("version"):
                raise DatasetError(f"{path}:{lineno}: unexpected header line {line!r}")
            continue
        if line == "}":
            inside = False
            break
        parts = line.split()
        try:
            if len(parts) != 2:
                raise ValueError
            point = (float(parts[0]), float(parts[1]))
        except ValueError:
            raise DatasetError(f"{path}:{lineno}: expected two numbers 'x y', got {line!r}") from None
        if not np.isfinite(point).all():
            raise DatasetError(f"{path}:{lineno}: non-finite coordinate {line!r}")
        points.append((np.nan, np.nan) if point == HIDDEN_POINT else (point[0] - origin, point[1] - origin))
    if declared is None:
        raise DatasetError(f"{path}:{max(len(lines), 1)}: file ends without an 'n_points:' header")
    if inside:
        raise DatasetError(f"{path}:{len(lines)}: file ends without the closing '}}'")
    if len(points) != declared:
        raise DatasetError(f"{path}:{declared_line}: n_points says {declared} but {len(points)} points are listed")
    return np.asarray(points, dtype=np.float32)


def read_manifest(root: str | Path) -> list[FaceRecord]:
    """Read a ``manifest.csv`` folder (the ../shared/data layout; its ``.pts`` are already 0-based pixel
    centres of each crop, as its README's "Coordinate convention" states, so nothing is subtracted)."""
    root = Path(root)
    manifest = root / "manifest.csv"
    records = []
    with manifest.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = {"image", "pts", "source"} - set(reader.fieldnames or [])
        if missing:
            raise DatasetError(f"{manifest}:1: header lacks column(s) {', '.join(sorted(missing))}")
        for lineno, row in enumerate(reader, start=2):
            pts = read_pts(root / row["pts"])
            declared = row.get("n_points")
            if declared and int(declared) != len(pts):
                raise DatasetError(f"{manifest}:{lineno}: n_points {declared} but {row['pts']} has {len(pts)}")
            scheme = _scheme_name(len(pts), manifest, lineno)
            records.append(FaceRecord(root / row["image"], pts, scheme, row["source"]))
    return records


def read_pts_folder(root: str | Path) -> list[FaceRecord]:
    """Every image under ``root`` with a same-stem ``.pts`` beside it (the 300-W/Menpo layout).

    ``source`` is the image's folder relative to ``root`` (``helen/testset`` → ``helen_testset``).
    The public files are 1-based; points come back 0-based (``PTS_FOLDER_ORIGIN`` subtracted).
    """
    root = Path(root)
    records = []
    for pts_path in sorted(root.rglob("*.pts")):
        image_path = next((pts_path.with_suffix(s) for s in IMAGE_SUFFIXES if pts_path.with_suffix(s).exists()), None)
        if image_path is None:
            raise DatasetError(f"{pts_path}: no image with the same name beside it")
        pts = read_pts(pts_path, PTS_FOLDER_ORIGIN)
        rel = pts_path.parent.relative_to(root).as_posix()
        source = rel.replace("/", "_") if rel != "." else root.name
        records.append(FaceRecord(image_path, pts, _scheme_name(len(pts), pts_path), source))
    if not records:
        raise DatasetError(f"{root}: no .pts files found (expected images with .pts beside them)")
    return records


def read_wflw(annotation_file: str | Path, image_root: str | Path | None = None) -> list[FaceRecord]:
    """Read a WFLW annotation file (``list_98pt_rect_attr_*.txt``).

    ``image_root`` defaults to ``WFLW_images`` beside the annotation folder, as the dataset unpacks
    (``WFLW/WFLW_annotations/list_98pt_rect_attr_train_test/*.txt`` and ``WFLW/WFLW_images/``).
    WFLW's coordinates are 0-based pixel positions (as mmpose and the WFLW tools read them), so they are
    taken as they are.
    """
    annotation_file = Path(annotation_file)
    if image_root is None:
        image_root = annotation_file.resolve().parent.parent.parent / "WFLW_images"
    image_root = Path(image_root)
    records = []
    with annotation_file.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 196 + 4 + 6 + 1:
                raise DatasetError(f"{annotation_file}:{lineno}: expected 207 fields (196 coordinates, 4 box, "
                                   f"6 attributes, image path), got {len(parts)}")
            try:
                pts = np.asarray(parts[:196], dtype=np.float32).reshape(98, 2)
            except ValueError:
                raise DatasetError(f"{annotation_file}:{lineno}: non-numeric coordinate") from None
            path = Path(parts[-1])
            records.append(FaceRecord(image_root / path, pts, "wflw98", f"wflw_{path.parts[0].split('--')[-1]}"
                                      if len(path.parts) > 1 else "wflw"))
    if not records:
        raise DatasetError(f"{annotation_file}: no annotation lines")
    return records


def read_dataset(path: str | Path) -> list[FaceRecord]:
    """Read any known layout, chosen from what ``path`` is (see the module docstring)."""
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"{path}: no such file or folder")
    if path.is_file():
        if path.suffix == ".txt":
            return read_wflw(path)
        raise DatasetError(f"{path}: unknown annotation file type (expected a WFLW .txt or a folder)")
    if (path / "manifest.csv").exists():
        return read_manifest(path)
    return read_pts_folder(path)


def iter_samples(records: list[FaceRecord]) -> Iterator[FaceSample]:
    """Decode records one by one (the (image, landmarks, scheme, source) stream)."""
    for record in records:
        yield record.load()


def _scheme_name(num_points: int, path: Path, lineno: int | None = None) -> str:
    try:
        return scheme_for_point_count(num_points).name
    except KeyError as exc:
        where = f"{path}:{lineno}" if lineno else str(path)
        raise DatasetError(f"{where}: {exc.args[0]}") from None


# --- the repository's train/validation split -------------------------------------------------

# The split of ../shared/data used everywhere (training, evaluation, benchmarks) is stored in
# ``core.paths.SPLIT_FILE``.

#: Sources of the ``val`` part: manual 300-W annotations. These 180 faces are the yardstick every model
#: version since v1 was measured on, so the rule that picks them never changes.
VALIDATION_SOURCES = ("300w_afw", "300w_helen_train")
#: Sources added in 2026-12 that hold out faces of their own (the ``val_new`` part), reported separately so
#: old and new numbers stay comparable: 300-W LFPW train, MERL-RAV (turned faces) and infants.
NEW_VALIDATION_SOURCES = ("300w_lfpw_train", "merl_rav_aflw", "infanface")
SPLIT_PARTS = ("train", "val", "val_new")
VALIDATION_PERCENT = 15
#: Photo-id families whose photos can be held out (the others are pseudo-labels, renderings or a handful).
_HELD_OUT_FAMILIES = ("afw", "300w_helen_train", "lfpw", "aflw", "infanface")


def photo_id(record: FaceRecord) -> str:
    """The original photo a face crop came from: two faces of one photo share it.

    300-W stems are ``<photo>_<k>``; the mmpose/dlib/COCO/WFLW crops are ``<photo>_face<k>``; the
    300W-LP renderings ``AFW_<photo>_<k>_<j>_face0`` come from AFW photos and share their id; both LFPW
    folders number the same photos ``image_NNNN``; MERL-RAV stems are the AFLW image id.
    """
    stem = record.image_path.stem
    rendered = re.fullmatch(r"AFW_(\d+)_\d+_\d+_face\d+", stem)
    if rendered:
        return f"afw:{rendered.group(1)}"
    base = re.sub(r"_face\d+$", "", stem)
    if record.source.startswith("300w_lfpw_train"):
        return f"lfpw:{base}"
    base = re.sub(r"_\d+$", "", base) if record.source.startswith("300w_") else base
    family = {"300w_afw": "afw", "merl_rav_aflw": "aflw"}.get(record.source, record.source)
    return f"{family}:{base}"


def is_validation_photo(pid: str) -> bool:
    """Deterministic rule: a photo is held out if its SHA-1 falls in the first VALIDATION_PERCENT %."""
    family = pid.split(":", 1)[0]
    if family not in _HELD_OUT_FAMILIES:
        return False
    return int(hashlib.sha1(pid.encode()).hexdigest()[:8], 16) % 100 < VALIDATION_PERCENT


def split_part(record: FaceRecord) -> str:
    """``val`` / ``val_new`` for a held-out photo of a validation source, else ``train``."""
    if not is_validation_photo(photo_id(record)):
        return "train"
    if record.source in VALIDATION_SOURCES:
        return "val"
    return "val_new" if record.source in NEW_VALIDATION_SOURCES else "train"


def make_split(records: list[FaceRecord]) -> dict[str, list[str]]:
    """Apply the rule to records: ``{"train": [keys], "val": [keys], "val_new": [keys]}`` (sorted)."""
    split: dict[str, list[str]] = {part: [] for part in SPLIT_PARTS}
    for record in records:
        split[split_part(record)].append(record.key)
    return {k: sorted(v) for k, v in split.items()}


def load_split(path: str | Path = SPLIT_FILE) -> dict[str, set[str]]:
    """The stored split as sets of record keys (a file without ``val_new`` has an empty one)."""
    with Path(path).open(encoding="utf-8") as f:
        data = json.load(f)
    return {part: set(data.get(part, [])) for part in SPLIT_PARTS}


def select_split(records: list[FaceRecord], part: str, split: dict[str, set[str]] | None = None) -> list[FaceRecord]:
    """The records of one part (``train``, ``val`` or ``val_new``) of the stored split."""
    split = split if split is not None else load_split()
    if part not in split:
        raise ValueError(f"unknown split part {part!r}; use one of {', '.join(SPLIT_PARTS)}")
    return [r for r in records if r.key in split[part]]
