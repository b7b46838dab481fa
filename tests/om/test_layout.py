"""Bytes on disk: header fields at their offsets, the wide table, partitions, weights, attrs."""
from __future__ import annotations

import struct

from tests.om.om_testkit import dynamic_model, split_om, static_model, weights
from omrt.om import query_sizes, read_om, write_om
from omrt.om.address import AddressMap
from omrt.om.layout import EMPTY_WEIGHTS


def test_header_fields_at_offsets():
    m = static_model(name="a_model_name_longer_than_thirty_one_chars", platform_version="v" * 30)
    data = write_om(m)
    u32 = lambda off: struct.unpack_from("<I", data, off)[0]
    assert data[0:4] == b"IMOD" and u32(0) == 0x444F4D49
    assert u32(4) == 256 and u32(8) == 0x20000000
    assert data[12:76] == bytes(64)
    assert u32(76) == 0                                   # length: new layout
    assert data[80:84] == bytes(4)                        # is_encrypt, is_checksum, modeltype, genmode
    assert data[84:116] == m.name.encode()[:31] + b"\0"
    assert u32(152) == 1 and u32(156) == 1                # om_ir_version, model_num
    assert data[160:180] == b"v" * 19 + b"\0"
    assert struct.unpack_from("<Q", data, 184)[0] == len(data) - 256
    assert data[193] == 0                                 # is_unknow_model
    assert data[194:256] == bytes(62)


def test_wide_partition_table_back_to_back():
    data = write_om(static_model())
    num = struct.unpack_from("<I", data, 256)[0]
    assert num == 3 and data[260:264] == bytes(4)
    base, expected = 256 + 8 + 3 * 24, 0
    types = []
    for k in range(3):
        ptype, pad, off, size = struct.unpack_from("<iIQQ", data, 264 + 24 * k)
        assert pad == 0 and off == expected
        types.append(ptype)
        expected += size
    assert types == [0, 1, 2] and base + expected == len(data)


def test_weights_written_as_given_and_constants_aligned():
    m = static_model()
    data = write_om(m)
    md, td, w = split_om(data)
    assert w == weights()
    consts = [op for op in md.graph[0].op if op.type == "Const"]
    assert [c.attr["value"].t.desc.data_offset for c in consts] == [512, 1024]
    assert all(c.attr["value"].t.data == b"" for c in consts)
    assert [c.attr["value"].t.desc.weight_size for c in consts] == [48, 12]


def test_model_attrs_and_task_info():
    m = static_model()
    data = write_om(m)
    md, td, w = split_om(data)
    a = md.attr
    assert a["memory_size"].i == m.memory_size == td.memory_size
    assert a["weight_size"].i == len(w) == td.weight_size
    assert td.stream_num == 1 and td.event_num == 0
    assert a["stream_num"].i == 1 and a["event_num"].i == 0
    assert list(a["om_info_list"].list.i) == [len(w), 0, 0, len(td.SerializeToString()), 0]
    assert a["framework_type"].s == b"Onnx" and a["soc_version"].s == b"Ascend310"
    plan = m.graphs[0]
    zc = AddressMap.build(plan.memory_size, [r.desc for r in plan.inputs], [r.desc for r in plan.outputs])
    assert a["zero_copy_memory_size"].i == zc.zero_copy_size == 128
    assert query_sizes(data) == (m.memory_size, len(w))


def test_graph_encoding_conventions():
    m = static_model()
    md, _, _ = split_om(write_om(m))
    g = md.graph[0]
    types = [op.type for op in g.op]
    assert types == ["Data", "Const", "Const", "MatMul", "Add", "Relu", "Reshape", "NetOutput"]
    data, mm, reshape, netout = g.op[0], g.op[3], g.op[6], g.op[7]
    assert data.attr["index"].i == 0 and list(data.output_i) == [m.memory_size]   # input 0 at zc start
    assert list(mm.input) == ["x:0", "W:0"] and list(mm.is_input_const) == [False, True]
    assert list(mm.input_i) == [m.memory_size, 512]
    assert list(mm.workspace) == [128] and list(mm.workspace_bytes) == [32]
    assert mm.output_desc[0].size == 12 and mm.output_desc[0].name == "mm"
    assert reshape.input[1] == "" and reshape.input_desc[1].dtype == 0 and reshape.attr["_zero_copy_alias"].b
    assert list(netout.input) == ["reshape0:0"] and list(netout.input_i) == [m.memory_size + 64]


def test_dynamic_layout():
    m = dynamic_model()
    md, td, _ = split_om(write_om(m))
    root = md.graph[0]
    assert [g.name for g in md.graph[1:]] == [f"main_b{g}_ascend_mbatch_batch_{i}" for i, g in enumerate(m.gears)]
    shape = next(op for op in root.op if op.type == "Data" and op.attr["index"].i == 1)
    assert shape.name == "ascend_mbatch_shape_data" and shape.attr["_is_multi_batch_shape_data"].b
    assert shape.output_desc[0].dtype == 7 and list(shape.output_desc[0].shape.dim) == [1]
    case = next(op for op in root.op if op.type == "Case")
    assert case.name == "ascend_mbatch_shape_case"
    assert case.attr["_batch_num"].i == 3 and case.attr["mbatch_dynamic_type"].i == 1
    assert [list(case.attr[f"_pred_value_{i}"].list.i) for i in range(3)] == [[1], [2], [4]]
    assert list(case.subgraph_name) == [g.name for g in md.graph[1:]]
    assert [g.attr["batch"].i for g in md.graph[1:]] == [1, 2, 4]
    assert md.attr["memory_size"].i == td.memory_size == max(p.memory_size for p in m.graphs)


def test_empty_weights_use_ge_minimal_blob():
    m = static_model()
    plan = m.graphs[0]
    plan.constants, plan.ops = [], []
    plan.outputs = [plan.outputs[0]]
    m = static_model(graphs=[plan], weights=b"")
    plan.ops = []
    data = write_om(_identity(m))
    md, td, w = split_om(data)
    assert w == EMPTY_WEIGHTS and md.attr["om_info_list"].list.i[0] == 0
    assert read_om(data).weights == b""


def _identity(m):
    from omrt.om import OpPlan
    plan = m.graphs[0]
    plan.ops = [OpPlan("copy", "Identity", {}, [plan.inputs[0]], [plan.outputs[0]])]
    plan.outputs[0] = plan.ops[0].outputs[0]
    m.outputs = [plan.outputs[0].desc]
    return m
