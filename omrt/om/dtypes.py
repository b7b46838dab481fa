"""Data-type numbering in the three namespaces omrt meets: numpy, GE's proto DataType, aclDataType."""
from __future__ import annotations

import numpy as np

from omrt.constants import ACL_ERROR_GE_DATATYPE_INVALID
from omrt.errors import OmrtError

# (numpy dtype, GE proto DataType, aclDataType)
_TABLE: list[tuple[np.dtype, int, int]] = [
    (np.dtype(np.float32), 1, 0),
    (np.dtype(np.float16), 2, 1),
    (np.dtype(np.int8), 3, 2),
    (np.dtype(np.uint8), 4, 4),
    (np.dtype(np.int16), 5, 6),
    (np.dtype(np.uint16), 6, 7),
    (np.dtype(np.int32), 7, 3),
    (np.dtype(np.int64), 8, 9),
    (np.dtype(np.uint32), 9, 8),
    (np.dtype(np.uint64), 10, 10),
    (np.dtype(np.bool_), 11, 12),
    (np.dtype(np.float64), 12, 11),
]

_NP_TO_GE = {d: ge for d, ge, _ in _TABLE}
_GE_TO_NP = {ge: d for d, ge, _ in _TABLE}
_NP_TO_ACL = {d: acl for d, _, acl in _TABLE}
_ACL_TO_NP = {acl: d for d, _, acl in _TABLE}

GE_DT_NAMES = {
    0: "DT_UNDEFINED", 1: "DT_FLOAT", 2: "DT_FLOAT16", 3: "DT_INT8", 4: "DT_UINT8", 5: "DT_INT16",
    6: "DT_UINT16", 7: "DT_INT32", 8: "DT_INT64", 9: "DT_UINT32", 10: "DT_UINT64", 11: "DT_BOOL",
    12: "DT_DOUBLE", 13: "DT_STRING",
}


def ge_from_numpy(dtype: np.dtype) -> int:
    """GE proto DataType for a numpy dtype; unsupported dtypes are a typed error."""
    try:
        return _NP_TO_GE[np.dtype(dtype)]
    except KeyError:
        raise OmrtError(ACL_ERROR_GE_DATATYPE_INVALID, f"data type {np.dtype(dtype)} is not supported") from None


def numpy_from_ge(ge_dtype: int) -> np.dtype:
    """numpy dtype for a GE proto DataType; unknown values are a typed error (hostile files)."""
    try:
        return _GE_TO_NP[int(ge_dtype)]
    except KeyError:
        raise OmrtError(ACL_ERROR_GE_DATATYPE_INVALID, f"unknown or unsupported data type {ge_dtype}") from None


def acl_from_numpy(dtype: np.dtype) -> int:
    """aclDataType for a numpy dtype (ACL_DT_UNDEFINED = -1 when there is none)."""
    return _NP_TO_ACL.get(np.dtype(dtype), -1)


def numpy_from_acl(acl_dtype: int) -> np.dtype | None:
    """numpy dtype for an aclDataType, or None."""
    return _ACL_TO_NP.get(int(acl_dtype))
