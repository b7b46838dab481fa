"""What `aclmdlDesc` tells a client about a model: I/O names, dims, types, formats, sizes, gears.

A description is filled from a parsed `OfflineModel` (by model id, file or memory) and then only
read. Dynamic-batch models report the largest gear everywhere a size is asked for, so buffers a
client allocates from these numbers fit every gear.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from omrt import constants as C
from omrt.errors import OmrtError
from omrt.om.dtypes import acl_from_numpy
from omrt.om.model import OfflineModel, TensorDesc

_FORMATS = {
    "NCHW": C.ACL_FORMAT_NCHW,
    "NHWC": C.ACL_FORMAT_NHWC,
    "ND": C.ACL_FORMAT_ND,
    "NC1HWC0": C.ACL_FORMAT_NC1HWC0,
    "FRACTAL_Z": 4,
    "NC1HWC0_C04": 12,
    "HWCN": 16,
    "NDHWC": 27,
    "FRACTAL_NZ": 29,
    "NCDHW": C.ACL_FORMAT_NCDHW,
    "NDC1HWC0": 32,
    "FRACTAL_Z_3D": 33,
    "NC": 35,
    "NCL": 47,
}


def acl_format(layout: str) -> int:
    """aclFormat for a layout name; an unknown layout is ACL_FORMAT_UNDEFINED (-1)."""
    return _FORMATS.get(layout.upper(), C.ACL_FORMAT_UNDEFINED)


def dims_dict(name: str, dims: tuple[int, ...]) -> dict:
    """The dict pyACL returns for aclmdlIODims."""
    return {"name": name, "dimCount": len(dims), "dims": [int(d) for d in dims]}


@dataclass(frozen=True)
class IOInfo:
    """One model input or output as ACL reports it."""

    name: str
    dims: tuple[int, ...]          # largest gear
    origin_dims: tuple[int, ...]   # -1 where the batch is dynamic
    dtype: np.dtype
    layout: str

    @property
    def size(self) -> int:
        return int(np.prod(self.dims, dtype=np.int64)) * np.dtype(self.dtype).itemsize

    @property
    def data_type(self) -> int:
        return acl_from_numpy(self.dtype)

    @property
    def format(self) -> int:
        return acl_format(self.layout)


def _info(desc: TensorDesc, dynamic: bool) -> IOInfo:
    shape = tuple(int(d) for d in desc.shape)
    origin = (-1,) + shape[1:] if dynamic and shape else shape
    return IOInfo(desc.name, shape, origin, np.dtype(desc.dtype), desc.layout)


@dataclass
class ModelDescription:
    """The object behind an `aclmdlDesc` handle; empty until one of the get_desc calls fills it."""

    inputs: list[IOInfo] = field(default_factory=list)
    outputs: list[IOInfo] = field(default_factory=list)
    gears: list[int] = field(default_factory=list)
    gear_output_dims: dict[int, list[tuple[int, ...]]] = field(default_factory=dict)
    model_id: int | None = None    # set by get_desc(desc, model_id): get_cur_output_dims asks that model

    def fill(self, model: OfflineModel, model_id: int | None = None) -> None:
        """Describe `model`; replaces whatever the description held before."""
        dynamic = model.is_dynamic_batch
        self.inputs = [
            _info(d, dynamic and d.name != C.ACL_DYNAMIC_TENSOR_NAME) for d in model.inputs
        ]
        self.outputs = [_info(d, False) for d in model.outputs]
        self.gears = list(model.gears)
        self.gear_output_dims = {
            g.batch: [tuple(int(x) for x in desc.shape) for desc in g.output_descs]
            for g in model.graphs
            if g.batch is not None
        }
        self.model_id = model_id

    def _at(self, infos: list[IOInfo], index: int, what: str) -> IOInfo:
        if not 0 <= index < len(infos):
            raise OmrtError(
                C.ACL_ERROR_INVALID_PARAM,
                f"{what} index {index} out of range: the model has {len(infos)} {what}s",
            )
        return infos[index]

    def input(self, index: int) -> IOInfo:
        return self._at(self.inputs, index, "input")

    def output(self, index: int) -> IOInfo:
        return self._at(self.outputs, index, "output")

    def index_of(self, name: str, outputs: bool = False) -> int | None:
        """Index of the input (or output) called `name`, or None."""
        for i, info in enumerate(self.outputs if outputs else self.inputs):
            if info.name == name:
                return i
        return None

    def cur_output_dims(self, index: int, batch: int | None) -> tuple[int, ...]:
        """Output dims of the gear `batch` (the largest gear when no gear was chosen yet)."""
        info = self.output(index)
        if batch is None or batch not in self.gear_output_dims:
            return info.dims
        return self.gear_output_dims[batch][index]

    def dynamic_input_index(self) -> int | None:
        """Index of the ascend_mbatch_shape_data input, or None for a static model."""
        return self.index_of(C.ACL_DYNAMIC_TENSOR_NAME)
