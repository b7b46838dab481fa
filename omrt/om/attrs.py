"""Python attribute values <-> ge.proto.AttrDef, so that values come back equal (bool stays bool).

int -> i, float -> f (float32 on disk, as in GE), str -> s (UTF-8), bytes -> bt, bool -> b,
numpy array -> t (inline data), lists of one kind -> list (val_type says which kind),
list of int lists -> list_list_int. Tuples come back as lists.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from omrt.constants import ACL_ERROR_GE_EXEC_LOAD_MODEL_PARTITION_FAILED, ACL_ERROR_GE_PARAM_INVALID
from omrt.errors import OmrtError
from omrt.om.dtypes import ge_from_numpy
from omrt.om.model import TensorDesc
from omrt.om.proto import ge_ir_pb2 as ge
from omrt.om.tensors import read_desc

_VT = ge.AttrDef.ListValue
_INT64 = (-(1 << 63), (1 << 63) - 1)


def _bad(key: str, why: str) -> OmrtError:
    return OmrtError(ACL_ERROR_GE_PARAM_INVALID, f"attribute {key!r}: {why}")


def _int(key: str, v: Any) -> int:
    v = int(v)
    if not _INT64[0] <= v <= _INT64[1]:
        raise _bad(key, f"integer {v} does not fit in int64")
    return v


def _fill_tensor(t: ge.TensorDef, arr: np.ndarray) -> None:
    arr = np.ascontiguousarray(arr)
    t.desc.dtype = ge_from_numpy(arr.dtype)
    t.desc.shape.dim.extend(int(d) for d in arr.shape)
    t.desc.layout = "ND"
    t.desc.size = arr.nbytes
    t.data = arr.tobytes()


def _kind(v: Any) -> str | None:
    if isinstance(v, (bool, np.bool_)):
        return "b"
    if isinstance(v, (int, np.integer)):
        return "i"
    if isinstance(v, (float, np.floating)):
        return "f"
    if isinstance(v, str):
        return "s"
    if isinstance(v, bytes):
        return "bt"
    if isinstance(v, np.ndarray):
        return "t"
    if isinstance(v, (list, tuple)) and all(_kind(x) == "i" for x in v):
        return "ii"
    return None


_LIST_TYPES = {"b": _VT.VT_LIST_BOOL, "i": _VT.VT_LIST_INT, "f": _VT.VT_LIST_FLOAT, "s": _VT.VT_LIST_STRING,
               "bt": _VT.VT_LIST_BYTES, "t": _VT.VT_LIST_TENSOR}


def to_attr(key: str, value: Any, out: ge.AttrDef) -> None:
    """Fill out with value; unsupported values are a typed error naming the attribute."""
    kind = _kind(value)
    if kind == "b":
        out.b = bool(value)
    elif kind == "i":
        out.i = _int(key, value)
    elif kind == "f":
        out.f = float(value)
    elif kind == "s":
        out.s = value.encode("utf-8")
    elif kind == "bt":
        out.bt = value
    elif kind == "t":
        _fill_tensor(out.t, value)
    elif isinstance(value, (list, tuple)):
        _to_list(key, list(value), out)
    else:
        raise _bad(key, f"values of type {type(value).__name__} cannot be stored")


def _to_list(key: str, items: list, out: ge.AttrDef) -> None:
    kinds = {_kind(x) for x in items}
    if kinds == {"i", "f"}:
        kinds = {"f"}
    lv = out.list
    if not items:
        lv.SetInParent()
        return
    if kinds == {"ii"}:
        for row in items:
            out.list_list_int.list_list_i.add().list_i.extend(_int(key, x) for x in row)
        return
    if len(kinds) != 1 or next(iter(kinds)) not in _LIST_TYPES:
        raise _bad(key, f"lists must hold one kind of int, float, str, bytes, bool or array, got {sorted(map(str, kinds))}")
    kind = kinds.pop()
    lv.val_type = _LIST_TYPES[kind]
    if kind == "b":
        lv.b.extend(bool(x) for x in items)
    elif kind == "i":
        lv.i.extend(_int(key, x) for x in items)
    elif kind == "f":
        lv.f.extend(float(x) for x in items)
    elif kind == "s":
        lv.s.extend(x.encode("utf-8") for x in items)
    elif kind == "bt":
        lv.bt.extend(items)
    else:
        for arr in items:
            _fill_tensor(lv.t.add(), arr)


def _corrupt(key: str, why: str) -> OmrtError:
    return OmrtError(ACL_ERROR_GE_EXEC_LOAD_MODEL_PARTITION_FAILED, f"attribute {key!r}: {why}")


def _text(key: str, raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _corrupt(key, "string is not valid UTF-8") from None


def _tensor(key: str, t: ge.TensorDef) -> np.ndarray:
    desc: TensorDesc = read_desc(t.desc)
    if len(t.data) != desc.nbytes:
        raise _corrupt(key, f"tensor holds {len(t.data)} bytes, its shape needs {desc.nbytes}")
    return np.frombuffer(t.data, dtype=desc.dtype).reshape(desc.shape).copy()


def from_attr(key: str, a: ge.AttrDef) -> Any:
    """The Python value of a; kinds omrt never writes are a typed error."""
    which = a.WhichOneof("value")
    if which == "b":
        return bool(a.b)
    if which in ("i", "dt"):
        return int(getattr(a, which))
    if which == "f":
        return float(a.f)
    if which == "s":
        return _text(key, a.s)
    if which == "bt":
        return bytes(a.bt)
    if which == "t":
        return _tensor(key, a.t)
    if which == "list_list_int":
        return [list(row.list_i) for row in a.list_list_int.list_list_i]
    if which == "list_list_float":
        return [list(row.list_f) for row in a.list_list_float.list_list_f]
    if which == "list":
        return _from_list(key, a.list)
    raise _corrupt(key, f"unsupported attribute kind {which}")


def _from_list(key: str, lv: ge.AttrDef.ListValue) -> list:
    vt = lv.val_type
    if vt == _VT.VT_LIST_NONE:
        filled = [f.name for f, _ in lv.ListFields() if f.name != "val_type"]
        if not filled:
            return []
        vt = {"b": _VT.VT_LIST_BOOL, "i": _VT.VT_LIST_INT, "f": _VT.VT_LIST_FLOAT, "s": _VT.VT_LIST_STRING,
              "bt": _VT.VT_LIST_BYTES, "t": _VT.VT_LIST_TENSOR, "dt": _VT.VT_LIST_DATA_TYPE}.get(filled[0], -1)
    if vt == _VT.VT_LIST_BOOL:
        return [bool(x) for x in lv.b]
    if vt == _VT.VT_LIST_INT:
        return [int(x) for x in lv.i]
    if vt == _VT.VT_LIST_DATA_TYPE:
        return [int(x) for x in lv.dt]
    if vt == _VT.VT_LIST_FLOAT:
        return [float(x) for x in lv.f]
    if vt == _VT.VT_LIST_STRING:
        return [_text(key, x) for x in lv.s]
    if vt == _VT.VT_LIST_BYTES:
        return [bytes(x) for x in lv.bt]
    if vt == _VT.VT_LIST_TENSOR:
        return [_tensor(key, t) for t in lv.t]
    raise _corrupt(key, f"unsupported list kind {vt}")


def attrs_to_map(attrs: dict[str, Any], out) -> None:
    """Fill a proto map<string, AttrDef> from a dict."""
    for key, value in attrs.items():
        if not isinstance(key, str):
            raise _bad(str(key), "attribute names must be str")
        to_attr(key, value, out[key])


def attrs_from_map(m) -> dict[str, Any]:
    """A dict from a proto map<string, AttrDef>, keys sorted (proto maps keep no order)."""
    return {key: from_attr(key, m[key]) for key in sorted(m)}
