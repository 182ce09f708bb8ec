"""Which execution providers a session gets, and why not CUDA or TensorRT when they are not used.

``onnxruntime-gpu`` *lists* CUDA and TensorRT even on machines without a GPU, and a CUDA session
there logs an error and silently runs on CPU. So availability is probed cheaply (driver, device
count, runtime libraries) before CUDA is ever tried; a CUDA request that cannot be met raises
:class:`DeviceError` — a device problem, not a bad model file.
"""
from __future__ import annotations

import contextlib
import ctypes
import functools
import io
import logging
import sys
from pathlib import Path

import onnxruntime as ort

from core.runtime.contract import ModelError

log = logging.getLogger(__name__)

DEVICES = ("auto", "cpu", "cuda")

#: Where TensorRT keeps built engines, so only the first start on a machine pays the build (minutes).
TENSORRT_CACHE = Path.home() / ".cache" / "anchorface_live" / "tensorrt"

PROVIDER_NAMES = {"TensorrtExecutionProvider": "TensorRT", "CUDAExecutionProvider": "CUDA",
                  "CPUExecutionProvider": "CPU"}


class DeviceError(ModelError):
    """The requested device cannot run the model here (e.g. ``cuda`` without a working CUDA).

    A :class:`ModelError` subclass so every caller that handles an unusable model handles it too;
    callers that can say "device problem" instead of "invalid model" catch it first.
    """


def providers_for(device: str) -> list:
    """The provider list for ``device``: ``cpu``, ``cuda`` (or :class:`DeviceError`), or ``auto``
    (TensorRT and CUDA only when their libraries really load, then CPU)."""
    if device not in DEVICES:
        raise ValueError(f"unknown device {device!r}; use one of {', '.join(DEVICES)}")
    if device == "cpu":
        return ["CPUExecutionProvider"]
    cuda_problem = cuda_unavailable_reason()
    if device == "cuda":
        if cuda_problem:
            raise DeviceError(f"CUDA requested but not available: {cuda_problem}")
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


def provider_used(session: ort.InferenceSession, device: str) -> str:
    """The short name of the provider the session really got; :class:`DeviceError` if ``cuda`` fell back."""
    first = session.get_providers()[0]
    provider = PROVIDER_NAMES.get(first, first)
    if device == "cuda" and provider == "CPU":
        raise DeviceError("CUDA requested but not available: onnxruntime fell back to CPU when creating the session")
    return provider


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
