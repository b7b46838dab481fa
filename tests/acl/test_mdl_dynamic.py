"""Dynamic batch end to end: a model compiled with gears 1, 2, 4 through acl.mdl."""
from __future__ import annotations

import numpy as np
import pytest

import acl

INVALID_PARAM = 100000
MODEL_NOT_DYNAMIC = 100019
GE_MODEL_ID_INVALID = 145003
DYNAMIC_INPUT_LENGTH_INVALID = 145012
DYNAMIC_BATCH_SIZE_INVALID = 145013
SHAPE_DATA = "ascend_mbatch_shape_data"
GEARS = [1, 2, 4]


@pytest.fixture
def loaded(dev, dyn):
    mid, ret = acl.mdl.load_from_file(dyn.om_path)
    assert ret == 0
    desc = acl.mdl.create_desc()
    assert acl.mdl.get_desc(desc, mid) == 0
    yield mid, desc
    acl.mdl.destroy_desc(desc)
    acl.mdl.unload(mid)


def _batch(b: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((b, 3, 16, 16)).astype(np.float32)


def test_description_reports_largest_gear(loaded):
    _, desc = loaded
    assert acl.mdl.get_num_inputs(desc) == 2
    index, ret = acl.mdl.get_input_index_by_name(desc, SHAPE_DATA)
    assert (index, ret) == (1, 0)
    assert acl.mdl.get_input_name_by_index(desc, 1) == SHAPE_DATA
    assert acl.mdl.get_input_data_type(desc, 1) == 3  # ACL_INT32
    assert acl.mdl.get_input_size_by_index(desc, 1) >= 4
    assert acl.mdl.get_input_size_by_index(desc, 0) == 4 * 3 * 16 * 16 * 4
    assert acl.mdl.get_input_dims(desc, 0)[0]["dims"] == [-1, 3, 16, 16]
    assert acl.mdl.get_input_dims_v2(desc, 0)[0]["dims"] == [4, 3, 16, 16]
    assert acl.mdl.get_output_dims(desc, 0)[0]["dims"] == [4, 10]
    assert acl.mdl.get_output_size_by_index(desc, 0) == 4 * 10 * 4
    assert acl.mdl.get_cur_output_dims(desc, 0)[0]["dims"] == [4, 10]
    assert acl.mdl.get_dynamic_batch(desc) == ({"batchCount": 3, "batch": GEARS}, 0)
    assert acl.mdl.get_dynamic_hw(desc, -1) == ({"hwCount": 0, "hw": []}, 0)


def _inputs(dev, desc) -> tuple[int, int, int, int]:
    """Input dataset (data buffer at max-gear size, shape buffer), output dataset; with pointers."""
    data_size = acl.mdl.get_input_size_by_index(desc, 0)
    shape_size = acl.mdl.get_input_size_by_index(desc, 1)
    data_ptr, shape_ptr = dev.malloc(data_size), dev.malloc(shape_size)
    in_ds = dev.dataset([(data_ptr, data_size), (shape_ptr, shape_size)])
    out_size = acl.mdl.get_output_size_by_index(desc, 0)
    out_ptr = dev.malloc(out_size)
    return in_ds, dev.dataset([(out_ptr, out_size)]), data_ptr, out_ptr


def test_every_gear_end_to_end(dev, dyn, loaded):
    mid, desc = loaded
    in_ds, out_ds, data_ptr, out_ptr = _inputs(dev, desc)
    for seed, b in enumerate([2, 1, 4, 2]):
        x = _batch(b, seed)
        assert acl.rt.memcpy(data_ptr, x.nbytes, x.ctypes.data, x.nbytes, 1) == 0
        assert acl.mdl.set_dynamic_batch_size(mid, in_ds, 1, b) == 0
        assert acl.mdl.get_cur_output_dims(desc, 0)[0]["dims"] == [b, 10]
        assert acl.mdl.execute(mid, in_ds, out_ds) == 0
        dims, ret = acl.mdl.get_cur_output_dims(desc, 0)
        assert ret == 0 and dims == {"name": "y", "dimCount": 2, "dims": [b, 10]}
        np.testing.assert_allclose(dev.get(out_ptr, (b, 10)), dyn.reference(x)[0], rtol=1e-3, atol=1e-4)


def test_batch_value_in_buffer_decides(dev, dyn, loaded):
    mid, desc = loaded
    in_ds, out_ds, data_ptr, out_ptr = _inputs(dev, desc)
    x = _batch(4, 9)
    assert acl.rt.memcpy(data_ptr, x.nbytes, x.ctypes.data, x.nbytes, 1) == 0
    assert acl.mdl.set_dynamic_batch_size(mid, in_ds, 1, 2) == 0
    shape_ptr = acl.get_data_buffer_addr(acl.mdl.get_dataset_buffer(in_ds, 1))
    four = np.array([4], np.int32)
    assert acl.rt.memcpy(shape_ptr, 4, four.ctypes.data, 4, 1) == 0
    assert acl.mdl.execute(mid, in_ds, out_ds) == 0
    assert acl.mdl.get_cur_output_dims(desc, 0)[0]["dims"] == [4, 10]
    np.testing.assert_allclose(dev.get(out_ptr, (4, 10)), dyn.reference(x)[0], rtol=1e-3, atol=1e-4)


def test_execute_without_a_gear_is_refused(dev, loaded):
    mid, desc = loaded
    in_ds, out_ds, _, _ = _inputs(dev, desc)
    shape_ptr = acl.get_data_buffer_addr(acl.mdl.get_dataset_buffer(in_ds, 1))
    assert acl.rt.memset(shape_ptr, 4, 0, 4) == 0
    assert acl.mdl.execute(mid, in_ds, out_ds) == DYNAMIC_BATCH_SIZE_INVALID
    three = np.array([3], np.int32)
    assert acl.rt.memcpy(shape_ptr, 4, three.ctypes.data, 4, 1) == 0
    assert acl.mdl.execute(mid, in_ds, out_ds) == DYNAMIC_BATCH_SIZE_INVALID


def test_set_dynamic_batch_size_errors(dev, loaded):
    mid, desc = loaded
    in_ds, _, _, _ = _inputs(dev, desc)
    assert acl.mdl.set_dynamic_batch_size(mid, in_ds, 1, 0) == INVALID_PARAM
    assert acl.mdl.set_dynamic_batch_size(mid, in_ds, 1, 3) == DYNAMIC_BATCH_SIZE_INVALID
    assert acl.mdl.set_dynamic_batch_size(mid, in_ds, 1, 8) == DYNAMIC_BATCH_SIZE_INVALID
    assert acl.mdl.set_dynamic_batch_size(mid, in_ds, 0, 2) == INVALID_PARAM
    assert acl.mdl.set_dynamic_batch_size(mid, in_ds, 5, 2) == INVALID_PARAM
    assert acl.mdl.set_dynamic_batch_size(mid, 0, 1, 2) == INVALID_PARAM
    assert acl.mdl.set_dynamic_batch_size(987654, in_ds, 1, 2) == GE_MODEL_ID_INVALID
    short = dev.dataset([(dev.malloc(64), 64), (dev.malloc(2), 2)])
    assert acl.mdl.set_dynamic_batch_size(mid, short, 1, 2) == DYNAMIC_INPUT_LENGTH_INVALID
    assert acl.mdl.set_dynamic_hw_size(mid, in_ds, 1, 16, 16) == MODEL_NOT_DYNAMIC


def test_value_width_follows_buffer_size(dev, loaded):
    mid, _ = loaded
    four, eight = dev.malloc(4), dev.malloc(8)
    assert acl.rt.memset(eight, 8, 0xFF, 8) == 0
    ds = dev.dataset([(dev.malloc(64), 64), (four, 4)])
    assert acl.mdl.set_dynamic_batch_size(mid, ds, 1, 2) == 0
    assert np.frombuffer(acl.util.ptr_to_bytes(four, 4), np.uint32)[0] == 2
    ds8 = dev.dataset([(dev.malloc(64), 64), (eight, 8)])
    assert acl.mdl.set_dynamic_batch_size(mid, ds8, 1, 4) == 0
    assert np.frombuffer(acl.util.ptr_to_bytes(eight, 8), np.uint64)[0] == 4


def test_static_model_refuses_dynamic_calls(dev, cnn):
    mid, _ = acl.mdl.load_from_file(cnn.om_path)
    ds = dev.dataset([(dev.malloc(64), 64), (dev.malloc(8), 8)])
    assert acl.mdl.set_dynamic_batch_size(mid, ds, 1, 1) == DYNAMIC_BATCH_SIZE_INVALID
    assert acl.mdl.set_dynamic_hw_size(mid, ds, 1, 16, 16) == MODEL_NOT_DYNAMIC
    assert acl.mdl.set_dynamic_hw_size(987654, ds, 1, 16, 16) == GE_MODEL_ID_INVALID
    assert acl.mdl.unload(mid) == 0


def test_acllite_dynamic_batch_flow(dev, dyn, loaded):
    """acllite_model._execute_with_dynamic_batch_size: index by name, gears, set, execute."""
    mid, desc = loaded
    x = _batch(2, 21)
    dynamic_index, ret = acl.mdl.get_input_index_by_name(desc, SHAPE_DATA)
    assert ret == 0
    batch_info, ret = acl.mdl.get_dynamic_batch(desc)
    assert ret == 0 and 2 in batch_info["batch"]
    size = acl.mdl.get_input_size_by_index(desc, 0)
    data_ptr = dev.malloc(size)
    host = x.tobytes()
    assert acl.rt.memcpy(data_ptr, size, acl.util.bytes_to_ptr(host), len(host), 1) == 0
    shape_size = acl.mdl.get_input_size_by_index(desc, dynamic_index)
    in_ds = dev.dataset([(data_ptr, size), (dev.malloc(shape_size), shape_size)])
    out_size = acl.mdl.get_output_size_by_index(desc, 0)
    out_ptr = dev.malloc(out_size)
    out_ds = dev.dataset([(out_ptr, out_size)])
    assert acl.mdl.set_dynamic_batch_size(mid, in_ds, dynamic_index, 2) == 0
    assert acl.mdl.execute(mid, in_ds, out_ds) == 0
    dims = acl.mdl.get_cur_output_dims(desc, 0)[0]["dims"]
    out = np.frombuffer(acl.util.ptr_to_bytes(out_ptr, out_size), np.float32)[: int(np.prod(dims))].reshape(dims)
    np.testing.assert_allclose(out, dyn.reference(x)[0], rtol=1e-3, atol=1e-4)
