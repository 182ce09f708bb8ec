"""core.runtime.precision through load_model: on the CPU ``auto`` runs a model's INT8 sibling only when it
was made from that very file; ``fp32`` runs the file given; ``int8`` the sibling or a clear error. Tiny
generated graphs stand in for the files (the choice is by name and recorded SHA-256, not by content), and
the shipped pair is checked for what it promises: the same points as fp32 on a real face crop, faster."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from core.paths import DEFAULT_MODEL_PATH
from core.runtime import ModelError, load_model
from core.runtime.precision import file_sha256, int8_path
from core.runtime.verify import probe_crop
from core.decode import aggregate
from tests.helpers_onnx import make_model


def model_pair(folder: Path, *, made_from: Path | None = None) -> tuple[Path, Path]:
    """``tiny.onnx`` and a ``tiny_int8.onnx`` beside it that records ``made_from``'s SHA-256 (default:
    the fp32 file's, a valid sibling)."""
    fp32 = make_model(folder / "tiny.onnx")
    digest = file_sha256(made_from or fp32)
    sibling = make_model(int8_path(fp32), metadata={"name": "tiny-test-model_int8", "quantized_from": digest})
    return fp32, sibling


def test_int8_path_is_the_exporters_sibling_name() -> None:
    assert int8_path(Path("/m/anchorface.onnx")) == Path("/m/anchorface_int8.onnx")


@pytest.mark.parametrize("precision, runs", [("auto", "tiny_int8.onnx"), ("int8", "tiny_int8.onnx"),
                                             ("fp32", "tiny.onnx")])
def test_the_precision_picks_the_file_on_the_cpu(tmp_path: Path, precision: str, runs: str) -> None:
    fp32, _ = model_pair(tmp_path)
    model = load_model(fp32, device="cpu", precision=precision)
    assert model.info.path.name == runs


def test_auto_without_a_sibling_runs_the_file_and_int8_says_how_to_make_one(tmp_path: Path) -> None:
    fp32 = make_model(tmp_path / "tiny.onnx")
    assert load_model(fp32, device="cpu").info.path == fp32
    with pytest.raises(ModelError, match=r"no INT8 sibling \(tiny_int8.onnx\).*training.export --onnx .* --int8"):
        load_model(fp32, device="cpu", precision="int8")


def test_a_stale_sibling_is_refused_with_a_warning_and_the_file_runs(tmp_path: Path, caplog) -> None:
    """A sibling quantised from another file (the fp32 was re-exported since) never runs in its place."""
    other = make_model(tmp_path / "other.onnx", metadata={"name": "older-export"})
    fp32, _ = model_pair(tmp_path, made_from=other)
    with caplog.at_level(logging.WARNING, logger="core.runtime.loader"):
        model = load_model(fp32, device="cpu")
    assert model.info.path == fp32
    assert "not using the INT8 sibling" in caplog.text and "stale sibling" in caplog.text
    with pytest.raises(ModelError, match="was not quantised from this tiny.onnx"):
        load_model(fp32, device="cpu", precision="int8")


def test_a_corrupt_sibling_is_refused_with_a_warning_and_the_file_runs(tmp_path: Path, caplog) -> None:
    fp32, sibling = model_pair(tmp_path)
    sibling.write_bytes(sibling.read_bytes()[:100])  # cut short, as by a failed copy
    with caplog.at_level(logging.WARNING, logger="core.runtime.loader"):
        assert load_model(fp32, device="cpu").info.path == fp32
    assert "not using the INT8 sibling" in caplog.text


def test_an_unknown_precision_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown precision 'int4'; use one of auto, fp32, int8"):
        load_model(DEFAULT_MODEL_PATH, device="cpu", precision="int4")


def test_the_shipped_int8_sibling_belongs_to_the_shipped_model_and_keeps_its_points() -> None:
    """What ``auto`` runs on every CPU: the sibling of this very file, within a fraction of a pixel of
    fp32 on a real face crop (the export's check measured 0.21 px mean over 180 validation faces). Its
    speed is a benchmark's to measure (benchmarks/RESULTS.md), not a test's."""
    fp32 = load_model(DEFAULT_MODEL_PATH, device="cpu", threads=1, precision="fp32")
    int8 = load_model(DEFAULT_MODEL_PATH, device="cpu", threads=1)
    assert int8.info.path == int8_path(DEFAULT_MODEL_PATH) and int8.info.name == fp32.info.name + "_int8"
    assert int8.info.quantized_from == file_sha256(DEFAULT_MODEL_PATH)
    crop = probe_crop(fp32.info.input_size)[None]
    a, b = aggregate(*fp32.run(crop)), aggregate(*int8.run(crop))
    drift = np.linalg.norm(a.landmarks - b.landmarks, axis=-1)
    assert drift.mean() < 0.5 and drift.max() < 2.0
    assert abs(float(a.confidence[0] - b.confidence[0])) < 0.05
