"""Run time for exported AnchorFace ONNX files, one module per job:

- :mod:`.model_input` — the input convention (uint8 BGR crops → float RGB NCHW) and tensor names;
- :mod:`.onnx_file` — is the file ONNX, complete, a supported opset (read from the protobuf wire format);
- :mod:`.providers` — CPU / CUDA / TensorRT choice, probing what really works here;
- :mod:`.threads` — the intra-op thread count;
- :mod:`.contract` — metadata (:mod:`core.model_metadata`), graph signature and a probe run;
- :mod:`.session` — :func:`load_model` and :class:`LandmarkModel`, which ties them together.

This package is the facade the rest of the code imports from.
"""
from core.model_metadata import ModelError
from core.runtime.contract import ModelInfo
from core.runtime.model_input import to_model_input
from core.runtime.providers import DEVICES, DeviceError
from core.runtime.session import DEFAULT_MODEL_PATH, LandmarkModel, load_model

__all__ = ["DEFAULT_MODEL_PATH", "DEVICES", "DeviceError", "LandmarkModel", "ModelError", "ModelInfo",
           "load_model", "to_model_input"]
