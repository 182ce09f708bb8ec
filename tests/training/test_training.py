"""Train → export → evaluate round trip through the real CLIs on a few real faces, and the error paths."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from core.runtime import load_model
from core.runtime.contract import MIN_OPSET, code_version
from training import evaluate, export, train
from training.checkpoint import CheckpointError, load_model_from_checkpoint

pytestmark = pytest.mark.slow  # see pyproject.toml: left out of the quick run


@pytest.fixture(scope="module")
def tiny_run(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run")
    code = train.main(["--data", str(shared_data), "--out", str(out), "--epochs", "2", "--max-train", "24",
                       "--batch-size", "8", "--width", "0.5", "--workers", "0", "--threads", "1", "--input-size", "128"])
    assert code == 0
    return out


@pytest.fixture(scope="module")
def tiny_onnx(tiny_run: Path) -> Path:
    path = tiny_run / "tiny.onnx"
    export.export(tiny_run / "best.pt", path)
    return path


def test_training_writes_logs_plot_and_safe_checkpoints(tiny_run: Path) -> None:
    lines = (tiny_run / "log.csv").read_text().splitlines()
    assert lines[0].startswith("epoch,train_loss,train_reg,train_con,val_nme,val_fr,val_dx,val_dy,val_eyelid,lr")
    assert len(lines) == 3
    assert (tiny_run / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for name in ("best.pt", "last.pt"):
        torch.load(tiny_run / name, weights_only=True)  # plain data only: no pickled objects
    model, config, data = load_model_from_checkpoint(tiny_run / "best.pt")
    assert config.width == 0.5 and tuple(model.templates.shape) == (24, 68, 2)
    with np.load(tiny_run / "templates.npz", allow_pickle=False) as saved:
        np.testing.assert_allclose(saved["templates"], model.templates.numpy(), atol=1e-5)


def test_the_moving_average_is_what_is_validated_and_saved_as_best(tiny_run: Path) -> None:
    last = torch.load(tiny_run / "last.pt", weights_only=True)
    best = torch.load(tiny_run / "best.pt", weights_only=True)
    assert last["ema"]["updates"] == 6  # 2 epochs × 3 batches
    trained, averaged = last["model"], last["ema"]["weights"]
    assert any(not torch.equal(trained[k], averaged[k]) for k in trained)  # the average is not the raw weights
    if best["epoch"] == last["epoch"]:
        assert all(torch.equal(best["model"][k], averaged[k]) for k in averaged)


def test_resume_continues_from_last_epoch(tiny_run: Path, shared_data: Path) -> None:
    code = train.main(["--data", str(shared_data), "--out", str(tiny_run), "--epochs", "3", "--max-train", "24",
                       "--batch-size", "8", "--width", "0.5", "--workers", "0", "--threads", "1", "--input-size", "128",
                       "--resume"])
    assert code == 0
    assert [line.split(",")[0] for line in (tiny_run / "log.csv").read_text().splitlines()[1:]] == ["1", "2", "3"]


def test_second_stage_starts_from_a_checkpoint(tiny_run: Path, shared_data: Path, tmp_path: Path) -> None:
    code = train.main(["--data", str(shared_data), "--out", str(tmp_path), "--epochs", "1", "--max-train", "8",
                       "--batch-size", "8", "--workers", "0", "--threads", "1", "--init", str(tiny_run / "best.pt"),
                       "--input-size", "128"])
    assert code == 0
    first, _, _ = load_model_from_checkpoint(tiny_run / "best.pt")
    second, config, _ = load_model_from_checkpoint(tmp_path / "last.pt")
    assert config.width == 0.5, "the architecture comes from the checkpoint, not the CLI defaults"
    assert torch.equal(first.templates, second.templates)


def test_second_stage_at_another_size_is_refused_for_a_checkpoint(tiny_run: Path, shared_data: Path, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture) -> None:
    assert train.main(["--data", str(shared_data), "--out", str(tmp_path), "--epochs", "1", "--max-train", "8",
                       "--workers", "0", "--init", str(tiny_run / "best.pt"), "--input-size", "160"]) == 2
    assert "--input-size 128" in capsys.readouterr().err


def test_onnx_file_rebuilds_the_torch_model(tiny_run: Path, tiny_onnx: Path) -> None:
    """Batch norm folded by the exporter is unfolded: same outputs as ONNX Runtime, also after recalibration."""
    from core.runtime import to_model_input
    from training.export import real_crops
    from training.onnx_init import model_from_onnx, recalibrate_batch_norm

    model, config = model_from_onnx(tiny_onnx)
    reference, _, _ = load_model_from_checkpoint(tiny_run / "best.pt")
    assert config == reference.config
    crops = to_model_input(real_crops(config, 8))
    runtime = load_model(tiny_onnx, device="cpu")
    want, want_conf = runtime.run(real_crops(config, 8))
    with torch.no_grad():
        got, logits = model(torch.from_numpy(crops))
    np.testing.assert_allclose(got.numpy(), want, atol=1e-3)
    np.testing.assert_allclose(torch.sigmoid(logits).numpy(), want_conf, atol=1e-4)
    recalibrate_batch_norm(model, torch.from_numpy(crops))
    bn = model.backbone.stem[0][1]
    assert not torch.allclose(bn.running_var, torch.ones_like(bn.running_var)), "real statistics now"
    with torch.no_grad():
        np.testing.assert_allclose(model(torch.from_numpy(crops))[0].numpy(), want, atol=1e-3)


def test_training_starts_from_an_onnx_file_at_another_size(tiny_run: Path, tiny_onnx: Path, shared_data: Path,
                                                           tmp_path: Path) -> None:
    code = train.main(["--data", str(shared_data), "--out", str(tmp_path), "--epochs", "1", "--max-train", "8",
                       "--batch-size", "8", "--workers", "0", "--threads", "1", "--init", str(tiny_onnx),
                       "--input-size", "160", "--schedule", "cosine"])
    assert code == 0
    first, _, _ = load_model_from_checkpoint(tiny_run / "best.pt")
    moved, config, _ = load_model_from_checkpoint(tmp_path / "last.pt")
    assert (config.input_size, config.grid, config.anchor_area, config.width) == (160, 5, 40.0, 0.5)
    torch.testing.assert_close(moved.templates, first.templates * 160 / 128, atol=1e-3, rtol=0)


def test_export_round_trip_and_evaluation_agree(tiny_run: Path, shared_data: Path, tmp_path: Path) -> None:
    onnx_path = tmp_path / "tiny.onnx"
    result = export.export(tiny_run / "best.pt", onnx_path)
    assert result["max_abs_diff_px"] < 1e-3
    graph = onnx.load(str(onnx_path))
    assert not {n.op_type for n in graph.graph.node} & {"Shape", "ConstantOfShape"}, \
        "the graph computes no shapes at run time (fixed shuffle order, constant reshapes)"
    meta = {p.key: p.value for p in graph.metadata_props}
    assert meta["scheme"] == "ibug68" and meta["num_templates"] == "24" and meta["model_type"] == "anchorface"
    assert float(meta["val_nme"]) > 0
    runtime = load_model(onnx_path, device="cpu")
    assert runtime.info.num_anchors == 4 * 4 * 24 and runtime.provider == "CPU"
    assert meta["input_size"] == "128" and meta["grid"] == "4" and meta["anchor_area"] == "32.0"
    assert meta["code_version"] == code_version() and runtime.info.code_version == meta["code_version"]
    assert json.loads(meta["export_args"]) == {"checkpoint": str(tiny_run / "best.pt"), "out": str(onnx_path),
                                               "name": None, "opset": MIN_OPSET, "tolerance": 1e-3}

    numbers = {}
    for model_file in (tiny_run / "best.pt", onnx_path):
        out = tmp_path / f"{model_file.suffix[1:]}.json"
        plot = tmp_path / f"{model_file.suffix[1:]}.png"
        assert evaluate.main(["--model", str(model_file), "--data", str(shared_data), "--json", str(out),
                              "--plot", str(plot)]) == 0
        numbers[model_file.suffix] = json.loads(out.read_text())
        assert plot.exists()
    pt, ox = numbers[".pt"], numbers[".onnx"]
    assert {"n", "nme", "fr", "auc", "pearson", "per_source"} <= set(pt) and pt["n"] == 180
    assert set(pt["per_source"]) == {"300w_afw", "300w_helen_train"}
    assert ox["nme"] == pytest.approx(pt["nme"], abs=1e-5), "ONNX Runtime and torch give the same NME"


def test_evaluation_with_detector_crops(tiny_run: Path, shared_data: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "det.json"
    assert evaluate.main(["--model", str(tiny_run / "best.pt"), "--data", str(shared_data), "--crops", "short",
                          "--limit", "6", "--json", str(out), "--plot", str(tmp_path / "det.png")]) == 0
    numbers = json.loads(out.read_text())
    assert numbers["n"] + numbers["missed"] == 6 and numbers["n"] >= 5
    assert "short crops" in capsys.readouterr().out


def test_evaluation_scores_against_offset_labels_and_flip_averaged(tiny_run: Path, shared_data: Path,
                                                                   tmp_path: Path) -> None:
    """--label-offsets moves the truth by the source's offset, so the signed error moves by minus it;
    --flip-average runs the mirrored crops too and reports the same faces."""
    offsets = tmp_path / "offsets.json"
    offsets.write_text(json.dumps({"offsets": {"300w_afw": {"dx": 0.03, "dy": -0.02, "faces": 100}}}))
    runs = {}
    for name, extra in (("plain", []), ("moved", ["--label-offsets", str(offsets)]), ("flip", ["--flip-average"])):
        out = tmp_path / f"{name}.json"
        assert evaluate.main(["--model", str(tiny_run / "best.pt"), "--data", str(shared_data), "--limit", "8",
                              "--json", str(out), *extra]) == 0
        runs[name] = json.loads(out.read_text())["per_source"]["300w_afw"]
    assert runs["moved"]["dx"] == pytest.approx(runs["plain"]["dx"] - 0.03, abs=2e-3)
    assert runs["moved"]["dy"] == pytest.approx(runs["plain"]["dy"] + 0.02, abs=2e-3)
    assert runs["flip"]["n"] == runs["plain"]["n"] and runs["flip"]["nme"] != runs["plain"]["nme"]


def test_export_refuses_a_file_that_does_not_match_torch(tiny_run: Path, tmp_path: Path) -> None:
    with pytest.raises(export.ExportError, match="differs from torch"):
        export.export(tiny_run / "best.pt", tmp_path / "never.onnx", tolerance=0.0)
    assert not (tmp_path / "never.onnx").exists()


def test_malformed_checkpoint_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "broken.pt"
    bad.write_bytes(b"\x80\x02not a checkpoint at all")
    with pytest.raises(CheckpointError, match="broken.pt"):
        load_model_from_checkpoint(bad)
    plain = tmp_path / "plain.pt"
    torch.save({"weights": torch.zeros(2)}, plain)
    with pytest.raises(CheckpointError, match="plain.pt.*missing"):
        load_model_from_checkpoint(plain)


def test_malformed_dataset_folder_fails_with_its_name(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    empty = tmp_path / "not_a_dataset"
    empty.mkdir()
    (empty / "photo.jpg").write_bytes(b"")
    assert train.main(["--data", str(empty), "--out", str(tmp_path / "run")]) == 2
    assert "not_a_dataset" in capsys.readouterr().err
    assert evaluate.main(["--model", str(tmp_path / "missing.pt"), "--data", str(empty)]) == 2
    assert "missing.pt" in capsys.readouterr().err
