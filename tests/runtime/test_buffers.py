"""Data buffers, datasets and tensor descriptors."""
from __future__ import annotations

import pytest

from omrt import constants as C
from omrt.errors import OmrtError
from omrt.runtime import buffers


def test_data_buffer_lifecycle():
    b = buffers.create_data_buffer(0, 1)
    assert b and buffers.data_buffer(b).addr == 0
    buffers.update_data_buffer(b, 0x1000, 64)
    assert (buffers.data_buffer(b).addr, buffers.data_buffer(b).size) == (0x1000, 64)
    buffers.destroy_data_buffer(b)
    with pytest.raises(OmrtError) as e:
        buffers.data_buffer(b)
    assert e.value.code == C.ACL_ERROR_INVALID_PARAM


def test_dataset():
    ds = buffers.create_dataset()
    bufs = [buffers.create_data_buffer(0x1000 * (i + 1), 8) for i in range(3)]
    for b in bufs:
        buffers.add_dataset_buffer(ds, b)
    assert buffers.dataset_num_buffers(ds) == 3
    assert [buffers.dataset_buffer(ds, i) for i in range(4)] == [*bufs, 0]
    assert buffers.dataset_buffer(ds, -1) == 0 and buffers.dataset_num_buffers(0) == 0
    assert buffers.dataset(ds).buffer(1).addr == 0x2000
    with pytest.raises(OmrtError):
        buffers.dataset(ds).buffer(3)
    with pytest.raises(OmrtError):
        buffers.add_dataset_buffer(ds, 0)
    td = buffers.create_tensor_desc(C.ACL_FLOAT, [1, 3], C.ACL_FORMAT_ND)
    buffers.set_dataset_tensor_desc(ds, td, 2)
    assert buffers.dataset_tensor_desc(ds, 2) == td
    buffers.destroy_dataset(ds)
    assert buffers.data_buffer(bufs[0]).size == 8  # buffers outlive the dataset
    with pytest.raises(OmrtError):
        buffers.destroy_dataset(ds)


def test_tensor_desc_and_dtype_sizes():
    td = buffers.create_tensor_desc(C.ACL_FLOAT16, [2, 3, 4], C.ACL_FORMAT_NCHW)
    assert buffers.tensor_desc(td).size == 48
    assert buffers.tensor_desc(buffers.create_tensor_desc(C.ACL_FLOAT, [-1, 3], 0)).size == 0
    buffers.destroy_tensor_desc(td)
    buffers.destroy_tensor_desc(td)
    sizes = {C.ACL_FLOAT: 4, C.ACL_FLOAT16: 2, C.ACL_INT8: 1, C.ACL_INT64: 8, C.ACL_DOUBLE: 8,
             C.ACL_BOOL: 1, C.ACL_BF16: 2, C.ACL_STRING: 0, 5: 0, -1: 0}
    assert {k: buffers.data_type_size(k) for k in sizes} == sizes
