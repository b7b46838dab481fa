"""acl.mdl model descriptions: counts, sizes, dims, types, formats, names and indexes."""
from __future__ import annotations

import numpy as np
import pytest

import acl

INVALID_PARAM = 100000
GE_MODEL_ID_INVALID = 145003
READ_MODEL_FAILURE = 100014
ACL_FLOAT, ACL_INT32, ACL_DT_UNDEFINED = 0, 3, -1
FORMAT_NCHW, FORMAT_ND, FORMAT_UNDEFINED = 0, 2, -1


@pytest.fixture
def loaded(acl_ctx, cnn):
    mid, ret = acl.mdl.load_from_file(cnn.om_path)
    assert ret == 0
    desc = acl.mdl.create_desc()
    assert desc and acl.mdl.get_desc(desc, mid) == 0
    yield mid, desc
    assert acl.mdl.destroy_desc(desc) == 0
    assert acl.mdl.unload(mid) == 0


def test_counts_sizes_dims(loaded):
    _, desc = loaded
    assert acl.mdl.get_num_inputs(desc) == 1
    assert acl.mdl.get_num_outputs(desc) == 1
    assert acl.mdl.get_input_size_by_index(desc, 0) == 1 * 3 * 16 * 16 * 4
    assert acl.mdl.get_output_size_by_index(desc, 0) == 10 * 4
    assert acl.mdl.get_input_dims(desc, 0) == ({"name": "x", "dimCount": 4, "dims": [1, 3, 16, 16]}, 0)
    assert acl.mdl.get_input_dims_v2(desc, 0) == ({"name": "x", "dimCount": 4, "dims": [1, 3, 16, 16]}, 0)
    assert acl.mdl.get_output_dims(desc, 0) == ({"name": "y", "dimCount": 2, "dims": [1, 10]}, 0)
    assert acl.mdl.get_cur_output_dims(desc, 0) == ({"name": "y", "dimCount": 2, "dims": [1, 10]}, 0)
    dims = acl.mdl.get_output_dims(desc, 0)[0]["dims"]
    assert int(np.prod(dims)) * 4 == acl.mdl.get_output_size_by_index(desc, 0)


def test_types_formats_names_indexes(loaded):
    _, desc = loaded
    assert acl.mdl.get_input_data_type(desc, 0) == ACL_FLOAT
    assert acl.mdl.get_output_data_type(desc, 0) == ACL_FLOAT
    assert acl.mdl.get_input_format(desc, 0) == FORMAT_NCHW
    assert acl.mdl.get_output_format(desc, 0) in (FORMAT_NCHW, FORMAT_ND)
    assert acl.mdl.get_input_name_by_index(desc, 0) == "x"
    assert acl.mdl.get_output_name_by_index(desc, 0) == "y"
    assert acl.mdl.get_input_index_by_name(desc, "x") == (0, 0)
    assert acl.mdl.get_output_index_by_name(desc, "y") == (0, 0)
    assert acl.mdl.get_input_index_by_name(desc, "nope")[1] == INVALID_PARAM
    assert acl.mdl.get_output_index_by_name(desc, "x")[1] == INVALID_PARAM
    assert acl.mdl.get_input_index_by_name(desc, "ascend_mbatch_shape_data")[1] == INVALID_PARAM


def test_out_of_range_indexes(loaded):
    _, desc = loaded
    for index in (1, 5, -1):
        assert acl.mdl.get_input_size_by_index(desc, index) == 0
        assert acl.mdl.get_output_size_by_index(desc, index) == 0
        assert acl.mdl.get_input_dims(desc, index) == ({}, INVALID_PARAM)
        assert acl.mdl.get_input_dims_v2(desc, index) == ({}, INVALID_PARAM)
        assert acl.mdl.get_output_dims(desc, index) == ({}, INVALID_PARAM)
        assert acl.mdl.get_cur_output_dims(desc, index) == ({}, INVALID_PARAM)
        assert acl.mdl.get_input_data_type(desc, index) == ACL_DT_UNDEFINED
        assert acl.mdl.get_output_data_type(desc, index) == ACL_DT_UNDEFINED
        assert acl.mdl.get_input_format(desc, index) == FORMAT_UNDEFINED
        assert acl.mdl.get_output_format(desc, index) == FORMAT_UNDEFINED
        assert acl.mdl.get_input_name_by_index(desc, index) == ""
        assert acl.mdl.get_output_name_by_index(desc, index) == ""


def test_null_and_destroyed_desc(acl_ctx):
    assert acl.mdl.get_num_inputs(0) == 0
    assert acl.mdl.get_num_outputs(0) == 0
    assert acl.mdl.get_input_size_by_index(0, 0) == 0
    assert acl.mdl.get_input_dims(0, 0) == ({}, INVALID_PARAM)
    assert acl.mdl.get_dynamic_batch(0) == ({}, INVALID_PARAM)
    assert acl.mdl.get_input_index_by_name(0, "x")[1] == INVALID_PARAM
    desc = acl.mdl.create_desc()
    assert acl.mdl.get_num_inputs(desc) == 0  # empty until filled
    assert acl.mdl.destroy_desc(desc) == 0
    assert acl.mdl.destroy_desc(desc) == INVALID_PARAM
    assert acl.mdl.get_num_inputs(desc) == 0
    assert acl.mdl.get_desc(desc, 1) == INVALID_PARAM
    assert acl.mdl.destroy_desc(0) == INVALID_PARAM


def test_get_desc_unknown_model(acl_ctx):
    desc = acl.mdl.create_desc()
    assert acl.mdl.get_desc(desc, 987654) == GE_MODEL_ID_INVALID
    assert acl.mdl.destroy_desc(desc) == 0


def test_desc_from_file_and_mem_match_loaded(loaded, cnn):
    _, desc = loaded
    data = cnn.om_bytes()
    from_file, from_mem = acl.mdl.create_desc(), acl.mdl.create_desc()
    assert acl.mdl.get_desc_from_file(from_file, cnn.om_path) == 0
    assert acl.mdl.get_desc_from_mem(from_mem, acl.util.bytes_to_ptr(data), len(data)) == 0
    for other in (from_file, from_mem):
        assert acl.mdl.get_num_inputs(other) == acl.mdl.get_num_inputs(desc)
        assert acl.mdl.get_output_dims(other, 0) == acl.mdl.get_output_dims(desc, 0)
        assert acl.mdl.get_input_size_by_index(other, 0) == acl.mdl.get_input_size_by_index(desc, 0)
        assert acl.mdl.get_cur_output_dims(other, 0) == acl.mdl.get_output_dims(desc, 0)
    assert acl.mdl.get_desc_from_file(from_file, "/nonexistent/model.om") == READ_MODEL_FAILURE
    assert acl.mdl.get_desc_from_mem(from_mem, 0, 10) == INVALID_PARAM
    assert acl.mdl.destroy_desc(from_file) == 0
    assert acl.mdl.destroy_desc(from_mem) == 0


def test_desc_outlives_unload(acl_ctx, cnn):
    mid, _ = acl.mdl.load_from_file(cnn.om_path)
    desc = acl.mdl.create_desc()
    assert acl.mdl.get_desc(desc, mid) == 0
    assert acl.mdl.unload(mid) == 0
    assert acl.mdl.get_num_inputs(desc) == 1
    assert acl.mdl.get_cur_output_dims(desc, 0)[1] == 0
    assert acl.mdl.destroy_desc(desc) == 0


def test_static_model_dynamic_queries(loaded):
    mid, desc = loaded
    assert acl.mdl.get_dynamic_batch(desc) == ({"batchCount": 0, "batch": []}, 0)
    assert acl.mdl.get_dynamic_hw(desc, -1) == ({"hwCount": 0, "hw": []}, 0)
    assert acl.mdl.get_dynamic_hw(0, -1) == ({}, INVALID_PARAM)


def test_parse_errors_raise_type_error(loaded):
    _, desc = loaded
    with pytest.raises(TypeError, match="acl.mdl.get_input_dims args parse failed"):
        acl.mdl.get_input_dims(desc, "0")
    with pytest.raises(TypeError, match="acl.mdl.get_desc args parse failed"):
        acl.mdl.get_desc(desc)
    with pytest.raises(TypeError, match="acl.mdl.get_input_index_by_name args parse failed"):
        acl.mdl.get_input_index_by_name(desc, 0)
    extra = acl.mdl.create_desc("ignored", 1)  # no-arg functions ignore extra arguments
    assert extra and acl.mdl.destroy_desc(extra) == 0
