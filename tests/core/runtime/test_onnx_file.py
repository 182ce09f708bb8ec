"""core.runtime.onnx_file: a file that is not ONNX, is empty or was cut short is refused in one line before
ONNX Runtime is tried, and a complete copy still loads."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from core.runtime import ModelError, load_model


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="model file not found: .*nothere.onnx"):
        load_model(tmp_path / "nothere.onnx")


def test_text_file_renamed_onnx_is_not_onnx(tmp_path: Path) -> None:
    path = tmp_path / "notes.onnx"
    path.write_text("this is a text file, not a model\n")
    with pytest.raises(ModelError, match=r"notes.onnx is not an ONNX model \(it starts with b'this is a te'"):
        load_model(path)


def test_jpeg_renamed_onnx_is_not_onnx(tmp_path: Path) -> None:
    path = tmp_path / "photo.onnx"
    path.write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(200))
    with pytest.raises(ModelError, match="photo.onnx is not an ONNX model"):
        load_model(path)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.onnx"
    path.write_bytes(b"")
    with pytest.raises(ModelError, match=r"empty \(0 bytes\)"):
        load_model(path)


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9, 0.99])
def test_truncated_copy_is_rejected(model_path: Path, tmp_path: Path, fraction: float) -> None:
    data = model_path.read_bytes()
    path = tmp_path / "cut.onnx"
    path.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(ModelError, match="truncated"):
        load_model(path)


def test_complete_copy_still_loads(model_path: Path, tmp_path: Path) -> None:
    copy = shutil.copy(model_path, tmp_path / "copy.onnx")
    assert load_model(copy, device="cpu").info.num_anchors == 8
