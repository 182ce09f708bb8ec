"""The app's settings store: values round-trip through QSettings, and a damaged store falls back to
defaults with warnings instead of failing. Always a temporary ini file, never the user's settings."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from PyQt6.QtCore import QSettings

from app.settings import AppSettings, load_settings, save_settings
from core.draw import DrawOptions
from core.pipeline import PipelineConfig
from core.smoothing import OneEuroConfig
from core.tracker import TrackerConfig


def ini(path: Path) -> QSettings:
    return QSettings(str(path), QSettings.Format.IniFormat)


def custom_settings(folder: Path) -> AppSettings:
    pipeline = PipelineConfig(smoothing="one-euro", one_euro=OneEuroConfig(beta=7.5), threshold=0.45,
                              strategy="argmax", tracker=TrackerConfig(detection_interval=5), detector="haar")
    return AppSettings(camera_index=2, camera_width=1280, camera_height=720, model_path="/models/mine.onnx",
                       device="cpu", precision="fp32", pipeline=pipeline,
                       draw=replace(DrawOptions(), box=False, pose_axes=False), recording_folder=str(folder))


def test_defaults_come_from_core(tmp_path: Path) -> None:
    settings, warnings = load_settings(ini(tmp_path / "empty.ini"))
    assert warnings == []
    assert settings == AppSettings()
    assert settings.pipeline == PipelineConfig()
    assert settings.recording_folder.endswith("AnchorFace Live")


def test_round_trip_through_a_fresh_store(tmp_path: Path) -> None:
    wanted = custom_settings(tmp_path / "rec")
    save_settings(ini(tmp_path / "s.ini"), wanted)
    loaded, warnings = load_settings(ini(tmp_path / "s.ini"))  # a new QSettings reads the file back
    assert warnings == []
    assert loaded == wanted
    config = loaded.pipeline
    assert (config.smoothing, config.smoother.beta, config.strategy) == ("one-euro", 7.5, "argmax")
    assert config.tracker.detection_interval == 5


DEFAULTS = AppSettings()


@pytest.mark.parametrize("key, value, reset", [
    ("camera/index", "abc", {"camera_index": DEFAULTS.camera_index}),
    ("camera/index", "-3", {"camera_index": DEFAULTS.camera_index}),
    ("camera/resolution", "77x5", {"camera_width": DEFAULTS.camera_width, "camera_height": DEFAULTS.camera_height}),
    ("model/device", "tpu", {"device": DEFAULTS.device}),
    ("model/precision", "int4", {"precision": DEFAULTS.precision}),
    ("processing/threshold", "nan", {"threshold": DEFAULTS.pipeline.threshold}),
    ("processing/threshold", "1.7", {"threshold": DEFAULTS.pipeline.threshold}),
    ("processing/smoothing", "median", {"smoothing": DEFAULTS.pipeline.smoothing}),
    ("processing/detection_interval", "0", {"detection_interval": DEFAULTS.pipeline.tracker.detection_interval}),
    ("processing/one-euro/beta", "-1", {"one-euro/beta": DEFAULTS.pipeline.one_euro.beta}),
    ("processing/detector", "yolo", {"detector": DEFAULTS.pipeline.detector}),
    ("draw/box", "maybe", {"draw": replace(custom_settings(Path()).draw, box=DEFAULTS.draw.box)}),
])
def test_a_garbage_value_falls_back_to_its_default_with_a_warning(tmp_path: Path, key: str, value: str,
                                                                  reset: dict) -> None:
    good = custom_settings(tmp_path / "rec")
    store = ini(tmp_path / "s.ini")
    save_settings(store, good)
    store.setValue(key, value)
    store.sync()
    loaded, warnings = load_settings(ini(tmp_path / "s.ini"))
    assert len(warnings) == 1 and key in warnings[0] and value in warnings[0]
    assert loaded == good.overridden(reset)  # only the bad value is reset; every other one survives


def test_an_unparsable_store_gives_defaults_and_is_replaced_on_save(tmp_path: Path) -> None:
    path = tmp_path / "s.ini"
    path.write_bytes(b"[camera\n\x00\xff\xfe garbage ]]]\nindex=\n")
    settings, warnings = load_settings(ini(path))
    assert settings == AppSettings()
    assert len(warnings) == 1 and "could not be read" in warnings[0]
    wanted = custom_settings(tmp_path)
    save_settings(ini(path), wanted)
    assert load_settings(ini(path)) == (wanted, [])
