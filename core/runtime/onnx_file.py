"""Is this file ONNX at all, is it complete, which opset? — answered from the protobuf wire format.

Only onnxruntime is installed at run time (the ``onnx`` package is a training extra), and ONNX
Runtime's own error for a wrong file is a long C++ message; reading the top level of the wire format
directly gives a precise one-line reason before a session is ever tried.
"""
from __future__ import annotations

from pathlib import Path

from core.runtime.contract import MIN_OPSET, ModelError

#: Top-level ModelProto field numbers (onnx.proto): ir_version, producer_name/version, domain,
#: model_version, doc_string, graph, opset_import, metadata_props, training_info, functions, configuration.
_MODEL_FIELDS = {1, 2, 3, 4, 5, 6, 7, 8, 14, 20, 25, 26}
_GRAPH_FIELD, _OPSET_FIELD = 7, 8


class _Truncated(Exception):
    pass


def check_onnx_file(path: Path) -> None:
    """Fail early, with a precise :class:`ModelError`, on a file that is missing, not ONNX or cut short.

    Protobuf serialisers write fields in field-number order, so every ONNX file starts with
    ``ir_version`` (field 1, a varint): anything else is some other kind of file. A length that runs
    past the end of the file means the file was cut short.
    """
    if not path.exists():
        raise ModelError(f"model file not found: {path}")
    if not path.is_file():
        raise ModelError(f"model path is not a file: {path}")
    data = path.read_bytes()
    if not data:
        raise ModelError(f"{path} is empty (0 bytes), not an ONNX model")
    not_onnx = ModelError(f"{path} is not an ONNX model (it starts with {data[:12]!r}; an ONNX file starts with "
                          "its IR version)")
    if data[0] != 0x08:
        raise not_onnx
    try:
        fields = _top_level_fields(data, not_onnx)
    except _Truncated:
        raise ModelError(f"{path} is truncated: the ONNX data stops at byte {len(data)} in the middle of a field "
                         "(incomplete download or copy?)") from None
    if not 1 <= int(fields[1][0]) <= 100:  # ir_version
        raise not_onnx
    if _GRAPH_FIELD not in fields:
        raise ModelError(f"{path} has no graph: the ONNX file is incomplete (truncated?)")
    opsets = dict(_opset_entry(entry) for entry in fields.get(_OPSET_FIELD, []))  # type: ignore[arg-type]
    default = opsets.get("", opsets.get("ai.onnx"))
    if default is None:
        raise ModelError(f"{path} declares no ONNX opset: the file is incomplete (truncated?)")
    if default < MIN_OPSET:
        raise ModelError(f"{path} uses ONNX opset {default}; the model contract needs opset >= {MIN_OPSET}")


def _top_level_fields(data: bytes, not_onnx: ModelError) -> dict[int, list[bytes | int]]:
    """Field number → values of the ModelProto's top level; raises ``not_onnx`` on a foreign field."""
    fields: dict[int, list[bytes | int]] = {}
    pos = 0
    while pos < len(data):
        tag, pos = _varint(data, pos)
        field, wire = tag >> 3, tag & 7
        if field not in _MODEL_FIELDS or wire not in (0, 1, 2, 5):
            raise not_onnx
        value: bytes | int
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 2:
            length, pos = _varint(data, pos)
            if pos + length > len(data):
                raise _Truncated
            value, pos = data[pos:pos + length], pos + length
        else:
            size = 8 if wire == 1 else 4
            if pos + size > len(data):
                raise _Truncated
            value, pos = int.from_bytes(data[pos:pos + size], "little"), pos + size
        fields.setdefault(field, []).append(value)
    return fields


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data):
            raise _Truncated
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _opset_entry(data: bytes) -> tuple[str, int]:
    """OperatorSetIdProto: field 1 domain (string), field 2 version (varint)."""
    domain, version, pos = "", 0, 0
    while pos < len(data):
        tag, pos = _varint(data, pos)
        if tag == (1 << 3 | 2):
            length, pos = _varint(data, pos)
            domain, pos = data[pos:pos + length].decode("utf-8", "replace"), pos + length
        elif tag == (2 << 3 | 0):
            version, pos = _varint(data, pos)
        else:
            break
    return domain, version
