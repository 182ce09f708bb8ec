"""Tiny contract-conforming ONNX models (``tests/helpers_onnx.py``) whose landmark output goes wrong at
run time in the ways seen in real use, built with the onnx package:

* collapsing: every anchor's landmarks squeezed to 1 % of their spread around the crop centre (what a
  model trained with too low a loss threshold output: a face a few pixels wide);
* bright-NaN: finite on ordinary crops, NaN on crops brighter than a limit (a model that passes a
  load-time check on a real face and still turns non-finite on some frames);
* batch-one-NaN: finite for two crops or more, NaN for a single crop — an unbiased statistic over the
  batch axis (0 / (N − 1)), as a BatchNorm exported in training mode computes (a model that passes a
  probe at batch size 2 and then finds no face in a one-face video).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from tests.helpers_onnx import make_model

#: f(x) = mean of x * (1, 2, 4) over an RGB 0..1 crop: about 1 on a real face, 7/3 on white.
BRIGHT_LIMIT = 1.9


def _append_to_landmarks(path: Path, nodes: list, constants: dict[str, float]) -> Path:
    """Rename the graph's landmark output to ``raw_landmarks`` and let ``nodes`` compute the new
    ``anchor_landmarks`` from it (they may read ``feature``, the graph's per-crop brightness, and the
    input ``image``)."""
    model = onnx.load(make_model(path))
    for node in model.graph.node:
        node.output[:] = ["raw_landmarks" if name == "anchor_landmarks" else name for name in node.output]
    model.graph.node.extend(nodes)
    model.graph.initializer.extend(numpy_helper.from_array(np.array(v, np.float32), k) for k, v in constants.items())
    onnx.save(model, path)
    return Path(path)


def make_collapsing_model(path: str | Path, factor: float = 0.01) -> Path:
    return _append_to_landmarks(Path(path), [
        helper.make_node("Sub", ["raw_landmarks", "centre"], ["offsets"]),
        helper.make_node("Mul", ["offsets", "factor"], ["squeezed"]),
        helper.make_node("Add", ["squeezed", "centre"], ["anchor_landmarks"]),
    ], {"centre": 112.0, "factor": factor})


def make_bright_nan_model(path: str | Path, limit: float = BRIGHT_LIMIT) -> Path:
    """landmarks + sqrt(limit - f(x)): a small finite shift below the limit, NaN above it."""
    return _append_to_landmarks(Path(path), [
        helper.make_node("Sub", ["limit", "feature"], ["headroom"]),
        helper.make_node("Sqrt", ["headroom"], ["nan_when_bright"]),
        helper.make_node("Add", ["raw_landmarks", "nan_when_bright"], ["anchor_landmarks"]),
    ], {"limit": limit})


def make_batch_one_nan_model(path: str | Path) -> Path:
    """landmarks + 0 / (N − 1): unchanged for N ≥ 2, NaN (0 / 0) for a batch of one crop."""
    return _append_to_landmarks(Path(path), [
        helper.make_node("Shape", ["image"], ["input_shape"], start=0, end=1),
        helper.make_node("Cast", ["input_shape"], ["batch"], to=onnx.TensorProto.FLOAT),
        helper.make_node("Sub", ["batch", "one"], ["batch_minus_one"]),
        helper.make_node("Div", ["zero", "batch_minus_one"], ["nan_at_one"]),
        helper.make_node("Add", ["raw_landmarks", "nan_at_one"], ["anchor_landmarks"]),
    ], {"one": 1.0, "zero": 0.0})
