"""Check a loaded session against the model contract (:mod:`core.runtime.contract`): metadata, declared graph signature, and what
one probe run really produces. Every violation is named, so a bad file fails at load time with one
:class:`ModelError` instead of as a shape error deep in the frame loop.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, fields
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from core.paths import PROBE_CROP_PATH
from core.runtime.contract import INPUT_NAME, OUTPUT_CONFIDENCE, OUTPUT_LANDMARKS, ModelError, ModelMetadata
from core.runtime.model_input import to_model_input
from core.schemes import get_scheme
from core.tracker import TrackerConfig

#: Batch sizes the pipeline runs the model at: one crop per tracked or newly detected face, up to the
#: tracker's face limit. A model can break at one size only (NaN at batch 1 from a statistic over the
#: batch axis, e.g. BatchNorm exported in training mode), so the load check runs every one.
PIPELINE_BATCH_SIZES = tuple(range(1, TrackerConfig().max_faces + 1))

#: A real face crop (run-time crop policy, from the demo clip; ``python -m tools.probe_crop``).


@dataclass(frozen=True, kw_only=True)
class ModelInfo(ModelMetadata):
    """What a model file says about itself (metadata) plus what its graph really produces."""

    path: Path
    num_anchors: int
    num_points: int


def read_info(path: Path, session: ort.InferenceSession) -> ModelInfo:
    """The file's :class:`ModelInfo`, or a :class:`ModelError` listing every contract violation."""
    meta = ModelMetadata.from_props(dict(session.get_modelmeta().custom_metadata_map), path)
    problems: list[str] = []
    num_anchors, num_points = _check_signature(session, meta.input_size, problems)
    expected_anchors = meta.num_templates * meta.grid * meta.grid
    if num_anchors and num_anchors != expected_anchors:
        problems.append(f"outputs have M={num_anchors} anchors but metadata says num_templates*grid*grid = "
                        f"{meta.num_templates}*{meta.grid}*{meta.grid} = {expected_anchors}")
    scheme = get_scheme(meta.scheme)
    if num_points and num_points != scheme.num_points:
        problems.append(f"outputs have L={num_points} landmarks but scheme {scheme.name} has {scheme.num_points}")
    if problems:
        raise ModelError(f"{path} breaks the AnchorFace model contract: " + "; ".join(problems))
    return ModelInfo(**{f.name: getattr(meta, f.name) for f in fields(ModelMetadata)}, path=path,
                     num_anchors=num_anchors, num_points=num_points)


def _check_signature(session: ort.InferenceSession, input_size: int, problems: list[str]) -> tuple[int, int]:
    """Check input ``image`` float [N,3,S,S] and the two outputs; return (M, L), or (0, 0) when unknown.

    Exporters often leave output dims symbolic (torch names them ``Sigmoid..._dim_1``), so the
    declared shapes are checked where they are static and the real M and L come from one probe run —
    which also proves the graph runs and warms the session up before the first frame.
    """
    inputs = session.get_inputs()
    names = [i.name for i in inputs]
    input_ok = False
    if names != [INPUT_NAME]:
        problems.append(f"the graph must have exactly one input named {INPUT_NAME!r}, it has {names}")
    else:
        spec = inputs[0]
        want = f"[N, 3, {input_size}, {input_size}]"
        if spec.type != "tensor(float)":
            problems.append(f"input {INPUT_NAME!r} must be float32, it is {spec.type}")
        if len(spec.shape) != 4:
            problems.append(f"input {INPUT_NAME!r} must be {want}, it is {spec.shape} (rank {len(spec.shape)})")
        elif spec.shape[1] != 3 or list(spec.shape[2:]) != [input_size, input_size]:
            problems.append(f"input {INPUT_NAME!r} must be {want} (input_size from metadata), it is {spec.shape}")
        else:
            input_ok = spec.type == "tensor(float)"

    outputs = {o.name: o for o in session.get_outputs()}
    absent = [n for n in (OUTPUT_LANDMARKS, OUTPUT_CONFIDENCE) if n not in outputs]
    if absent:
        problems.append(f"output(s) {', '.join(absent)} missing (the graph has {sorted(outputs)})")
        return 0, 0
    declared_ok = True
    for name, rank, want in ((OUTPUT_LANDMARKS, 4, "[N, M, L, 2]"), (OUTPUT_CONFIDENCE, 2, "[N, M]")):
        spec = outputs[name]
        if spec.type != "tensor(float)":
            problems.append(f"output {name!r} must be float32, it is {spec.type}")
        shape = spec.shape
        if len(shape) != rank or (rank == 4 and isinstance(shape[3], int) and shape[3] != 2):
            problems.append(f"output {name!r} must be {want}, it is {shape}")
            declared_ok = False
    if not (input_ok and declared_ok):
        return 0, 0
    return _probe_outputs(session, input_size, outputs, problems)


@functools.lru_cache(maxsize=4)
def probe_crop(input_size: int) -> np.ndarray:
    """The real face crop of :data:`PROBE_CROP_PATH` as uint8 BGR ``[S, S, 3]`` (resized if S is not 224)."""
    crop = cv2.imread(str(PROBE_CROP_PATH), cv2.IMREAD_COLOR)
    if crop is None:
        raise FileNotFoundError(f"{PROBE_CROP_PATH} is missing or unreadable; regenerate it with "
                                "`python -m tools.probe_crop`")
    if crop.shape[:2] != (input_size, input_size):
        crop = cv2.resize(crop, (input_size, input_size), interpolation=cv2.INTER_AREA)
    return crop


def probe_batch(input_size: int, size: int = 2) -> np.ndarray:
    """A load-time probe: ``[size, 3, S, S]`` model input of the real face crop, then a blank crop, and
    so on alternately.

    The blank alone hides models that break only on real pixels; two crops and more also prove the
    batch axis is dynamic, as every frame with several faces needs.
    """
    crop = probe_crop(input_size)
    return to_model_input(np.stack([crop if i % 2 == 0 else np.zeros_like(crop) for i in range(size)]))


def _probe_outputs(session: ort.InferenceSession, input_size: int, outputs: dict,
                   problems: list[str]) -> tuple[int, int]:
    """Run :func:`probe_batch` and check what really comes out: shapes, finiteness, confidence range."""
    batch = probe_batch(input_size)
    try:
        landmarks, confidence = session.run([OUTPUT_LANDMARKS, OUTPUT_CONFIDENCE], {INPUT_NAME: batch})
    except Exception as exc:  # onnxruntime's own exception types
        problems.append(f"running the graph on a [2, 3, {input_size}, {input_size}] batch (a real face crop and a "
                        f"blank one) failed: {str(exc).strip().splitlines()[0]}")
        return 0, 0
    if landmarks.ndim != 4 or landmarks.shape[0] != 2 or landmarks.shape[3] != 2:
        problems.append(f"output {OUTPUT_LANDMARKS!r} must be [N, M, L, 2], a batch of 2 gave {list(landmarks.shape)}")
        return 0, 0
    num_anchors, num_points = landmarks.shape[1], landmarks.shape[2]
    if confidence.shape != (2, num_anchors):
        problems.append(f"output {OUTPUT_CONFIDENCE!r} must be [N, M] with M={num_anchors} like "
                        f"{OUTPUT_LANDMARKS!r}, a batch of 2 gave {list(confidence.shape)}")
    non_finite = [f"{name} ({int((~np.isfinite(v)).sum())} of {v.size} values)"
                  for name, v in ((OUTPUT_LANDMARKS, landmarks), (OUTPUT_CONFIDENCE, confidence))
                  if not np.isfinite(v).all()]
    if non_finite:
        problems.append(f"outputs are not finite on a real face crop: NaN or inf in {' and '.join(non_finite)} "
                        "(broken weights or export; this model cannot track)")
    elif confidence.shape == (2, num_anchors) and not ((confidence >= 0) & (confidence <= 1)).all():
        problems.append(f"output {OUTPUT_CONFIDENCE!r} must lie in (0, 1), the probe crops gave values from "
                        f"{confidence.min():.3g} to {confidence.max():.3g} (logits exported without the sigmoid?)")
    for name, real in ((OUTPUT_LANDMARKS, landmarks.shape), (OUTPUT_CONFIDENCE, confidence.shape)):
        declared = outputs[name].shape
        if any(isinstance(d, int) and d != r for d, r in zip(declared[1:], real[1:])):
            problems.append(f"output {name!r} is declared {declared} but a batch of 2 gave {list(real)}")
    if not problems:
        _probe_batch_sizes(session, input_size, problems)
    return num_anchors, num_points


def _probe_batch_sizes(session: ort.InferenceSession, input_size: int, problems: list[str]) -> None:
    """Run every size of :data:`PIPELINE_BATCH_SIZES` but 2 (checked above) and name each that fails,
    returns the wrong batch length or any NaN or inf."""
    for size in PIPELINE_BATCH_SIZES:
        if size == 2:
            continue
        try:
            outputs = session.run([OUTPUT_LANDMARKS, OUTPUT_CONFIDENCE], {INPUT_NAME: probe_batch(input_size, size)})
        except Exception as exc:  # onnxruntime's own exception types
            problems.append(f"running the graph on a batch of {size} failed: {str(exc).strip().splitlines()[0]}")
            continue
        if any(len(v) != size for v in outputs):
            problems.append(f"a batch of {size} crops gave outputs of {[len(v) for v in outputs]} crops")
        elif not all(np.isfinite(v).all() for v in outputs):
            problems.append(f"outputs are not finite (NaN or inf) at batch size {size}, the pipeline's batch "
                            f"for {size} face{'s' if size > 1 else ''} (a statistic over the batch axis, such as "
                            "BatchNorm exported in training mode?); this model cannot track")
