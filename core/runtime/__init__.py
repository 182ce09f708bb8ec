"""Run time for exported AnchorFace ONNX files, one module per job:

- :mod:`.contract` — the model-file contract: tensor names, minimum opset, format version, metadata;
- :mod:`.model_input` — the input convention (uint8 BGR crops → float RGB NCHW);
- :mod:`.onnx_file` — is the file ONNX, complete, a supported opset (read from the protobuf wire format);
- :mod:`.providers` — CPU / CUDA / TensorRT choice, probing what really works here;
- :mod:`.threads` — the intra-op thread count;
- :mod:`.precision` — the fp32 file or its INT8 sibling;
- :mod:`.verify` — a loaded session checked against the contract: metadata, graph signature, probe runs;
- :mod:`.loader` — :func:`load_model` and :class:`LandmarkModel`, which ties them together.

This package is the facade the rest of the code imports from.
"""
from core.runtime.contract import ModelError
from core.runtime.verify import ModelInfo
from core.runtime.model_input import to_model_input
from core.runtime.providers import DEVICES, DeviceError
from core.runtime.precision import PRECISIONS
from core.runtime.loader import DEFAULT_MODEL_PATH, LandmarkModel, load_model

__all__ = ["DEFAULT_MODEL_PATH", "DEVICES", "DeviceError", "LandmarkModel", "ModelError", "ModelInfo", "PRECISIONS",
           "load_model", "to_model_input"]
