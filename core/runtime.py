"""Load an exported AnchorFace ONNX file, check it against the model contract, and run it.

The file is self-describing (input size, scheme, anchors, crop margin live in its metadata), so the
runtime trusts nothing but the file: every contract violation is reported in one :class:`ModelError`
that names the problem, instead of surfacing later as a shape error deep in the frame loop.

Only onnxruntime is needed here (the ``onnx`` package is a training extra), so the few facts ONNX
Runtime does not expose — is this an ONNX file at all, is it cut short, which opset — are read from
the top level of the protobuf wire format directly.

Execution providers: ``onnxruntime-gpu`` *lists* CUDA and TensorRT even on machines without a GPU,
and a CUDA session there logs an error and silently runs on CPU. So availability is probed cheaply
(driver, device count, runtime libraries) before CUDA is ever tried, and the provider reported is
the one the session really got.
"""
from __future__ import annotations

import contextlib
import ctypes
import functools
import io
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from core.decode import DEFAULT_THRESHOLD, Aggregated, aggregate
from core.schemes import SCHEMES, LandmarkScheme, get_scheme

log = logging.getLogger(__name__)

#: The model the app ships with (written by the training export).
DEFAULT_MODEL_PATH = Path(__file__).resolve().parent.parent / "assets" / "anchorface_ibug68.onnx"

#: Versions of the ``anchorface_format`` metadata key this runtime reads.
SUPPORTED_FORMATS = ("1",)
MIN_OPSET = 17
INPUT_NAME = "image"
OUTPUT_LANDMARKS = "anchor_landmarks"
OUTPUT_CONFIDENCE = "anchor_confidence"
MODEL_TYPES = ("anchorface", "direct")
REQUIRED_METADATA = ("anchorface_format", "model_type", "scheme", "input_size", "crop_margin", "num_templates",
                     "grid", "anchor_area", "name", "training_data", "val_nme", "created")
DEVICES = ("auto", "cpu", "cuda")

#: Where TensorRT keeps built engines, so only the first start on a machine pays the build (minutes).
TENSORRT_CACHE = Path.home() / ".cache" / "anchorface_live" / "tensorrt"

_PROVIDER_NAMES = {"TensorrtExecutionProvider": "TensorRT", "CUDAExecutionProvider": "CUDA",
                   "CPUExecutionProvider": "CPU"}


class ModelError(ValueError):
    """The model file is missing, unreadable or breaks the model contract; the message says which."""


@dataclass(frozen=True)
class ModelInfo:
    """What a model file says about itself (metadata) and what its graph declares (shapes)."""

    path: Path
    name: str
    model_type: str
    scheme: str
    input_size: int
    crop_margin: float
    num_templates: int
    grid: int
    anchor_area: float
    num_anchors: int
    num_points: int
    training_data: str
    val_nme: float | None
    format_version: str
    created: str


def to_model_input(crops: np.ndarray) -> np.ndarray:
    """The model-file input convention in one place: uint8 BGR ``[N, S, S, 3]`` → float32 RGB
    ``[N, 3, S, S]`` in 0..1. Run time, evaluation of checkpoints, export checks and training all
    use it, so none can drift from the others.

    The channel flip and the transpose are strided views, so the only real work is the single
    multiply that writes the contiguous float tensor.
    """
    n, h, w, _ = crops.shape
    out = np.empty((n, 3, h, w), dtype=np.float32)
    np.multiply(crops[..., ::-1].transpose(0, 3, 1, 2), np.float32(1.0 / 255.0), out=out, casting="unsafe")
    return out


class LandmarkModel:
    """One ONNX Runtime session, created once and reused for every batch of crops."""

    def __init__(self, session: ort.InferenceSession, info: ModelInfo, provider: str) -> None:
        self.session = session
        self.info = info
        self.provider = provider

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
        landmarks, confidence = self.session.run([OUTPUT_LANDMARKS, OUTPUT_CONFIDENCE], {INPUT_NAME: batch})
        return np.asarray(landmarks, np.float32), np.asarray(confidence, np.float32)

    def predict(self, crops: np.ndarray, strategy: str = "weighted",
                threshold: float = DEFAULT_THRESHOLD) -> Aggregated:
        """:meth:`run` followed by :func:`core.decode.aggregate`: one shape (crop pixels) per face."""
        return aggregate(*self.run(crops), strategy=strategy, threshold=threshold)


def load_model(path: str | Path = DEFAULT_MODEL_PATH, device: str = "auto",
               threads: int | None = None) -> LandmarkModel:
    """Open ``path`` on ``device`` ("auto": TensorRT/CUDA when they really work, else CPU).

    ``threads`` sets the intra-op thread count (default: the number of physical cores, since
    hyper-threads only add contention to convolution kernels).
    """
    if device not in DEVICES:
        raise ValueError(f"unknown device {device!r}; use one of {', '.join(DEVICES)}")
    path = Path(path)
    _check_file(path)
    providers = _providers_for(device)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads if threads else physical_cores()
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only: placement warnings are expected with GPU providers
    try:
        session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
    except Exception as exc:  # onnxruntime raises its own exception types, none exported stably
        raise ModelError(f"onnxruntime cannot load {path}: {str(exc).strip().splitlines()[0]}") from exc
    info = _read_info(path, session)
    provider = _PROVIDER_NAMES.get(session.get_providers()[0], session.get_providers()[0])
    if device == "cuda" and provider == "CPU":
        raise ModelError("CUDA requested but not available: onnxruntime fell back to CPU when creating the session")
    log.info("loaded %s (%s, %s, %d anchors) on %s with %d threads", path.name, info.name, info.scheme,
             info.num_anchors, provider, options.intra_op_num_threads)
    return LandmarkModel(session, info, provider)


def physical_cores() -> int:
    """Physical core count (Linux: distinct (package, core) pairs in /proc/cpuinfo), else logical CPUs."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return os.cpu_count() or 1
    cores = set()
    package = core = None
    for line in text.splitlines() + [""]:
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "physical id":
            package = value.strip()
        elif key == "core id":
            core = value.strip()
        elif not key:
            if core is not None:
                cores.add((package, core))
            package = core = None
    return len(cores) or os.cpu_count() or 1


# --- execution providers ----------------------------------------------------------------------

def _providers_for(device: str) -> list:
    if device == "cpu":
        return ["CPUExecutionProvider"]
    cuda_problem = cuda_unavailable_reason()
    if device == "cuda":
        if cuda_problem:
            raise ModelError(f"CUDA requested but not available: {cuda_problem}")
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    if cuda_problem:
        log.debug("CUDA not used: %s", cuda_problem)
        return ["CPUExecutionProvider"]
    providers: list = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    trt_problem = tensorrt_unavailable_reason()
    if trt_problem:
        log.debug("TensorRT not used: %s", trt_problem)
        return providers
    TENSORRT_CACHE.mkdir(parents=True, exist_ok=True)
    trt_options = {"trt_engine_cache_enable": True, "trt_engine_cache_path": str(TENSORRT_CACHE)}
    return [("TensorrtExecutionProvider", trt_options)] + providers


@functools.lru_cache(maxsize=1)
def cuda_unavailable_reason() -> str | None:
    """Why the CUDA provider cannot work here, or None if it should. Cheap: no session is created."""
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return "this onnxruntime build has no CUDA provider (install onnxruntime-gpu)"
    driver = _load_library("nvcuda.dll" if sys.platform == "win32" else "libcuda.so.1")
    if isinstance(driver, str):
        return f"no NVIDIA driver ({driver})"
    rc = driver.cuInit(0)
    if rc != 0:
        return f"the NVIDIA driver found no usable GPU (cuInit error {rc})"
    count = ctypes.c_int(0)
    if driver.cuDeviceGetCount(ctypes.byref(count)) != 0 or count.value < 1:
        return "the NVIDIA driver reports no CUDA device"
    # onnxruntime-gpu can load CUDA/cuDNN from the nvidia-* pip wheels; it prints what it cannot find.
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        with contextlib.suppress(Exception):
            ort.preload_dlls()
    log.debug("onnxruntime.preload_dlls: %s", printed.getvalue().strip() or "ok")
    major = _ort_cuda_major()
    names = ([f"cudart64_{major}.dll", f"cublasLt64_{major}.dll", "cudnn64_9.dll"] if sys.platform == "win32"
             else [f"libcudart.so.{major}", f"libcublasLt.so.{major}", "libcudnn.so.9"])
    for name in names:
        lib = _load_library(name)
        if isinstance(lib, str):
            return f"CUDA {major} / cuDNN 9 libraries that onnxruntime {ort.__version__} needs are missing ({lib})"
    return None


@functools.lru_cache(maxsize=1)
def tensorrt_unavailable_reason() -> str | None:
    """Why the TensorRT provider cannot work here (checked after CUDA), or None if it should."""
    if "TensorrtExecutionProvider" not in ort.get_available_providers():
        return "this onnxruntime build has no TensorRT provider"
    lib = _load_library("nvinfer_10.dll" if sys.platform == "win32" else "libnvinfer.so.10")
    return f"TensorRT 10 libraries not found ({lib})" if isinstance(lib, str) else None


def _ort_cuda_major() -> str:
    """CUDA major version this onnxruntime-gpu build links against (e.g. "13")."""
    try:
        from onnxruntime.capi import build_and_package_info
        return str(build_and_package_info.cuda_version).split(".")[0]
    except (ImportError, AttributeError):
        return "12"


def _load_library(name: str) -> ctypes.CDLL | str:
    """The loaded library, or the loader's error message (a reason to show, not an exception)."""
    try:
        return ctypes.CDLL(name)
    except OSError as exc:
        return str(exc)


# --- the file: ONNX at all? complete? which opset? -----------------------------------------------

#: Top-level ModelProto field numbers (onnx.proto): ir_version, producer_name/version, domain,
#: model_version, doc_string, graph, opset_import, metadata_props, training_info, functions, configuration.
_MODEL_FIELDS = {1, 2, 3, 4, 5, 6, 7, 8, 14, 20, 25, 26}
_GRAPH_FIELD, _OPSET_FIELD = 7, 8


class _Truncated(Exception):
    pass


def _check_file(path: Path) -> None:
    """Fail early, with a precise reason, on a file that is missing, not ONNX or cut short.

    Protobuf serialisers write fields in field-number order, so every ONNX file starts with
    ``ir_version`` (field 1, a varint): anything else is some other kind of file. A length that runs
    past the end of the file means the file was cut short.
    """
    if not path.exists():
        raise ModelError(f"model file not found: {path}")
    if not path.is_file():
        raise ModelError(f"model path is not a file: {path}")
    data = path.read_bytes()
    if not data:
        raise ModelError(f"{path} is empty (0 bytes), not an ONNX model")
    not_onnx = ModelError(f"{path} is not an ONNX model (it starts with {data[:12]!r}; an ONNX file starts with "
                          "its IR version)")
    if data[0] != 0x08:
        raise not_onnx
    fields: dict[int, list[bytes | int]] = {}
    pos = 0
    try:
        while pos < len(data):
            tag, pos = _varint(data, pos)
            field, wire = tag >> 3, tag & 7
            if field not in _MODEL_FIELDS or wire not in (0, 1, 2, 5):
                raise not_onnx
            if wire == 0:
                value, pos = _varint(data, pos)
            elif wire == 2:
                length, pos = _varint(data, pos)
                if pos + length > len(data):
                    raise _Truncated
                value, pos = data[pos:pos + length], pos + length
            else:
                size = 8 if wire == 1 else 4
                if pos + size > len(data):
                    raise _Truncated
                value, pos = int.from_bytes(data[pos:pos + size], "little"), pos + size
            fields.setdefault(field, []).append(value)
    except _Truncated:
        raise ModelError(f"{path} is truncated: the ONNX data stops at byte {len(data)} in the middle of a field "
                         "(incomplete download or copy?)") from None
    ir_version = fields[1][0]
    if not 1 <= int(ir_version) <= 100:
        raise not_onnx
    if _GRAPH_FIELD not in fields:
        raise ModelError(f"{path} has no graph: the ONNX file is incomplete (truncated?)")
    opsets = {}
    for entry in fields.get(_OPSET_FIELD, []):
        opsets.update([_opset_entry(entry)])  # type: ignore[arg-type]
    default = opsets.get("", opsets.get("ai.onnx"))
    if default is None:
        raise ModelError(f"{path} declares no ONNX opset: the file is incomplete (truncated?)")
    if default < MIN_OPSET:
        raise ModelError(f"{path} uses ONNX opset {default}; the model contract needs opset >= {MIN_OPSET}")


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data):
            raise _Truncated
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _opset_entry(data: bytes) -> tuple[str, int]:
    """OperatorSetIdProto: field 1 domain (string), field 2 version (varint)."""
    domain, version, pos = "", 0, 0
    while pos < len(data):
        tag, pos = _varint(data, pos)
        if tag == (1 << 3 | 2):
            length, pos = _varint(data, pos)
            domain, pos = data[pos:pos + length].decode("utf-8", "replace"), pos + length
        elif tag == (2 << 3 | 0):
            version, pos = _varint(data, pos)
        else:
            break
    return domain, version


# --- the contract: metadata and declared shapes ---------------------------------------------------

def _read_info(path: Path, session: ort.InferenceSession) -> ModelInfo:
    """Check metadata and graph signature together and report every violation in one message."""
    meta = dict(session.get_modelmeta().custom_metadata_map)
    missing = [k for k in REQUIRED_METADATA if k not in meta]
    if missing:
        raise ModelError(f"{path}: metadata_props lack required key(s) {', '.join(missing)} "
                         f"(the export must write all of: {', '.join(REQUIRED_METADATA)})")
    version = meta["anchorface_format"].strip()
    if version not in SUPPORTED_FORMATS:
        raise ModelError(f"{path}: anchorface_format {version!r} is not supported by this runtime "
                         f"(it reads version {', '.join(SUPPORTED_FORMATS)}); update the app or re-export")
    problems: list[str] = []

    def number(key: str, kind: type, positive: bool = True) -> float:
        try:
            value = kind(meta[key])
        except ValueError:
            problems.append(f"metadata {key}={meta[key]!r} is not a{'n integer' if kind is int else ' number'}")
            return 0
        if positive and not value > 0:
            problems.append(f"metadata {key}={meta[key]!r} must be positive")
        return value

    input_size = int(number("input_size", int))
    crop_margin = float(number("crop_margin", float))
    num_templates = int(number("num_templates", int))
    grid = int(number("grid", int))
    anchor_area = float(number("anchor_area", float))
    val_nme = float(number("val_nme", float, positive=False)) if meta["val_nme"].strip() else None
    model_type = meta["model_type"]
    if model_type not in MODEL_TYPES:
        problems.append(f"metadata model_type {model_type!r} is not one of {', '.join(MODEL_TYPES)}")
    elif model_type == "direct" and (num_templates, grid) != (1, 1):
        problems.append(f"a direct model has num_templates=1 and grid=1, got {num_templates} and {grid}")
    scheme = SCHEMES.get(meta["scheme"])
    if scheme is None:
        problems.append(f"metadata scheme {meta['scheme']!r} is unknown (known: {', '.join(sorted(SCHEMES))})")

    num_anchors, num_points = _check_signature(session, input_size, problems)
    if num_anchors and num_templates and grid and num_anchors != num_templates * grid * grid:
        problems.append(f"outputs have M={num_anchors} anchors but metadata says num_templates*grid*grid = "
                        f"{num_templates}*{grid}*{grid} = {num_templates * grid * grid}")
    if scheme is not None and num_points and num_points != scheme.num_points:
        problems.append(f"outputs have L={num_points} landmarks but scheme {scheme.name} has {scheme.num_points}")
    if problems:
        raise ModelError(f"{path} breaks the AnchorFace model contract: " + "; ".join(problems))
    return ModelInfo(path=path, name=meta["name"], model_type=model_type, scheme=meta["scheme"],
                     input_size=input_size, crop_margin=crop_margin, num_templates=num_templates, grid=grid,
                     anchor_area=anchor_area, num_anchors=num_anchors, num_points=num_points,
                     training_data=meta["training_data"], val_nme=val_nme, format_version=version,
                     created=meta["created"])


def _check_signature(session: ort.InferenceSession, input_size: int, problems: list[str]) -> tuple[int, int]:
    """Check input ``image`` float [N,3,S,S] and the two outputs; return (M, L), or (0, 0) when unknown.

    Exporters often leave output dims symbolic (torch names them ``Sigmoid..._dim_1``), so the
    declared shapes are checked where they are static and the real M and L come from one run on a
    blank batch — which also proves the graph runs and warms the session up before the first frame.
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
        elif spec.shape[1] != 3 or (input_size > 0 and list(spec.shape[2:]) != [input_size, input_size]):
            problems.append(f"input {INPUT_NAME!r} must be {want} (input_size from metadata), it is {spec.shape}")
        else:
            input_ok = spec.type == "tensor(float)" and input_size > 0

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


def _probe_outputs(session: ort.InferenceSession, input_size: int, outputs: dict,
                   problems: list[str]) -> tuple[int, int]:
    """Run one blank crop and check what really comes out against the declared shapes."""
    try:
        landmarks, confidence = session.run([OUTPUT_LANDMARKS, OUTPUT_CONFIDENCE],
                                            {INPUT_NAME: np.zeros((1, 3, input_size, input_size), np.float32)})
    except Exception as exc:  # onnxruntime's own exception types
        problems.append(f"running the graph on a blank [1, 3, {input_size}, {input_size}] batch failed: "
                        f"{str(exc).strip().splitlines()[0]}")
        return 0, 0
    if landmarks.ndim != 4 or landmarks.shape[0] != 1 or landmarks.shape[3] != 2:
        problems.append(f"output {OUTPUT_LANDMARKS!r} must be [N, M, L, 2], a batch of 1 gave {list(landmarks.shape)}")
        return 0, 0
    num_anchors, num_points = landmarks.shape[1], landmarks.shape[2]
    if confidence.shape != (1, num_anchors):
        problems.append(f"output {OUTPUT_CONFIDENCE!r} must be [N, M] with M={num_anchors} like "
                        f"{OUTPUT_LANDMARKS!r}, a batch of 1 gave {list(confidence.shape)}")
    elif not ((confidence >= 0) & (confidence <= 1)).all():
        problems.append(f"output {OUTPUT_CONFIDENCE!r} must lie in (0, 1), a blank crop gave values from "
                        f"{confidence.min():.3g} to {confidence.max():.3g} (logits exported without the sigmoid?)")
    for name, real in ((OUTPUT_LANDMARKS, landmarks.shape), (OUTPUT_CONFIDENCE, confidence.shape)):
        declared = outputs[name].shape
        if any(isinstance(d, int) and d != r for d, r in zip(declared[1:], real[1:])):
            problems.append(f"output {name!r} is declared {declared} but a batch of 1 gave {list(real)}")
    return num_anchors, num_points
