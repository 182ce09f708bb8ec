"""Cut ``assets/probe_face.png``: one real face crop the runtime feeds every model at load time.

    python -m tools.probe_crop

A blank crop hides models that break only on real pixels (NaN from a bad normalisation or a broken
weight that zeros cancel out), so :mod:`core.runtime.verify` probes with this crop as well. It is
the first face the Haar cascade finds in the demo clip, cut with the run-time crop policy
(calibrated detector box → :func:`core.geometry.crop_from_box`), so it looks like a frame's crop.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from core.paths import DEMO_CLIP, PROBE_CROP_PATH
from core.detection import HaarDetector, calibrated_box
from core.geometry import INPUT_SIZE, crop_from_box, warp_to_crop



def probe_crop(video: Path = DEMO_CLIP, max_frames: int = 100) -> np.ndarray:
    """The policy crop (uint8 BGR ``[224, 224, 3]``) of the first face found in ``video``."""
    detector = HaarDetector()
    capture = cv2.VideoCapture(str(video))
    try:
        for _ in range(max_frames):
            ok, frame = capture.read()
            if not ok:
                break
            found = detector.detect(frame)
            if found:
                best = max(found, key=lambda d: d.score)
                return warp_to_crop(frame, crop_from_box(calibrated_box(best, detector.name)), INPUT_SIZE)
    finally:
        capture.release()
    raise RuntimeError(f"no face found in the first {max_frames} frames of {video}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.probe_crop", description=__doc__.split("\n\n")[0])
    parser.add_argument("--video", type=Path, default=DEMO_CLIP, help=f"clip to cut from (default: {DEMO_CLIP})")
    parser.add_argument("--out", type=Path, default=PROBE_CROP_PATH, help=f"PNG to write (default: {PROBE_CROP_PATH})")
    args = parser.parse_args(argv)
    if not cv2.imwrite(str(args.out), probe_crop(args.video)):
        print(f"error: cannot write {args.out}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
