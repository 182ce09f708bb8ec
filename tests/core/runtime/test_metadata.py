"""core.runtime.contract: the one metadata contract the export writes and the runtime checks."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from core.runtime.contract import REQUIRED_KEYS, ModelError, ModelMetadata
from models.anchorface import ModelConfig
from training.export import metadata

EXAMPLE = ModelMetadata(model_type="anchorface", scheme="ibug68", input_size=224, crop_margin=1.5, num_templates=24,
                        grid=7, anchor_area=56.0, width=1.0, name="m", training_data="d", val_nme=0.05317,
                        created="2026-01-01")


def test_props_round_trip_and_cover_every_required_key() -> None:
    props = EXAMPLE.to_props()
    assert set(props) == set(REQUIRED_KEYS) and all(isinstance(v, str) for v in props.values())
    assert {"width", "input_size", "crop_margin", "anchorface_format"} <= set(REQUIRED_KEYS)
    assert ModelMetadata.from_props(props, "m.onnx") == EXAMPLE
    unknown = replace(EXAMPLE, val_nme=None)
    assert unknown.to_props()["val_nme"] == "" and ModelMetadata.from_props(unknown.to_props(), "m") == unknown


@pytest.mark.parametrize("key", ["width", "input_size"])
def test_a_missing_key_is_named(key: str) -> None:
    props = EXAMPLE.to_props()
    del props[key]
    with pytest.raises(ModelError, match=rf"m.onnx: metadata_props lack required key\(s\) {key} "):
        ModelMetadata.from_props(props, "m.onnx")


def test_every_bad_value_is_listed_in_one_message() -> None:
    props = {**EXAMPLE.to_props(), "width": "0", "grid": "seven", "scheme": "foo"}
    with pytest.raises(ModelError) as err:
        ModelMetadata.from_props(props, "m.onnx")
    assert str(err.value) == ("m.onnx breaks the AnchorFace model contract: metadata grid='seven' is not an integer; "
                              "metadata width='0' must be positive; metadata scheme 'foo' is unknown "
                              "(known: ibug68, wflw98)")


def _checkpoint(path: Path, init: str | None) -> Path:
    run = {"args": {"data": "d", "epochs": 3, "init": init}, "train_faces": 10, "val_faces": 5}
    torch.save({"config": ModelConfig().to_dict(), "model": {}, "run": json.dumps(run)}, path)
    return path


def test_export_metadata_counts_training_stages_and_uses_the_runs_crop_margin(tmp_path: Path) -> None:
    first = _checkpoint(tmp_path / "first.pt", None)
    second = _checkpoint(tmp_path / "second.pt", str(first))
    third_run = {"args": {"data": "d", "epochs": 4, "init": str(second)}, "train_faces": 10, "val_faces": 5,
                 "crop_margin": 1.6}
    meta = metadata(ModelConfig(width=0.5), {"run": json.dumps(third_run), "best_nme": 0.061}, "three")
    assert f"4 epochs, stage 3 from {second}" in meta.training_data
    assert (meta.crop_margin, meta.width, meta.val_nme, meta.name) == (1.6, 0.5, 0.061, "three")
    gone = {"args": {"epochs": 2, "init": str(tmp_path / "deleted.pt")}}
    label = metadata(ModelConfig(), {"run": json.dumps(gone)}, "x").training_data
    assert f"2 epochs, initialised from {tmp_path / 'deleted.pt'}" in label and "stage" not in label
    plain = metadata(ModelConfig(), {"run": json.dumps({"args": {"epochs": 2}})}, "x")
    assert "(2 epochs, split" in plain.training_data and plain.crop_margin == 1.5 and plain.val_nme is None
