"""core.runtime.contract: the one place the model file's tensor names, opset and format live, and what an
export records about where a file came from."""
from __future__ import annotations

import ast
import json
import subprocess
from pathlib import Path

import pytest

from core.runtime.contract import (INPUT_NAME, MIN_OPSET, OPTIONAL_KEYS, OUTPUT_NAMES, REQUIRED_KEYS, ModelError,
                                   ModelMetadata, check_format_version, code_version, export_arguments)
from core.runtime.onnx_file import check_onnx_file
from core.paths import REPO_ROOT
from tests.helpers_onnx import make_model

CONTRACT = Path("core/runtime/contract.py")
TENSOR_NAMES = {INPUT_NAME, *OUTPUT_NAMES}
#: Strings equal to a tensor name that name something else: the shared data's photo path (a column of
#: manifest.csv, a key of faces_meta.json).
OTHER_MEANINGS = {(Path(p), "image") for p in ("core/offline/datasets.py", "core/offline/evaluation.py",
                                                "tools/make_clips.py")}


def python_sources() -> list[Path]:
    """Every tracked and new Python file of the project but the tests (paths relative to the root)."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.py"], cwd=REPO_ROOT,
                            capture_output=True, text=True, check=True).stdout.split()
    return [Path(p) for p in listed if not p.startswith("tests/") and (REPO_ROOT / p).exists()]


def tensor_name_literals(path: Path, root: Path = REPO_ROOT) -> list[tuple[int, str]]:
    """(line, name) of every string constant in ``root / path`` that equals a tensor name."""
    tree = ast.parse((root / path).read_text(encoding="utf-8"))
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and node.value in TENSOR_NAMES and (path, node.value) not in OTHER_MEANINGS]


def test_no_tensor_name_is_spelled_out_outside_the_contract() -> None:
    sources = python_sources()
    assert CONTRACT in sources and Path("training/export.py") in sources
    found = {str(path): hits for path in sources if path != CONTRACT and (hits := tensor_name_literals(path))}
    assert found == {}, "import the names from core.runtime.contract"
    assert {value for _, value in tensor_name_literals(CONTRACT)} == TENSOR_NAMES


def test_the_scan_finds_a_literal_where_there_is_one(tmp_path: Path) -> None:
    """The test above can fail: a file that spells out an output name is caught."""
    (tmp_path / "bad.py").write_text('outputs = session.run(["anchor_confidence"], feeds)\n')
    assert tensor_name_literals(Path("bad.py"), tmp_path) == [(1, "anchor_confidence")]


def test_training_takes_the_contract_from_the_one_module() -> None:
    for module in ("training/export.py", "training/quantize.py", "training/onnx_init.py"):
        imports = {node.module for node in ast.walk(ast.parse((REPO_ROOT / module).read_text()))
                   if isinstance(node, ast.ImportFrom)}
        assert "core.runtime.contract" in imports, module


def test_format_version_check_names_the_file_and_the_versions_read() -> None:
    assert check_format_version(" 1 ", "m.onnx") == "1"
    with pytest.raises(ModelError, match=r"m.onnx: anchorface_format '2' is not supported .* reads version 1"):
        check_format_version("2", "m.onnx")


def test_a_file_below_the_minimum_opset_is_refused(tmp_path: Path) -> None:
    old = make_model(tmp_path / "old.onnx", opset=MIN_OPSET - 1)
    with pytest.raises(ModelError, match=f"opset {MIN_OPSET - 1}; the model contract needs opset >= {MIN_OPSET}"):
        check_onnx_file(old)


def test_provenance_is_recorded_and_optional() -> None:
    meta = ModelMetadata(model_type="anchorface", scheme="ibug68", input_size=160, crop_margin=1.5, num_templates=24,
                         grid=5, anchor_area=40.0, width=1.0, name="m", training_data="d", val_nme=None,
                         created="2026-12-05", code_version=code_version(),
                         export_args=export_arguments({"opset": MIN_OPSET, "out": Path("m.onnx")}))
    props = meta.to_props()
    assert props["code_version"].startswith(("git ", "anchorface-live ")) and props["code_version"] != "git "
    assert json.loads(props["export_args"]) == {"opset": MIN_OPSET, "out": "m.onnx"}
    assert ModelMetadata.from_props(props, "m.onnx") == meta
    older = {k: v for k, v in props.items() if k not in OPTIONAL_KEYS}  # a file exported before provenance
    assert set(older) == set(REQUIRED_KEYS)
    assert ModelMetadata.from_props(older, "m.onnx").code_version == ""
