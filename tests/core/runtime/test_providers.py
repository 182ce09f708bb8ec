"""core.runtime.providers: the provider really used is reported, and CUDA asked for where it cannot run is
one plain device problem."""
from __future__ import annotations

from pathlib import Path

import pytest

from core.runtime import DeviceError, load_model
from core.runtime.providers import cuda_unavailable_reason
from main import main


def test_auto_device_reports_the_provider_really_used(model_path: Path) -> None:
    loaded = load_model(model_path, device="auto")
    assert loaded.provider in ("CPU", "CUDA", "TensorRT")
    if cuda_unavailable_reason() is not None:
        assert loaded.provider == "CPU"
    assert loaded.session.get_providers()[0].startswith(
        {"CPU": "CPU", "CUDA": "CUDA", "TensorRT": "Tensorrt"}[loaded.provider])


def test_cuda_requested_without_cuda_is_a_device_problem(model_path: Path, shared_data: Path, capsys) -> None:
    if cuda_unavailable_reason() is None:
        pytest.skip("CUDA works on this machine")
    with pytest.raises(DeviceError, match="CUDA requested but not available: "):
        load_model(model_path, device="cuda")
    clip = shared_data / "video" / "pyfeat_single_face.mp4"
    assert main(["--source", str(clip), "--headless", "--model", str(model_path), "--device", "cuda"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: device problem: CUDA requested but not available")


def test_unknown_device_is_rejected(model_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown device 'gpu'"):
        load_model(model_path, device="gpu")
