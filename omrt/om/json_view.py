"""`atc --mode 1`: the MODEL_DEF partition as the JSON GE's Pb2Json writes.

Rules (Ascend parser pb2json.cc): only set fields, blacklisted field names dropped at every level,
enums by name, floats as "%g" strings, bytes as raw strings, maps as [{"key", "value"}] arrays,
object keys sorted (nlohmann::json objects are std::map).
"""
from __future__ import annotations

from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from omrt.om.container import model_def, open_container

OM_BLACK_FIELDS = frozenset({
    "output", "data_offset", "data", "workspace", "workspace_bytes", "memory_size", "weight_size", "size",
    "bt", "quantize_factor",
})


def _scalar(field: FieldDescriptor, value: Any) -> Any:
    if field.type == FieldDescriptor.TYPE_ENUM:
        enum_value = field.enum_type.values_by_number.get(value)
        return enum_value.name if enum_value is not None else value
    if field.type in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE):
        return "%g" % value
    if field.type == FieldDescriptor.TYPE_BYTES:
        return bytes(value).decode("utf-8", errors="replace")
    return value


def _is_repeated(field: FieldDescriptor) -> bool:
    """FieldDescriptor.is_repeated (protobuf >= 6) or its older label spelling."""
    flag = getattr(field, "is_repeated", None)
    return bool(flag) if flag is not None else field.label == FieldDescriptor.LABEL_REPEATED


def _is_map(field: FieldDescriptor) -> bool:
    return field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type.GetOptions().map_entry


def message_to_json(msg: Message, black: frozenset[str] = OM_BLACK_FIELDS) -> dict[str, Any]:
    """One message as Pb2Json::Message2Json(msg, black, json, enum2str=true) builds it."""
    out: dict[str, Any] = {}
    for field, value in sorted(msg.ListFields(), key=lambda fv: fv[0].name):
        if field.name in black:
            continue
        if _is_map(field):
            value_field = field.message_type.fields_by_name["value"]
            entries = []
            for key in sorted(value):
                v = value[key]
                entry = {"key": key}
                if value_field.type == FieldDescriptor.TYPE_MESSAGE:
                    sub = message_to_json(v, black)
                    entry["value"] = sub if sub else None
                else:
                    entry["value"] = _scalar(value_field, v)
                entries.append(entry)
            out[field.name] = entries
        elif _is_repeated(field):
            if field.type == FieldDescriptor.TYPE_MESSAGE:
                out[field.name] = [message_to_json(v, black) or None for v in value]
            else:
                out[field.name] = [_scalar(field, v) for v in value]
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            if value.ByteSize() == 0:
                continue
            out[field.name] = message_to_json(value, black)
        else:
            out[field.name] = _scalar(field, value)
    return out


def om_to_json(data: bytes | memoryview) -> dict[str, Any]:
    """The JSON object `atc --mode 1` writes for a .om (serialise with json.dumps(indent=2))."""
    md, _ = model_def(open_container(data))
    return message_to_json(md)
