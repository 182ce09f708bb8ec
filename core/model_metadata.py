"""The model file's metadata contract, written by the exporter and read back by the runtime.

One dataclass with :meth:`ModelMetadata.to_props` (the ONNX ``metadata_props`` strings the export
writes) and :meth:`ModelMetadata.from_props` (the check the runtime runs), so the two sides cannot
drift: a key the exporter writes is a key the loader requires, parsed with the same type. Torch-free
and onnx-free (plain strings in, plain strings out), so the app reads it with onnxruntime alone and
training writes it with the ``onnx`` package.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Mapping

from core.schemes import SCHEMES

#: The ``anchorface_format`` this code writes, and the versions it reads.
FORMAT_VERSION = "1"
SUPPORTED_FORMATS = ("1",)
MODEL_TYPES = ("anchorface", "direct")


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

    def to_props(self) -> dict[str, str]:
        """The ``metadata_props`` of the file, all strings (ONNX stores only strings)."""
        props = {"anchorface_format": self.format_version}
        for f in fields(ModelMetadata):
            if f.name == "format_version":
                continue
            value = getattr(self, f.name)
            props[f.name] = "" if value is None else f"{value:.5f}" if f.name == "val_nme" else str(value)
        return props

    @classmethod
    def from_props(cls, props: Mapping[str, str], source: object) -> ModelMetadata:
        """Parse and check ``props``; one :class:`ModelError` naming ``source`` lists every problem."""
        missing = [k for k in REQUIRED_KEYS if k not in props]
        if missing:
            raise ModelError(f"{source}: metadata_props lack required key(s) {', '.join(missing)} "
                             f"(the export must write all of: {', '.join(REQUIRED_KEYS)})")
        version = props["anchorface_format"].strip()
        if version not in SUPPORTED_FORMATS:
            raise ModelError(f"{source}: anchorface_format {version!r} is not supported by this runtime "
                             f"(it reads version {', '.join(SUPPORTED_FORMATS)}); update the app or re-export")
        problems = metadata_problems(props)
        if problems:
            raise ModelError(f"{source} breaks the AnchorFace model contract: " + "; ".join(problems))
        return cls(model_type=props["model_type"], scheme=props["scheme"], input_size=int(props["input_size"]),
                   crop_margin=float(props["crop_margin"]), num_templates=int(props["num_templates"]),
                   grid=int(props["grid"]), anchor_area=float(props["anchor_area"]), width=float(props["width"]),
                   name=props["name"], training_data=props["training_data"],
                   val_nme=float(props["val_nme"]) if props["val_nme"].strip() else None,
                   created=props["created"], format_version=version)


#: Every key a file must carry: ``anchorface_format`` plus one per field.
REQUIRED_KEYS = ("anchorface_format",) + tuple(f.name for f in fields(ModelMetadata) if f.name != "format_version")

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
