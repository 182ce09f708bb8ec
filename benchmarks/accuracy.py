"""Accuracy, side by side on the validation split: our model, the direct-regression baseline and dlib's
68-point shape predictor, all through one protocol.

    python -m benchmarks.accuracy [--model FILE] [--baseline FILE] [--data DIR] [--split val|val_new] [--limit N]

Runs without torch (the ``bench`` extra): the protocol is ``core.offline.evaluation``, and ``--model`` /
``--baseline`` are exported ``.onnx`` files (a training checkpoint works where torch is installed).

Protocol (``core.offline.evaluation``): every face is cropped from its ground-truth landmark box with the
crop policy, the method predicts 68 points in the crop, they are mapped back, and NME is normalised
by the outer-eye-corner (inter-ocular) distance; FR@0.1 and AUC@0.1 follow from it. dlib enters the
same protocol as a predictor of the same crops. It needs a face rectangle, and its predictor was
trained on its own HOG detector's boxes, which are not landmark boxes (on a turned face the detector
box sits over the visible features, the landmark box also spans the far jaw line), so dlib gets:

* *GT box in its detector's framing*: the ground-truth box mapped to where dlib's detector puts its
  box, by a median fit (``tools.calibrate_detector.fit_calibration``) on training faces where it fires;
* *its own detector's box*: dlib's detection in the crop where it overlaps the ground truth (its best
  case; faces it misses fall back to the row above).

Given the plain landmark square instead, dlib's cascade starts from a misplaced mean shape on turned
faces and fails on many of them, which would say more about the box than about dlib.

MediaPipe Face Mesh is left out: its 468-point topology has no exact iBUG-68 equivalent (the jaw
line in particular: the mesh's silhouette points do not sit where 300-W annotators put 0-16), so
any mapping would measure the mapping as much as the model.
"""
from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from benchmarks.peers import DlibPeer, dlib_unavailable_reason
from benchmarks.reporting import (Section, append_section, benchmark_parser, command_line,
                                  markdown_table)
from core.paths import SHARED_DATA as DEFAULT_DATA
from core.offline.datasets import DatasetError, FaceRecord
from core.detection import BoxCalibration, Detection, best_match, pad_image
from core.offline.evaluation import AnchorPredictor, OnnxPredictor, evaluate, load_records, plot_ced, summarise
from core.geometry import Box, CROP_MARGIN, INPUT_SIZE, crop_from_landmarks, landmark_box, transform_points, \
    warp_to_crop
from core.runtime import ModelError
from tools.calibrate_detector import fit_calibration

log = logging.getLogger("benchmarks.accuracy")

DEFAULT_PLOT = Path(__file__).resolve().parent / "ced_accuracy.png"
#: What the table says about where a method's training data overlaps this split.
DLIB_TRAINING_NOTE = ("dlib's shape_predictor_68_face_landmarks was trained on iBUG 300-W, which includes the "
                      "AFW and HELEN training images this validation split is drawn from: dlib has seen these "
                      "photos (and their 68-point annotations), so its row is optimistic")


@dataclass
class DlibCropPredictor:
    """dlib's predictor behind the ``core.offline.evaluation.AnchorPredictor`` protocol (one anchor,
    confidence 1), so ``core.offline.evaluation.evaluate`` crops, maps back and scores it like ours.

    In a policy crop the ground-truth landmark box is the centred square of side ``S / margin``;
    ``framing`` maps it to dlib's detector-style square (None: use the square as is). With
    ``use_detector`` dlib's own detector box is used where it overlaps that box (dlib's best case),
    and ``detector_misses`` counts the faces that fell back to the ground-truth-derived box.
    """

    peer: DlibPeer
    framing: BoxCalibration | None
    scheme: str = "ibug68"
    input_size: int = INPUT_SIZE
    crop_margin: float = CROP_MARGIN
    use_detector: bool = False
    detector_misses: int = 0

    def rectangle(self) -> Box:
        """The ground-truth-derived rectangle in crop pixels."""
        centre = (self.input_size - 1) / 2.0
        side = self.input_size / self.crop_margin
        truth = Box(centre - side / 2, centre - side / 2, centre + side / 2, centre + side / 2)
        return truth if self.framing is None else detector_box(truth, self.framing)

    def predict(self, crops_bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        points = []
        for crop in crops_bgr:
            gray = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
            box = self.rectangle()
            if self.use_detector:
                found = self._detect(gray, box)
                self.detector_misses += found is None
                box = found or box
            points.append(self.peer.fit(gray, box))
        return np.stack(points)[:, None].astype(np.float32), np.ones((len(points), 1), np.float32)

    def _detect(self, gray: np.ndarray, expected: Box) -> Box | None:
        """dlib's detection overlapping ``expected``, found in the crop padded as in the framing fit."""
        padded, border = pad_image(gray)
        found = best_match([Detection(shift_box(b, -border), 1.0) for b in self.peer.detect(padded)], expected)
        return None if found is None else found.box


def shift_box(box: Box, offset: float) -> Box:
    return Box(box.x0 + offset, box.y0 + offset, box.x1 + offset, box.y1 + offset)


def detector_box(truth: Box, calibration: BoxCalibration) -> Box:
    """Inverse of ``calibration.apply`` for a square detector box (dlib's are square): the detector
    box whose calibrated landmark box is ``truth``'s centre and longer side."""
    side = truth.size / calibration.scale
    cx = truth.center[0] - calibration.offset_x * side
    cy = truth.center[1] - calibration.offset_y * side
    return Box(cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)


def fit_dlib_framing(peer: DlibPeer, records: list[FaceRecord], input_size: int,
                     margin: float) -> tuple[BoxCalibration, int]:
    """Where dlib's detector frames a face relative to its landmark box, fitted on policy crops of
    ``records`` (padded, as core.detection's calibration does, so faces do not touch the edge);
    returns the fit and the number of faces the detector found."""
    detected, truths = [], []
    for record in tqdm(records, desc="dlib framing", unit="face", leave=False):
        sample = record.load()
        matrix = crop_from_landmarks(sample.landmarks, input_size, margin)
        crop = warp_to_crop(sample.image, matrix, input_size)
        padded, border = pad_image(crop)
        truth = shift_box(landmark_box(transform_points(sample.landmarks, matrix)), border)
        found = best_match([Detection(b, 1.0) for b in peer.detect(cv2.cvtColor(padded, cv2.COLOR_BGR2GRAY))], truth)
        if found is not None:
            detected.append(found.box)
            truths.append(truth)
    if not detected:
        raise RuntimeError("dlib's detector found none of the calibration faces")
    calibration, _ = fit_calibration(detected, truths)
    return calibration, len(detected)


def open_model(path: str) -> AnchorPredictor:
    """An exported file through core.runtime; a training checkpoint only where torch is installed."""
    if Path(path).suffix.lower() == ".onnx":
        return OnnxPredictor.from_file(path, "cpu")
    from training.predictors import open_predictor  # torch: not part of the bench extra

    return open_predictor(path, "cpu")


def build_parser() -> argparse.ArgumentParser:
    p = benchmark_parser("benchmarks.accuracy", __doc__)
    p.add_argument("--baseline", default="",
                   help="direct-regression baseline to compare with, .onnx (or a training checkpoint where torch "
                        "is installed); default: none")
    p.add_argument("--data", default=str(DEFAULT_DATA), help="shared data folder (its validation split is used)")
    p.add_argument("--split", choices=["val", "val_new"], default="val",
                   help="val: the 180 300-W faces every version is measured on; val_new: LFPW/MERL-RAV/infant faces")
    p.add_argument("--limit", type=int, help="evaluate only the first N validation faces (smoke runs)")
    p.add_argument("--calibration-faces", type=int, default=300,
                   help="training faces used to fit dlib's detector framing")
    p.add_argument("--no-dlib", action="store_true", help="leave dlib out even if it is installed")
    p.add_argument("--plot", default=str(DEFAULT_PLOT), help="CED plot with every method's curve")
    return p


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        ours = open_model(args.model)
        val = load_records(args.data, args.split, ours.scheme)[:args.limit]
        baseline = open_model(args.baseline) if args.baseline else None
    except (DatasetError, ModelError, ValueError, OSError, ImportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not val:
        print(f"error: no {ours.scheme} validation faces in {args.data}", file=sys.stderr)
        return 2
    methods = {f"ours ({Path(args.model).name})": ours}
    if baseline is not None:
        methods[f"direct-regression baseline ({Path(args.baseline).name})"] = baseline
    notes = []
    if args.no_dlib:
        notes.append("dlib left out (--no-dlib)")
    elif (reason := dlib_unavailable_reason()) is not None:
        notes.append(f"dlib skipped: {reason}")
    elif ours.scheme != "ibug68":
        notes.append(f"dlib skipped: it predicts iBUG 68 points, the model's scheme is {ours.scheme}")
    else:
        peer = DlibPeer()
        train = load_records(args.data, "train", ours.scheme)[:args.calibration_faces]
        framing, found = fit_dlib_framing(peer, train, ours.input_size, ours.crop_margin)
        methods["dlib 68-pt, GT box in its detector's framing"] = DlibCropPredictor(peer, framing, ours.scheme,
                                                                                     ours.input_size, ours.crop_margin)
        own = DlibCropPredictor(peer, framing, ours.scheme, ours.input_size, ours.crop_margin, use_detector=True)
        methods["dlib 68-pt, its own detector's box"] = own
        notes += [f"dlib framing fitted on {found} of {len(train)} training faces where its detector fired: "
                  f"box side = {1 / framing.scale:.3f} x landmark box, centre shift "
                  f"({-framing.offset_x:+.3f}, {-framing.offset_y:+.3f}) x side", DLIB_TRAINING_NOTE]
    nmes = {}
    rows = []
    for name, predictor in methods.items():
        result = evaluate(predictor, val)
        nmes[name] = result.nmes
        s = summarise(result.nmes)
        rows.append([name, str(s.n), f"{100 * s.nme:.2f}", f"{100 * s.fr:.2f}", f"{s.auc:.4f}"])
        if isinstance(predictor, DlibCropPredictor) and predictor.use_detector:
            notes.append(f"dlib's own detector missed {predictor.detector_misses} of {len(val)} validation faces; "
                         "those used the GT box in its detector's framing")
    table = markdown_table(["method", "faces", "NME % (inter-ocular)", "FR@0.1 %", "AUC@0.1"], rows)
    plot_ced(nmes, args.plot, f"{Path(args.data).name}: validation split ({len(val)} faces)")
    notes += [f"data: {args.data}, validation split ({len(val)} faces: {', '.join(sorted({r.source for r in val}))})",
              "MediaPipe Face Mesh not included: its 468-point mesh has no exact iBUG-68 equivalent "
              "(notably the jaw contour), so a mapped score would measure the mapping",
              f"CED plot: {args.plot}"]
    print(table)
    for note in notes:
        print(f"note: {note}")
    section = Section("Accuracy", command_line("benchmarks.accuracy", argv if argv is not None else sys.argv[1:]),
                      [table], notes)
    print(f"appended to {append_section(section, args.results)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
