"""Static INT8 quantisation of an exported model file, calibrated on real face crops, and refused when it
costs accuracy.

ONNX Runtime's static quantiser (QDQ format, uint8 activations, int8 per-channel weights) needs the
activation ranges of real inputs: they come from policy crops of *training* faces, so the faces that
judge the result (the validation split) never tuned it. The INT8 file is then compared with the fp32
file on the validation faces, through the same protocol as ``training.evaluate``, and refused — nothing
written — when either

* its NME is more than ``max_nme_loss`` (0.001 = 0.1 NME points) worse than fp32's, or
* its landmarks drift from fp32's by more than ``max_drift_px`` on average (crop pixels, after the
  app's aggregation): a model can keep its NME while moving every point, which a tracker shows as jitter.

The fp32 file is left as it is; the INT8 file carries the same metadata with ``_int8`` in its name and
the fp32 file's SHA-256 (``quantized_from``), so the runtime runs it in the fp32 file's place only while
the two belong together (``core.runtime.precision``).

The head's outputs stay in fp32: the two 1×1 output convolutions and the decoding tail (offset scaling,
adding the placed templates, the sigmoid, the reshapes). Offsets are fractions of the crop, so one uint8
step of the regression output is about a pixel. Measured on v3 (180 validation faces): everything
quantised, +0.52 NME points and 1.24 px drift; with only the tail in fp32, +0.51 and 1.22 px — both refused.
The regression convolution (256 → 3264 channels on a 5×5 grid) was then the costliest single node, 0.26 of
v5's 1.5 ms a crop in fp32, so :func:`integer_head` makes it a matrix product whose weights are int8 (per
output channel) and whose input is quantised on each call from its own range, with an fp32 output:
no output step, and 0.09 ms. On v5's 180 validation faces the shipped file scores NME 5.08 against fp32's
5.06 %, and takes 1.35 instead of 1.57 ms a real crop (assets/MODEL_CARD.md, "INT8").

So does the input end: the stem convolution and the first (downsampling) block. Quantisation noise
shows as jitter — on a still face with camera noise v5's points shook 0.37 % of the inter-ocular distance
quantised everywhere but the head, 0.23 % in fp32 — and the earliest layers' share of it is the cheapest
to remove: with these six convolutions in fp32 the shake was 0.33 %, NME 5.05 instead of 5.06 %, and the
crop no slower (1.85 vs 1.84 ms; ONNX Runtime's INT8 convolution gains little on 3 and 24 channels).
Keeping any more of the network in fp32 took the shake no lower (0.32 % with 20 convolutions) at a
slower crop.
"""
from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_dynamic,
                                      quantize_static)

from core.offline.datasets import FaceRecord
from core.decode import aggregate
from core.offline.evaluation import OnnxPredictor, evaluate
from core.geometry import crop_from_landmarks, warp_to_crop
from core.runtime import to_model_input
from core.runtime.contract import INPUT_NAME, ModelMetadata, read_props, write_props
from core.runtime.precision import INT8_SUFFIX, file_sha256

#: Refusal limits of issue 14: 0.1 NME points, 0.5 px mean drift.
MAX_NME_LOSS = 0.001
MAX_DRIFT_PX = 0.5
#: How activation ranges are taken from the calibration crops.
CALIBRATION_METHODS = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
                       "entropy": CalibrationMethod.Entropy}


class QuantizationRefused(RuntimeError):
    """The INT8 model is measurably worse than fp32; nothing was written. The message gives the numbers."""


@dataclass(frozen=True)
class QuantizationReport:
    out: str
    fp32_nme: float
    int8_nme: float
    mean_drift_px: float
    faces: int
    calibration_crops: int
    bytes: int


def policy_crops(records: list[FaceRecord], size: int, margin: float) -> np.ndarray:
    """``[N, S, S, 3]`` uint8 BGR crops of ``records`` by the crop policy (ground-truth boxes)."""
    crops = []
    for record in records:
        sample = record.load()
        crops.append(warp_to_crop(sample.image, crop_from_landmarks(sample.landmarks, size, margin), size))
    return np.stack(crops)


#: Operators of the decoding tail (the backbone uses Conv, Relu, MaxPool, Slice, Concat, Gather).
_TAIL_OPS = ("Mul", "Add", "Sigmoid", "Reshape", "Transpose")
#: Initialiser-name prefixes of the output convolutions (AnchorFace heads, the baseline's linear layer).
_HEAD_WEIGHTS = ("model.regression.", "model.confidence.", "model.fc.")


#: Node-name prefixes of the input end kept in fp32: the stem and the first block (torch's export names).
_INPUT_END = ("/model/backbone/stem/", "/model/backbone/stages/stages.0/")


def fp32_nodes(path: str | Path) -> list[str]:
    """Names of the nodes kept in fp32: the input end (stem, first block), the output convolutions and
    the decoding tail."""
    return [n.name for n in onnx.load(str(path)).graph.node
            if n.op_type in _TAIL_OPS or any(i.startswith(_HEAD_WEIGHTS) for i in n.input)
            or n.name.startswith(_INPUT_END)]


class _CropReader(CalibrationDataReader):
    """Feeds the calibration crops to the quantiser a few at a time."""

    def __init__(self, crops: np.ndarray, batch: int = 8) -> None:
        self.batches = iter([to_model_input(crops[i:i + batch]) for i in range(0, len(crops), batch)])

    def get_next(self) -> dict[str, np.ndarray] | None:
        x = next(self.batches, None)
        return None if x is None else {INPUT_NAME: x}


def _mark_int8(path: Path, fp32_path: Path, fp32_nme: float, int8_nme: float) -> None:
    """Name the file as INT8 (``_int8`` appended to the model name) and record the SHA-256 of the fp32
    file it came from, which the runtime checks before it runs the file in that file's place
    (``core.runtime.precision``). Its ``val_nme`` becomes INT8's own where this check measured fp32 at the
    NME the fp32 file records (the same faces, the same protocol); otherwise it keeps the fp32 figure.
    The rest of the contract is unchanged."""
    graph = onnx.load(str(path))
    meta = ModelMetadata.from_props(read_props(graph), path)
    name = meta.name if meta.name.endswith(INT8_SUFFIX) else meta.name + INT8_SUFFIX
    same_faces = meta.val_nme is not None and abs(meta.val_nme - fp32_nme) < 5e-5
    write_props(graph, replace(meta, name=name, quantized_from=file_sha256(fp32_path),
                               val_nme=int8_nme if same_faces else meta.val_nme))
    onnx.save(graph, str(path))


#: The regression output convolution's weight, and the layout the decoding tail reads its output in.
_REGRESSION_WEIGHT = "model.regression.weight"
_TO_CHANNELS_LAST = [0, 2, 3, 1]


def integer_head(path: Path) -> bool:
    """Rewrite, in place, the regression head of a statically quantised file as an int8 matrix product
    with an fp32 output (see the module docstring); False, the file untouched, where the head is not a
    1×1 convolution read channels-last by the decoding tail (another architecture keeps it in fp32).

    The convolution and the tail's transpose to channels-last become: transpose the (small) input to
    channels-last, ``MatMul`` by the transposed weight, add the bias, under the transpose's output name;
    ONNX Runtime's dynamic quantiser then turns that ``MatMul`` alone into ``DynamicQuantizeLinear`` +
    ``MatMulInteger``, which it runs as one fused kernel."""
    model = onnx.load(str(path))
    graph = model.graph
    weights = {i.name: i for i in graph.initializer}
    conv = next((n for n in graph.node if n.op_type == "Conv" and _REGRESSION_WEIGHT in n.input), None)
    after = [n for n in graph.node if conv is not None and conv.output[0] in n.input]
    if conv is None or len(after) != 1 or after[0].op_type != "Transpose" or len(conv.input) != 3 \
            or list(onnx.helper.get_attribute_value(after[0].attribute[0])) != _TO_CHANNELS_LAST:
        return False
    weight = onnx.numpy_helper.to_array(weights[_REGRESSION_WEIGHT])
    if weight.shape[2:] != (1, 1):
        return False
    features, transposed, product = conv.name + "/input_channels_last", _REGRESSION_WEIGHT + "_t", conv.name + "/product"
    at = list(graph.node).index(conv)
    for node in (conv, after[0]):
        graph.node.remove(node)
    graph.initializer.remove(weights[_REGRESSION_WEIGHT])
    graph.initializer.append(onnx.numpy_helper.from_array(np.ascontiguousarray(weight[:, :, 0, 0].T), transposed))
    graph.node.insert(at, onnx.helper.make_node("Transpose", [conv.input[0]], [features], name=conv.name + "/to_channels_last",
                                                perm=_TO_CHANNELS_LAST))
    graph.node.insert(at + 1, onnx.helper.make_node("MatMul", [features, transposed], [product], name=conv.name + "/matmul"))
    graph.node.insert(at + 2, onnx.helper.make_node("Add", [product, conv.input[2]], [after[0].output[0]],
                                                    name=conv.name + "/bias"))
    onnx.checker.check_model(model)
    rewritten = path.with_name(path.stem + "_matmul.onnx")
    onnx.save(model, str(rewritten))
    try:
        quantize_dynamic(str(rewritten), str(path), weight_type=QuantType.QInt8, per_channel=True,
                         nodes_to_quantize=[conv.name + "/matmul"])
    finally:
        rewritten.unlink()  # a failed quantisation leaves no stray file beside the model
    return True


def mean_drift(a: OnnxPredictor, b: OnnxPredictor, crops: np.ndarray, batch: int = 32) -> float:
    """Mean distance in crop pixels between the two models' aggregated landmarks on the same crops."""
    dists = []
    for i in range(0, len(crops), batch):
        pa = aggregate(*a.predict(crops[i:i + batch])).landmarks
        pb = aggregate(*b.predict(crops[i:i + batch])).landmarks
        dists.append(np.linalg.norm(pa - pb, axis=-1).ravel())
    return float(np.concatenate(dists).mean())


def quantize_int8(fp32_path: str | Path, out: str | Path, calibration: list[FaceRecord], validation: list[FaceRecord],
                  max_nme_loss: float = MAX_NME_LOSS, max_drift_px: float = MAX_DRIFT_PX,
                  method: str = "minmax") -> QuantizationReport:
    """Quantise ``fp32_path`` into ``out``, or raise :class:`QuantizationRefused` (nothing written)."""
    fp32 = OnnxPredictor.from_file(fp32_path, "cpu")
    calib = policy_crops(calibration, fp32.input_size, fp32.crop_margin)
    out = Path(out)
    with tempfile.TemporaryDirectory() as tmp:
        staged = Path(tmp) / "int8.onnx"
        quantize_static(str(fp32_path), str(staged), _CropReader(calib), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True,
                        nodes_to_exclude=fp32_nodes(fp32_path), calibrate_method=CALIBRATION_METHODS[method])
        integer_head(staged)
        int8 = OnnxPredictor.from_file(staged, "cpu")
        fp32_nme = float(evaluate(fp32, validation).nmes.mean())
        int8_nme = float(evaluate(int8, validation).nmes.mean())
        drift = mean_drift(fp32, int8, policy_crops(validation, fp32.input_size, fp32.crop_margin))
        numbers = (f"NME {100 * int8_nme:.2f} % vs fp32 {100 * fp32_nme:.2f} % on {len(validation)} validation "
                   f"faces, mean drift {drift:.2f} px")
        if int8_nme - fp32_nme > max_nme_loss or drift > max_drift_px:
            raise QuantizationRefused(f"INT8 refused ({numbers}; limits +{100 * max_nme_loss:.2f} points, "
                                      f"{max_drift_px} px): nothing written")
        _mark_int8(staged, Path(fp32_path), fp32_nme, int8_nme)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(staged, out)
    return QuantizationReport(str(out), fp32_nme, int8_nme, drift, len(validation), len(calib), out.stat().st_size)
