"""training.compare_speed on the shipped model: one line per file with crops/s and the ratio to the first."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from training import compare_speed

MODEL = Path(__file__).resolve().parents[2] / "assets" / "anchorface_ibug68.onnx"


def test_compare_speed_reports_each_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    copy = tmp_path / "copy.onnx"
    shutil.copy(MODEL, copy)
    assert compare_speed.main([str(MODEL), str(copy), "--rounds", "2", "--calls", "1", "--threads", "1"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if "crops/s" in line]
    assert len(lines) == 2 and lines[0].endswith("1.00x the first")


def test_compare_speed_names_a_bad_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not onnx")
    assert compare_speed.main([str(bad)]) == 2
    assert "bad.onnx" in capsys.readouterr().err
