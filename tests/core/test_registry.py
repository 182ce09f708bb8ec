"""core.registry: detectors, smoothers and aggregation strategies are each registered once, and a choice
registered in its own module is offered by both commands and the settings, validated, and built — the
one-file change the registry exists for."""
from __future__ import annotations

import numpy as np
import pytest

from batch.cli import build_parser as batch_parser
from core.config import SETTINGS_BY_KEY, apply_arguments
from core.decode import STRATEGIES, aggregate
from core.detection import DETECTORS, Detection, make_detector
from core.pipeline import PipelineConfig
from core.registry import Choice, Registry, UnknownChoice
from core.smoothing import SMOOTHERS, NoSmoothingConfig
from main import build_parser


class NoFaces:
    """A detector that never finds anything: the smallest thing a new detector can be."""

    name = "nothing"

    def detect(self, frame_bgr: np.ndarray) -> list[Detection]:
        return []


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> None:
    """One new entry in each registry, as a new module's author would add it (removed afterwards)."""
    monkeypatch.setitem(DETECTORS._choices, "nothing", Choice("nothing", "Finds nothing", lambda confidence: NoFaces()))
    monkeypatch.setitem(STRATEGIES._choices, "median", Choice(
        "median", "Median of all anchors", lambda preds, conf, best, threshold: np.median(preds, axis=1)))
    monkeypatch.setitem(SMOOTHERS._choices, "raw", Choice("raw", "Raw output", NoSmoothingConfig))


def test_a_registered_choice_reaches_both_commands_the_settings_and_the_factories(registered) -> None:
    argv = ["--detector", "nothing", "--strategy", "median", "--smoothing", "raw"]
    for parse in (lambda: build_parser().parse_args(argv), lambda: batch_parser().parse_args(["in", "--out", "o", *argv])):
        config = apply_arguments(PipelineConfig(), parse())
        assert (config.detector, config.strategy, config.smoothing) == ("nothing", "median", "raw")
    for key, name, label in (("detector", "nothing", "Finds nothing"), ("strategy", "median", "Median of all anchors"),
                             ("smoothing", "raw", "Raw output")):
        setting = SETTINGS_BY_KEY[key]
        assert setting.parse(name) == name and setting.option_label(name) == label  # the store and the dialog
    assert isinstance(make_detector("nothing"), NoFaces)
    assert PipelineConfig(smoothing="raw").smoother == NoSmoothingConfig()
    preds = np.arange(2 * 3 * 68 * 2, dtype=np.float32).reshape(2, 3, 68, 2)
    np.testing.assert_array_equal(aggregate(preds, np.full((2, 3), 0.9, np.float32), "median").landmarks,
                                  preds[:, 1])


def test_an_unknown_name_is_refused_where_the_configuration_is_written() -> None:
    for field, name in (("detector", "yolo"), ("strategy", "vote"), ("smoothing", "savgol")):
        with pytest.raises(ValueError, match=f"unknown .* '{name}'; use one of"):
            PipelineConfig(**{field: name})


def test_the_registry_keeps_order_refuses_twins_and_reads_as_a_mapping() -> None:
    registry: Registry[int] = Registry("colour", [Choice("red", "Red", 1), Choice("blue", "Blue", 2)])
    assert list(registry) == ["red", "blue"] and "red" in registry and len(registry) == 2
    assert registry.get("green") is None  # a Mapping's get: UnknownChoice is a KeyError too
    with pytest.raises(UnknownChoice) as unknown:
        registry["green"]
    assert str(unknown.value) == "unknown colour 'green'; use one of red, blue"
    with pytest.raises(ValueError, match="registered already"):
        registry.register(Choice("red", "Again", 3))


def test_every_entry_has_a_label() -> None:
    for registry in (DETECTORS, STRATEGIES, SMOOTHERS):
        assert all(registry[name].label and registry[name].name == name for name in registry)
