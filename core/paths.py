"""Where the shipped assets and the shared data are, worked out in one place.

The repository root is this package's parent (also for an editable install); the shared annotated data
lives beside the repository (``../shared/data``) on the project's machines and is absent elsewhere, so
every caller that needs it checks that it exists.
"""
from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
ASSETS = REPO_ROOT / "assets"

#: The model the app ships with (written by the training export).
DEFAULT_MODEL_PATH = ASSETS / "anchorface_ibug68.onnx"
#: An optional model whose eyelid points follow blinks, at some cost in overall accuracy (the model card's
#: "v5.1"): a custom model to load in the settings dialog or with ``--model``.
BLINK_MODEL_PATH = ASSETS / "anchorface_ibug68_blinks.onnx"
#: The clip played when there is no camera (Pexels licence).
DEMO_CLIP = ASSETS / "demo.mp4"
#: A real face crop the model loader probes every model with (``python -m tools.probe_crop``).
PROBE_CROP_PATH = ASSETS / "probe_face.png"
#: The face detectors' box → landmark-box calibration (``python -m tools.calibrate_detector``).
DETECTOR_CALIBRATION = ASSETS / "detector_calibration.json"
#: The fixed train/validation split of the shared data (``core.offline.datasets``).
SPLIT_FILE = ASSETS / "split.json"
#: The 3D mean face the head pose is fitted to (``python -m tools.mean_face``).
MEAN_FACE_3D = ASSETS / "mean_face_3d_ibug68.npy"

#: The shared annotated data beside the repository (photos, landmarks, clips).
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
SHARED_VIDEOS = SHARED_DATA / "video"
