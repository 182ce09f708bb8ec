"""The model-file contract in one module: tensor names, minimum opset, format version, metadata.

The exporter (``training/export.py``), the INT8 quantiser (``training/quantize.py``), the ONNX → torch
initialiser (``training/onnx_init.py``) and the runtime's loader (:mod:`core.runtime.verify`,
:mod:`core.runtime.onnx_file`) all take the contract from here, so a name, an opset or a metadata key
cannot drift between the side that writes a file and the side that reads it (a test checks that no
tensor name is spelled out anywhere else). One dataclass with :meth:`ModelMetadata.to_props` (the ONNX
``metadata_props`` strings the export writes) and :meth:`ModelMetadata.from_props` (the check the
runtime runs): a key the exporter writes is a key the loader requires, parsed with the same type.
Torch-free and onnx-free (plain strings in, plain strings out), so the app reads it with onnxruntime
alone and training writes it with the ``onnx`` package.

Besides what the runtime needs, a file records where it came from, as ultralytics' exports do: the
code version (``git describe``, else the package version) and the export's arguments. Both are
optional keys, so files written before them still load; so is ``quantized_from``, which an INT8 file
carries to name the fp32 file it was made from.
"""
from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, fields
from importlib import metadata as package_metadata
from pathlib import Path
from typing import Any, Mapping, Protocol

from core.paths import REPO_ROOT
from core.schemes import SCHEMES

#: The graph's one input: float32 RGB ``[N, 3, S, S]`` in 0..1 (``core.runtime.model_input``).
INPUT_NAME = "image"
#: Outputs: per-anchor landmarks ``[N, M, L, 2]`` in crop pixels, per-anchor confidence ``[N, M]`` in (0, 1).
OUTPUT_LANDMARKS = "anchor_landmarks"
OUTPUT_CONFIDENCE = "anchor_confidence"
OUTPUT_NAMES = (OUTPUT_LANDMARKS, OUTPUT_CONFIDENCE)
#: Every tensor's first axis is the batch (one crop per face), dynamic.
DYNAMIC_AXES = {name: {0: "batch"} for name in (INPUT_NAME, *OUTPUT_NAMES)}
#: The oldest ONNX opset a file may use.
MIN_OPSET = 17

#: The ``anchorface_format`` this code writes, and the versions it reads.
FORMAT_VERSION = "1"
SUPPORTED_FORMATS = ("1",)
MODEL_TYPES = ("anchorface", "direct")
#: Provenance keys: written by every export since they were added, not required of older files.
OPTIONAL_KEYS = ("code_version", "export_args", "quantized_from")


class ModelError(ValueError):
    """The model file is missing, unreadable or breaks the model contract; the message says which."""


@dataclass(frozen=True)
class ModelMetadata:
    """What a model file says about itself: everything the runtime needs to crop, decode and label.

    ``val_nme`` is None when the exporter did not know it (written as an empty string).
    """

    model_type: str
    scheme: str
    input_size: int
    crop_margin: float
    num_templates: int
    grid: int
    anchor_area: float
    width: float
    name: str
    training_data: str
    val_nme: float | None
    created: str
    format_version: str = FORMAT_VERSION
    #: ``git describe`` of the code that exported the file (else the package version); "" = not recorded.
    code_version: str = ""
    #: The export's arguments as JSON text; "" = not recorded.
    export_args: str = ""
    #: An INT8 file: SHA-256 of the fp32 file it was quantised from (``core.runtime.precision``); "" = none.
    quantized_from: str = ""

    def to_props(self) -> dict[str, str]:
        """The ``metadata_props`` of the file, all strings (ONNX stores only strings)."""
        props = {"anchorface_format": self.format_version}
        for f in fields(ModelMetadata):
            value = getattr(self, f.name)
            if f.name == "format_version" or (f.name in OPTIONAL_KEYS and not value):
                continue
            props[f.name] = "" if value is None else f"{value:.5f}" if f.name == "val_nme" else str(value)
        return props

    @classmethod
    def from_props(cls, props: Mapping[str, str], source: object) -> ModelMetadata:
        """Parse and check ``props``; one :class:`ModelError` naming ``source`` lists every problem."""
        missing = [k for k in REQUIRED_KEYS if k not in props]
        if missing:
            raise ModelError(f"{source}: metadata_props lack required key(s) {', '.join(missing)} "
                             f"(the export must write all of: {', '.join(REQUIRED_KEYS)})")
        version = check_format_version(props["anchorface_format"], source)
        problems = metadata_problems(props)
        if problems:
            raise ModelError(f"{source} breaks the AnchorFace model contract: " + "; ".join(problems))
        return cls(model_type=props["model_type"], scheme=props["scheme"], input_size=int(props["input_size"]),
                   crop_margin=float(props["crop_margin"]), num_templates=int(props["num_templates"]),
                   grid=int(props["grid"]), anchor_area=float(props["anchor_area"]), width=float(props["width"]),
                   name=props["name"], training_data=props["training_data"],
                   val_nme=float(props["val_nme"]) if props["val_nme"].strip() else None,
                   created=props["created"], format_version=version,
                   **{key: props[key] for key in OPTIONAL_KEYS if key in props})


def check_format_version(text: str, source: object) -> str:
    """The ``anchorface_format`` of ``source``, stripped, if this runtime reads it; :class:`ModelError` if not."""
    version = text.strip()
    if version not in SUPPORTED_FORMATS:
        raise ModelError(f"{source}: anchorface_format {version!r} is not supported by this runtime "
                         f"(it reads version {', '.join(SUPPORTED_FORMATS)}); update the app or re-export")
    return version


#: Every key a file must carry: ``anchorface_format`` plus one per field (but the provenance keys).
REQUIRED_KEYS = ("anchorface_format",) + tuple(f.name for f in fields(ModelMetadata)
                                               if f.name != "format_version" and f.name not in OPTIONAL_KEYS)


class _Prop(Protocol):
    key: str
    value: str


class _HasProps(Protocol):
    """An ``onnx.ModelProto`` as far as metadata goes (duck-typed: this module does not import onnx)."""

    @property
    def metadata_props(self) -> Any: ...


def read_props(graph: _HasProps) -> dict[str, str]:
    """The ``metadata_props`` of an ONNX ``ModelProto`` as a dict."""
    return {prop.key: prop.value for prop in graph.metadata_props}


def write_props(graph: _HasProps, meta: ModelMetadata) -> None:
    """Replace the ``metadata_props`` of an ONNX ``ModelProto`` with ``meta``'s."""
    del graph.metadata_props[:]
    for key, value in meta.to_props().items():
        graph.metadata_props.add(key=key, value=value)


def code_version(repo: Path = REPO_ROOT) -> str:
    """What code this is: ``git describe --always --dirty`` of the checkout, else the installed package's
    version, else "unknown" (recorded in every exported file)."""
    try:
        described = subprocess.run(["git", "-C", str(repo), "describe", "--always", "--dirty", "--tags"],
                                   capture_output=True, text=True, timeout=10)
        if described.returncode == 0 and described.stdout.strip():
            return f"git {described.stdout.strip()}"
    except (OSError, subprocess.SubprocessError):
        pass  # no git here (an installed package): the package version says it
    try:
        return f"anchorface-live {package_metadata.version('anchorface-live')}"
    except package_metadata.PackageNotFoundError:
        return "unknown"


def export_arguments(arguments: Mapping[str, Any]) -> str:
    """The export's arguments as the JSON text the file records (paths and other values as strings)."""
    return json.dumps(dict(arguments), sort_keys=True, default=str)

#: Numeric keys: (type, must be positive).
_NUMBERS = {"input_size": (int, True), "crop_margin": (float, True), "num_templates": (int, True),
            "grid": (int, True), "anchor_area": (float, True), "width": (float, True), "val_nme": (float, False)}


def metadata_problems(props: Mapping[str, str]) -> list[str]:
    """Every value-level contract violation in ``props`` (all keys present), one phrase each."""
    problems: list[str] = []
    numbers: dict[str, float] = {}
    for key, (kind, positive) in _NUMBERS.items():
        text = props[key]
        if key == "val_nme" and not text.strip():
            continue
        try:
            numbers[key] = kind(text)
        except ValueError:
            problems.append(f"metadata {key}={text!r} is not a{'n integer' if kind is int else ' number'}")
            continue
        if positive and not numbers[key] > 0:
            problems.append(f"metadata {key}={text!r} must be positive")
    model_type = props["model_type"]
    if model_type not in MODEL_TYPES:
        problems.append(f"metadata model_type {model_type!r} is not one of {', '.join(MODEL_TYPES)}")
    elif model_type == "direct" and (numbers.get("num_templates"), numbers.get("grid")) != (1, 1):
        problems.append(f"a direct model has num_templates=1 and grid=1, got {props['num_templates']} "
                        f"and {props['grid']}")
    if props["scheme"] not in SCHEMES:
        problems.append(f"metadata scheme {props['scheme']!r} is unknown (known: {', '.join(sorted(SCHEMES))})")
    return problems
