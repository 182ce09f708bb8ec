"""Open an exported AnchorFace ONNX file and run it: one session, created once, reused for every batch.

The file is self-describing (input size, scheme, anchors, crop margin live in its metadata), so
loading trusts nothing but the file: :func:`load_model` checks the bytes (:mod:`.onnx_file`), picks
the providers (:mod:`.providers`) and the file's precision (:mod:`.precision`), and validates the contract (:mod:`.contract`, checked by :mod:`.verify`) before the first frame.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnxruntime as ort

from core.paths import DEFAULT_MODEL_PATH
from core.decode import DEFAULT_THRESHOLD, Aggregated, aggregate
from core.runtime.contract import INPUT_NAME, OUTPUT_CONFIDENCE, OUTPUT_LANDMARKS, ModelError
from core.runtime.model_input import to_model_input
from core.runtime.verify import ModelInfo, read_info
from core.runtime.onnx_file import check_onnx_file
from core.runtime.precision import check_precision, file_sha256, int8_path
from core.runtime.providers import provider_used, providers_for
from core.runtime.threads import AdaptiveSession, session_options, thread_candidates
from core.schemes import LandmarkScheme, get_scheme

log = logging.getLogger(__name__)

class LandmarkModel:
    """One model's ONNX Runtime session(s), created once and reused for every batch of crops.

    On the CPU the model holds one session per candidate thread count and runs each batch on the
    one measured fastest right now (:class:`~.threads.AdaptiveSession`); outputs are identical.
    """

    def __init__(self, runner: AdaptiveSession, info: ModelInfo, provider: str) -> None:
        self.runner = runner
        self.info = info
        self.provider = provider

    @property
    def session(self) -> ort.InferenceSession:
        """The session the next batch runs on."""
        return self.runner.current

    @property
    def threads(self) -> int:
        """Intra-op threads of that session."""
        return self.runner.threads

    @property
    def scheme(self) -> LandmarkScheme:
        return get_scheme(self.info.scheme)

    @property
    def input_size(self) -> int:
        return self.info.input_size

    def preprocess(self, crops: np.ndarray) -> np.ndarray:
        """Validate uint8 BGR ``[N, S, S, 3]`` crops and convert them with :func:`to_model_input`."""
        crops = np.asarray(crops)
        s = self.info.input_size
        if crops.dtype != np.uint8 or crops.ndim != 4 or crops.shape[1:] != (s, s, 3):
            raise ValueError(f"crops must be uint8 BGR [N, {s}, {s}, 3] (what core.geometry.warp_to_crop gives), "
                             f"got {crops.dtype} {list(crops.shape)}")
        return to_model_input(crops)

    def run(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """All faces of a frame in one call: ``(anchor_landmarks [N, M, L, 2], anchor_confidence [N, M])``."""
        batch = self.preprocess(crops)
        if not len(batch):
            info = self.info
            return (np.zeros((0, info.num_anchors, info.num_points, 2), np.float32),
                    np.zeros((0, info.num_anchors), np.float32))
        landmarks, confidence = self.runner.run([OUTPUT_LANDMARKS, OUTPUT_CONFIDENCE], {INPUT_NAME: batch},
                                                len(batch))
        return np.asarray(landmarks, np.float32), np.asarray(confidence, np.float32)

    def predict(self, crops: np.ndarray, strategy: str = "weighted",
                threshold: float = DEFAULT_THRESHOLD) -> Aggregated:
        """:meth:`run` followed by :func:`core.decode.aggregate`: one shape (crop pixels) per face."""
        return aggregate(*self.run(crops), strategy=strategy, threshold=threshold)


def load_model(path: str | Path = DEFAULT_MODEL_PATH, device: str = "auto", threads: int | None = None,
               precision: str = "auto") -> LandmarkModel:
    """Open ``path`` on ``device`` ("auto": TensorRT/CUDA when they really work, else CPU).

    ``precision`` (:mod:`.precision`): "auto" runs the file's INT8 sibling instead when the model runs
    on the CPU and a sibling made from this very file exists, "fp32" the file given, "int8" the sibling
    or a :class:`ModelError`. Raises :class:`ModelError` for a bad file and its subclass
    :class:`~.providers.DeviceError` when the device cannot run it. ``threads`` fixes the intra-op
    thread count; by default a CPU model chooses between 1 and more threads by measuring while it runs
    (:mod:`.threads`).
    """
    path = Path(path)
    check_onnx_file(path)
    check_precision(precision)
    providers = providers_for(device)
    candidates = thread_candidates(threads)
    on_cpu = providers == ["CPUExecutionProvider"]
    if not on_cpu:
        candidates = candidates[:1]  # on a GPU the CPU threads only feed it
    sibling = int8_path(path)
    if precision == "int8" or (precision == "auto" and on_cpu and sibling.is_file()):
        try:
            return _open(sibling, providers, candidates, device, made_from=path)
        except ModelError as exc:
            if precision == "int8":
                raise
            log.warning("not using the INT8 sibling of %s: %s; running the fp32 file", path.name, exc)
    return _open(path, providers, candidates, device)


def _open(path: Path, providers: list, candidates: tuple[int, ...], device: str,
          made_from: Path | None = None) -> LandmarkModel:
    """One checked session on ``path``; with ``made_from``, ``path`` must be that file's INT8 sibling."""
    if made_from is not None:
        if not path.is_file():
            raise ModelError(f"{made_from.name} has no INT8 sibling ({path.name}); make one with "
                             f"python -m training.export --onnx {made_from} --int8")
        check_onnx_file(path)

    def build(count: int) -> ort.InferenceSession:
        return ort.InferenceSession(str(path), sess_options=session_options(count), providers=providers)

    try:
        session = build(candidates[0])
    except Exception as exc:  # onnxruntime raises its own exception types, none exported stably
        raise ModelError(f"onnxruntime cannot load {path}: {str(exc).strip().splitlines()[0]}") from exc
    provider = provider_used(session, device)
    info = read_info(path, session)
    if made_from is not None and info.quantized_from != file_sha256(made_from):
        raise ModelError(f"{path.name} was not quantised from this {made_from.name} (its recorded SHA-256 "
                         f"differs: a stale sibling); re-run python -m training.export --onnx {made_from} --int8")
    log.info("loaded %s (%s, %s, %d anchors) on %s, intra-op threads %s", path.name, info.name, info.scheme,
             info.num_anchors, provider, " or ".join(map(str, candidates)))
    return LandmarkModel(AdaptiveSession(session, candidates, build), info, provider)
