"""TensorDesc <-> ge.proto.TensorDescriptor, with the checks a hostile file needs."""
from __future__ import annotations

import numpy as np

from omrt.constants import ACL_ERROR_GE_SHAPE_INVALID, ACL_MAX_DIM_CNT
from omrt.errors import OmrtError
from omrt.om.dtypes import ge_from_numpy, numpy_from_ge
from omrt.om.model import TensorDesc
from omrt.om.proto import ge_ir_pb2 as ge

# No tensor may claim more bytes than this; keeps size arithmetic inside int64.
MAX_TENSOR_BYTES = 1 << 62


def nbytes_of(dtype: np.dtype, shape: tuple[int, ...]) -> int:
    """Exact byte size with Python integers (numpy's int64 product can wrap on hostile dims)."""
    n = np.dtype(dtype).itemsize
    for d in shape:
        n *= d
    return n


def fill_desc(td: ge.TensorDescriptor, desc: TensorDesc) -> None:
    """Write name, dtype, shape, layout and size (= nbytes) into td."""
    td.name = desc.name
    td.dtype = ge_from_numpy(desc.dtype)
    td.shape.dim.extend(int(d) for d in desc.shape)
    td.layout = desc.layout
    td.size = desc.nbytes


def read_desc(td: ge.TensorDescriptor, *, check_size: bool = True) -> TensorDesc:
    """TensorDesc from td: known dtype, non-negative dims, size equal to the bytes the shape needs."""
    dtype = numpy_from_ge(td.dtype)
    shape = tuple(int(d) for d in td.shape.dim)
    if len(shape) > ACL_MAX_DIM_CNT:
        raise OmrtError(ACL_ERROR_GE_SHAPE_INVALID, f"tensor {td.name!r} has {len(shape)} dims (max {ACL_MAX_DIM_CNT})")
    if any(d < 0 for d in shape):
        raise OmrtError(ACL_ERROR_GE_SHAPE_INVALID, f"tensor {td.name!r} has a negative dim in {list(shape)}")
    nbytes = nbytes_of(dtype, shape)
    if nbytes > MAX_TENSOR_BYTES:
        raise OmrtError(ACL_ERROR_GE_SHAPE_INVALID, f"tensor {td.name!r} of shape {list(shape)} is too large")
    if check_size and td.size != nbytes:
        raise OmrtError(ACL_ERROR_GE_SHAPE_INVALID,
                        f"tensor {td.name!r}: size {td.size} != {nbytes} bytes of {dtype}{list(shape)}")
    return TensorDesc(td.name, dtype, shape, td.layout)
