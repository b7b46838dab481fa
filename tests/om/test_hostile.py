"""Every malformed file is an OmrtError with the code docs/om-format.md gives for it."""
from __future__ import annotations

import struct

import pytest

from tests.om.om_testkit import pack_om, rebuild, split_om, static_model
from omrt.constants import (
    ACL_ERROR_GE_DATATYPE_INVALID,
    ACL_ERROR_GE_EXEC_LOAD_MODEL_PARTITION_FAILED as E_MODEL,
    ACL_ERROR_GE_EXEC_LOAD_TASK_PARTITION_FAILED as E_TASK,
    ACL_ERROR_GE_EXEC_LOAD_WEIGHT_PARTITION_FAILED as E_WEIGHT,
    ACL_ERROR_GE_EXEC_MODEL_ADDR_INVALID as E_ADDR,
    ACL_ERROR_GE_EXEC_MODEL_DATA_SIZE_INVALID as E_SIZE,
    ACL_ERROR_GE_PARAM_INVALID as E_PARAM,
    ACL_ERROR_GE_SHAPE_INVALID,
)
from omrt.errors import OmrtError
from omrt.om import query_sizes, read_om, write_om

GOOD = write_om(static_model())


def code_of(data, fn=read_om) -> int:
    with pytest.raises(OmrtError) as info:
        fn(data)
    return info.value.code


def patched(offset: int, fmt: str, *values) -> bytes:
    buf = bytearray(GOOD)
    struct.pack_into(fmt, buf, offset, *values)
    return bytes(buf)


def mutated(edit) -> bytes:
    md, td, w = split_om(GOOD)
    edit(md, td)
    return rebuild(md, td, w)


def op(md, name):
    return next(o for o in md.graph[0].op if o.name == name)


# --- header and table -------------------------------------------------------------------------

@pytest.mark.parametrize("data, code", [
    (GOOD[:255], E_SIZE),
    (b"", E_SIZE),
    (patched(0, "<I", 0x12345678), E_SIZE),
    (patched(4, "<I", 255), E_SIZE),
    (patched(184, "<Q", len(GOOD)), E_SIZE),
    (patched(184, "<Q", 1 << 62), E_SIZE),
    (GOOD[:-1], E_SIZE),
    (GOOD + b"\0", E_SIZE),
    (patched(80, "<B", 1), E_PARAM),                        # encrypted
    (patched(156, "<I", 2), E_PARAM),                       # multi-model file
    (patched(256, "<I", 0), E_PARAM),
    (patched(256, "<I", 8), E_PARAM),
    (patched(256, "<I", 1 << 31), E_PARAM),
    (patched(264 + 24, "<i", 0), E_PARAM),                  # duplicate MODEL_DEF
    (patched(264 + 24, "<i", -3), E_PARAM),
    (patched(264 + 24 + 8, "<Q", 1), E_SIZE),              # gap / overlap
    (patched(264 + 24 + 16, "<Q", 1 << 40), E_SIZE),       # partition past end
    (patched(264 + 48 + 16, "<Q", 1), E_SIZE),             # partitions do not reach the end
])
def test_container_errors(data, code):
    assert code_of(data) == code
    assert code_of(data, query_sizes) == code


def test_table_past_end_of_file():
    data = pack_om([])[:256] + struct.pack("<I4x", 3)
    data = data[:184] + struct.pack("<Q", 8) + data[192:]
    assert code_of(data) == E_SIZE


def test_old_tiny_table_is_read():
    md, td, w = split_om(GOOD)
    parts = [(0, md.SerializeToString()), (1, w), (2, td.SerializeToString())]
    table, off = struct.pack("<I", 3), 0
    for t, b in parts:
        table += struct.pack("<iII", t, off, len(b))
        off += len(b)
    body = table + b"".join(b for _, b in parts)
    header = bytearray(GOOD[:256])
    struct.pack_into("<I", header, 76, len(body))
    struct.pack_into("<Q", header, 184, 0)
    data = bytes(header) + body
    assert query_sizes(data) == query_sizes(GOOD)
    assert read_om(data).name == static_model().name


def test_missing_partitions():
    md, td, w = split_om(GOOD)
    assert code_of(pack_om([(1, w), (2, td.SerializeToString())])) == E_MODEL
    no_task = pack_om([(0, md.SerializeToString()), (1, w)])
    assert code_of(no_task) == E_TASK and code_of(no_task, query_sizes) == E_TASK
    only_model = pack_om([(0, md.SerializeToString())])
    assert code_of(only_model, query_sizes) == E_PARAM


def test_protobuf_garbage():
    md, td, w = split_om(GOOD)
    assert code_of(pack_om([(0, b"\xff\xff\xff"), (1, w), (2, td.SerializeToString())])) == E_MODEL
    assert code_of(pack_om([(0, md.SerializeToString()), (1, w), (2, b"\x0a\xff")])) == E_TASK
    assert code_of(pack_om([(0, md.SerializeToString()), (1, w), (2, b"\x0a\xff")]), query_sizes) == E_TASK


# --- graph contents ---------------------------------------------------------------------------

def _set(field_path, value):
    def edit(md, td):
        name, attr = field_path
        target = op(md, name)
        getattr(target, attr)[0] = value
    return edit


CASES = {
    "missing producer": (_set(("add0", "input"), "nobody:0"), E_MODEL),
    "bad output index": (_set(("add0", "input"), "mm0:3"), E_MODEL),
    "not op:index": (_set(("add0", "input"), "mm0"), E_MODEL),
    "forward reference": (_set(("mm0", "input"), "relu0:0"), E_MODEL),
    "self cycle": (_set(("add0", "input"), "add0:0"), E_MODEL),
    "input outside work": (_set(("add0", "input_i"), 1 << 40), E_ADDR),
    "output outside work": (_set(("add0", "output_i"), 540), E_ADDR),
    "negative address": (_set(("add0", "output_i"), -64), E_ADDR),
    "workspace outside": (_set(("mm0", "workspace_bytes"), 1000), E_ADDR),
    "negative workspace": (_set(("mm0", "workspace"), -1), E_ADDR),
    "io outside zero copy": (_set(("relu0", "output_i"), 544 + 64 + 12), E_ADDR),
    "const input moved": (_set(("mm0", "input_i"), 0), E_MODEL),
    "const input outside weights": (lambda md, td: op(md, "mm0").input_i.__setitem__(1, 1 << 20), E_WEIGHT),
    "unknown dtype": (lambda md, td: setattr(op(md, "mm0").output_desc[0], "dtype", 13), ACL_ERROR_GE_DATATYPE_INVALID),
    "negative dim": (lambda md, td: op(md, "mm0").output_desc[0].shape.dim.__setitem__(0, -1), ACL_ERROR_GE_SHAPE_INVALID),
    "size mismatch": (lambda md, td: setattr(op(md, "mm0").output_desc[0], "size", 99), ACL_ERROR_GE_SHAPE_INVALID),
    "memory_size vs task": (lambda md, td: setattr(td, "memory_size", 4096), E_TASK),
    "memory_size attr vs plan": (lambda md, td: (md.attr["memory_size"].__setattr__("i", 4096),
                                                 setattr(td, "memory_size", 4096)), E_MODEL),
    "weight_size attr": (lambda md, td: md.attr["weight_size"].__setattr__("i", 1), E_WEIGHT),
    "duplicate Data index": (lambda md, td: _add_data(md, 0), E_MODEL),
    "Data index gap": (lambda md, td: op(md, "x").attr["index"].__setattr__("i", 1), E_MODEL),
    "duplicate op name": (lambda md, td: setattr(op(md, "relu0"), "name", "mm0"), E_MODEL),
    "no NetOutput": (lambda md, td: md.graph[0].op.pop(), E_MODEL),
    "missing memory_size graph attr": (lambda md, td: md.graph[0].attr.pop("memory_size"), E_MODEL),
    "absent input with dtype": (lambda md, td: setattr(op(md, "reshape0").input_desc[1], "dtype", 1), E_MODEL),
    "ragged inputs": (lambda md, td: op(md, "add0").input_i.append(0), E_MODEL),
    "invalid utf8 attr": (lambda md, td: op(md, "add0").attr["_fused"].__setattr__("s", b"\xff"), E_MODEL),
    "no graph": (lambda md, td: md.ClearField("graph"), E_MODEL),
    "missing om_info_list": (lambda md, td: md.attr.pop("om_info_list"), E_MODEL),
}


def _lanes(n):
    def edit(md, td):
        md.graph[0].attr["lanes"].i = n
    return edit


CASES.update({
    "lanes not dividing memory_size": (_lanes(3), E_MODEL),
    "zero lanes": (_lanes(0), E_MODEL),
    "work past the first lane": (_lanes(2), E_ADDR),
})


def _add_data(md, index):
    extra = md.graph[0].op.add()
    extra.CopyFrom(op(md, "x"))
    extra.name = "x_again"
    extra.attr["index"].i = index


def _const_out_of_weights(md, td):
    c = op(md, "W")
    c.attr["value"].t.desc.data_offset = 1 << 20
    c.output_i[0] = 1 << 20


CASES["const outside weights"] = (_const_out_of_weights, E_WEIGHT)


@pytest.mark.parametrize("case", sorted(CASES))
def test_graph_errors(case):
    edit, code = CASES[case]
    assert code_of(mutated(edit)) == code, case
