"""core.runtime.verify: every way a file can break the model contract is named at load time, and what the
file leaves open (symbolic dims, an unknown NME, a one-anchor model) is settled by a probe run."""
from __future__ import annotations

from pathlib import Path

import pytest
from onnx import TensorProto

from core.runtime import ModelError, load_model
from tests.helpers_onnx import make_model, random_crops


def test_direct_regression_model_with_one_anchor_loads(tmp_path: Path) -> None:
    path = make_model(tmp_path / "direct.onnx", num_templates=1, grid=1, metadata={"model_type": "direct"})
    loaded = load_model(path, device="cpu")
    assert loaded.info.num_anchors == 1
    assert loaded.predict(random_crops(1)).landmarks.shape == (1, 68, 2)


def test_symbolic_output_dims_are_resolved_by_a_probe_run(tmp_path: Path) -> None:
    """torch's exporter often declares M and L as names; the loader still learns and checks them."""
    loaded = load_model(make_model(tmp_path / "symbolic.onnx", symbolic_outputs=True), device="cpu")
    assert (loaded.info.num_anchors, loaded.info.num_points) == (8, 68)
    with pytest.raises(ModelError, match="L=67 landmarks but scheme ibug68 has 68"):
        load_model(make_model(tmp_path / "symbolic67.onnx", symbolic_outputs=True, num_points=67), device="cpu")


def test_empty_val_nme_means_unknown(tmp_path: Path) -> None:
    assert load_model(make_model(tmp_path / "m.onnx", metadata={"val_nme": ""}), device="cpu").info.val_nme is None


BAD_MODELS = {
    "missing_keys": (dict(drop_keys=("scheme", "val_nme")), r"lack required key\(s\) scheme, val_nme"),
    "wrong_input_size": (dict(input_shape=["N", 3, 112, 112]),
                         r"input 'image' must be \[N, 3, 224, 224\] .*it is \['N', 3, 112, 112\]"),
    "wrong_input_name": (dict(input_name="input"), r"exactly one input named 'image', it has \['input'\]"),
    "wrong_input_rank": (dict(input_shape=["N", 3, 224]), r"\(rank 3\)"),
    "wrong_input_dtype": (dict(input_type=TensorProto.UINT8), r"input 'image' must be float32, it is tensor\(uint8\)"),
    "missing_output": (dict(outputs=("anchor_landmarks",)), r"output\(s\) anchor_confidence missing"),
    "wrong_output_shape": (dict(confidence_trailing_dim=True),
                           r"'anchor_confidence' must be \[N, M\], it is \['N', 8, 1\]"),
    "logits_not_confidence": (dict(sigmoid=False), r"must lie in \(0, 1\), the probe crops gave values from -2 to 2.64"),
    "nan_everywhere": (dict(nan_on="all"), r"not finite on a real face crop: NaN or inf in anchor_landmarks "
                                           r"\(2176 of 2176 values\)"),
    "nan_on_real_faces_only": (dict(nan_on="real"), r"not finite on a real face crop: NaN or inf in "
                                                    r"anchor_landmarks \(1088 of 2176 values\)"),
    "unknown_scheme": (dict(metadata={"scheme": "foo68"}), r"scheme 'foo68' is unknown \(known: ibug68, wflw98\)"),
    "unsupported_format": (dict(metadata={"anchorface_format": "2"}), r"anchorface_format '2' is not supported"),
    "points_vs_scheme": (dict(num_points=67), r"L=67 landmarks but scheme ibug68 has 68"),
    "anchors_vs_metadata": (dict(metadata={"num_templates": "24"}), r"M=8 anchors but .* = 96"),
    "direct_with_grid": (dict(metadata={"model_type": "direct"}), r"a direct model has num_templates=1 and grid=1"),
    "bad_number": (dict(metadata={"crop_margin": "wide"}), r"crop_margin='wide' is not a number"),
    "old_opset": (dict(opset=16), r"opset 16; the model contract needs opset >= 17"),
}


@pytest.mark.parametrize("case", sorted(BAD_MODELS))
def test_contract_violations_are_named(tmp_path: Path, case: str) -> None:
    kwargs, message = BAD_MODELS[case]
    path = make_model(tmp_path / f"{case}.onnx", **kwargs)
    with pytest.raises(ModelError, match=message):
        load_model(path, device="cpu")
