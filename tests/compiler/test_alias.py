"""Byte sharing: Concat inputs written straight into their slices of the output, against onnxruntime."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from omrt.compiler import compile_onnx
from omrt.compiler.alias import Sharing
from omrt.compiler.options import CompileOptions
from omrt.kernels.base import OVERWRITES
from omrt.om import write_om
from omrt.session import InferenceSession
from tests.compiler.compiler_checks import check_bounds, check_no_clobber

RNG = np.random.default_rng(0)


def _w(name: str, out_c: int, in_c: int, k: int = 1) -> tuple[str, np.ndarray]:
    return name, (RNG.standard_normal((out_c, in_c, k, k)) / np.sqrt(in_c * k * k)).astype(np.float32)


def _conv(x: str, w: str, y: str, k: int = 1) -> helper.NodeProto:
    return helper.make_node("Conv", [x, w], [y], name=y, pads=[k // 2] * 4)


def _build(nodes, x_shape, outputs, inits):
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
                          [helper.make_tensor_value_info(o, TensorProto.FLOAT, [x_shape[0], 8, None, None])
                           for o in outputs],
                          [numpy_helper.from_array(v, k) for k, v in inits])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


def _compile_and_compare(model, x_shape, lanes=None):
    """Compile, check the plan's structure, and match onnxruntime on a random input."""
    om = compile_onnx(model, CompileOptions(lanes=lanes))
    g = om.graphs[0]
    check_bounds(om, g)
    check_no_clobber(g)
    x = RNG.standard_normal(x_shape).astype(np.float32)
    got = InferenceSession(write_om(om)).run(None, {"x": x})
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    return g


def _op(g, name):
    return next(op for op in g.ops if op.outputs[0].desc.name == name)


def test_branch_outputs_are_written_into_the_concat():
    """Inception-style: two branches concatenated on channels at batch 1; no copy is made."""
    nodes = [_conv("x", "wa", "a"), _conv("x", "wb", "b", 3),
             helper.make_node("Concat", ["a", "b"], ["c"], name="c", axis=1), _conv("c", "wy", "y")]
    inits = [_w("wa", 16, 4), _w("wb", 16, 4, 3), _w("wy", 8, 32)]
    g = _compile_and_compare(_build(nodes, [1, 4, 6, 6], ["y"], inits), (1, 4, 6, 6))
    concat, a, b = _op(g, "c"), _op(g, "a").outputs[0], _op(g, "b").outputs[0]
    assert concat.alias
    assert a.loc.offset == concat.outputs[0].loc.offset
    assert b.loc.offset == concat.outputs[0].loc.offset + a.desc.nbytes


def test_chained_concats_nest_in_one_buffer():
    """DenseNet-style: each Concat extends the previous one, which other ops still read."""
    nodes, inits, prev = [_conv("x", "w0", "f0")], [_w("w0", 16, 4)], "f0"
    for k in range(1, 4):
        c_in = 16 * k
        nodes += [helper.make_node("Relu", [prev], [f"r{k}"], name=f"r{k}"),
                  _conv(f"r{k}", f"w{k}", f"n{k}", 3),
                  helper.make_node("Concat", [prev, f"n{k}"], [f"c{k}"], name=f"c{k}", axis=1)]
        inits.append(_w(f"w{k}", 16, c_in, 3))
        prev = f"c{k}"
    nodes.append(_conv(prev, "wy", "y"))
    inits.append(_w("wy", 8, 64))
    g = _compile_and_compare(_build(nodes, [1, 4, 5, 5], ["y"], inits), (1, 4, 5, 5))
    base = _op(g, "f0").outputs[0].loc.offset
    for k in range(1, 4):
        assert _op(g, f"c{k}").alias and _op(g, f"c{k}").outputs[0].loc.offset == base
        assert _op(g, f"n{k}").outputs[0].loc.offset == base + 16 * k * 25 * 4


def test_inplace_op_on_a_concat_input_takes_that_inputs_bytes():
    """An elementwise op that is the last reader of a Concat's group works in place on its input's
    slice, not at the start of the group."""
    nodes = [_conv("x", "wa", "a"), _conv("x", "wb", "b"),
             helper.make_node("Concat", ["a", "b"], ["c"], name="c", axis=1), _conv("c", "wy", "y"),
             helper.make_node("Sigmoid", ["b"], ["s"], name="s"), _conv("s", "wz", "z")]
    inits = [_w("wa", 16, 4), _w("wb", 16, 4), _w("wy", 8, 32), _w("wz", 8, 16)]
    g = _compile_and_compare(_build(nodes, [1, 4, 4, 4], ["y", "z"], inits), (1, 4, 4, 4))
    assert _op(g, "s").outputs[0].loc == _op(g, "b").outputs[0].loc


def test_batch_lanes_let_concat_share_bytes():
    """In lanes of one image a batch-2 Concat's slices are contiguous again, so it is a view."""
    nodes = [_conv("x", "wa", "a"), _conv("x", "wb", "b"),
             helper.make_node("Concat", ["a", "b"], ["c"], name="c", axis=1), _conv("c", "wy", "y")]
    g = _compile_and_compare(_build(nodes, [2, 4, 4, 4], ["y"], [_w("wa", 16, 4), _w("wb", 16, 4), _w("wy", 8, 32)]),
                             (2, 4, 4, 4))
    assert g.lanes == 2 and _op(g, "c").alias


def test_concats_that_cannot_share_bytes_still_copy():
    """Batch 2 in one lane (slices not contiguous), a repeated input, a model input, a slice off a
    64-byte boundary, and an input already placed in another Concat: each stays a real copy."""
    cases = [
        ([_conv("x", "wa", "a"), _conv("x", "wb", "b"),
          helper.make_node("Concat", ["a", "b"], ["c"], name="c", axis=1), _conv("c", "wy", "y")],
         [2, 4, 4, 4], [_w("wa", 16, 4), _w("wb", 16, 4), _w("wy", 8, 32)]),
        ([_conv("x", "wa", "a"), helper.make_node("Concat", ["a", "a"], ["c"], name="c", axis=1),
          _conv("c", "wy", "y")], [1, 4, 4, 4], [_w("wa", 16, 4), _w("wy", 8, 32)]),
        ([_conv("x", "wa", "a"), helper.make_node("Concat", ["x", "a"], ["c"], name="c", axis=1),
          _conv("c", "wy", "y")], [1, 4, 4, 4], [_w("wa", 16, 4), _w("wy", 8, 20)]),
        ([_conv("x", "wa", "a"), _conv("x", "wb", "b"),
          helper.make_node("Concat", ["a", "b"], ["c"], name="c", axis=1), _conv("c", "wy", "y")],
         [1, 4, 3, 3], [_w("wa", 3, 4), _w("wb", 16, 4), _w("wy", 8, 19)]),
    ]
    for nodes, shape, inits in cases:
        g = _compile_and_compare(_build(nodes, shape, ["y"], inits), tuple(shape), lanes=1)
        assert not _op(g, "c").alias
    nodes = [_conv("x", "wa", "a"), _conv("x", "wb", "b"), _conv("x", "wd", "d"),
             helper.make_node("Concat", ["a", "b"], ["c"], name="c", axis=1),
             helper.make_node("Concat", ["b", "d"], ["e"], name="e", axis=1),
             _conv("c", "wy", "y"), _conv("e", "wz", "z")]
    inits = [_w("wa", 16, 4), _w("wb", 16, 4), _w("wd", 16, 4), _w("wy", 8, 32), _w("wz", 8, 32)]
    g = _compile_and_compare(_build(nodes, [1, 4, 4, 4], ["y", "z"], inits), (1, 4, 4, 4))
    assert _op(g, "c").alias and not _op(g, "e").alias


def test_offsets_compose_through_nested_unions():
    share = Sharing()
    share.union("outer", "inner", 128)
    share.union("inner", "leaf", 64)
    share.union("leaf", "alias")
    assert share.find("alias") == "outer"
    assert [share.offset(n) for n in ("outer", "inner", "leaf", "alias")] == [0, 128, 192, 192]
    share.union("lone", "leaf")  # "lone" takes leaf's bytes: its group goes under leaf's root
    assert share.find("lone") == "outer" and share.offset("lone") == 192


def _residual_block(out_reads_t: bool = False, conv_reads_t: bool = False):
    """t = Relu(Conv(x)); u = Relu(Conv(t)); y = Relu(Conv(u) + t), the add and Relu fused into
    that conv with t as its residual; then out = Conv(y) (+ t, read once more), all 1x1 convs
    over 40 channels of 9x30 (the direct conv over stride phases)."""
    nodes = [_conv("x", "w0", "c0"), helper.make_node("Relu", ["c0"], ["t"], name="t"),
             _conv("t" if conv_reads_t else "u", "w2", "c2"),
             helper.make_node("Add", ["c2", "t"], ["s"], name="s"), helper.make_node("Relu", ["s"], ["y"], name="y"),
             _conv("y", "w3", "c3")]
    if not conv_reads_t:
        nodes[2:2] = [_conv("t", "w1", "c1"), helper.make_node("Relu", ["c1"], ["u"], name="u")]
    if out_reads_t:
        nodes.append(helper.make_node("Add", ["c3", "t"], ["out"], name="out"))
    inits = [_w(f"w{i}", 40, 40) for i in range(4)]
    x_shape = [1, 40, 9, 30]
    model = _build(nodes, x_shape, ["out" if out_reads_t else "c3"], inits)
    model.graph.output[0].type.tensor_type.shape.dim[1].dim_value = 40
    g = _compile_and_compare(model, tuple(x_shape))
    return next(op for op in g.ops
                if op.op_type == "Conv" and op.attrs.get("_residual") and op.inputs[0].desc.name != "y")


def test_a_residual_read_for_the_last_time_gives_the_conv_its_bytes():
    """A fused conv that adds the residual as it stores writes its output over the residual when
    nothing reads the residual afterwards: one tensor's bytes, not two."""
    block = _residual_block()
    assert block.attrs.get(OVERWRITES) == 3
    assert block.outputs[0].loc == block.inputs[3].loc


@pytest.mark.parametrize("out_reads_t,conv_reads_t", [(True, False), (False, True)])
def test_a_residual_still_needed_keeps_its_bytes(out_reads_t: bool, conv_reads_t: bool) -> None:
    """Not where a later op reads the residual, nor where the conv itself reads it as its input."""
    block = _residual_block(out_reads_t, conv_reads_t)
    assert OVERWRITES not in block.attrs
    assert block.outputs[0].loc != block.inputs[3].loc
