"""Conv and ConvTranspose: ONNX node cases, onnxruntime on random configs, fused epilogues, views."""
from __future__ import annotations

from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from omrt.kernels import OpSpec, TensorSpec, build_kernel, prepack, run_op, workspace_bytes
from omrt.kernels.base import OVERWRITES
from omrt.kernels.conv import _conv_overwrites
from omrt.kernels.conv_common import conv_geom
from omrt.kernels.epilogue import apply_activation
from omrt.kernels.winograd import wino_weight
from tests.kernels.node_cases import cases_for, run_case

RTOL, ATOL = 1e-4, 1e-5


def ort_run(op: str, inputs: list[np.ndarray], attrs: dict[str, Any], n_out: int = 1) -> list[np.ndarray]:
    """Run one ONNX node in onnxruntime (the oracle); output shapes come from its shape inference."""
    names = [f"i{k}" for k in range(len(inputs))]
    outs = [f"o{k}" for k in range(n_out)]
    elem = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.float16): TensorProto.FLOAT16,
            np.dtype(np.float64): TensorProto.DOUBLE}
    node = helper.make_node(op, names, outs, **attrs)
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info(n, elem[a.dtype], a.shape) for n, a in zip(names, inputs)],
        [helper.make_tensor_value_info(o, elem[inputs[0].dtype] if k == 0 else TensorProto.INT64, None)
         for k, o in enumerate(outs)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    model.ir_version = 9
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return sess.run(None, dict(zip(names, inputs)))


def make_spec(op: str, inputs: list[np.ndarray], outputs: list[np.ndarray], attrs: dict[str, Any],
              consts: dict[int, np.ndarray] | None = None) -> OpSpec:
    return OpSpec(op, dict(attrs), [TensorSpec(a.shape, a.dtype) for a in inputs],
                  [TensorSpec(o.shape, o.dtype) for o in outputs], dict(consts or {}))


def assert_sums_close(got: np.ndarray, want: np.ndarray) -> None:
    """float32 sums over hundreds of terms: both runtimes' rounding grows with the outputs' scale,
    so the absolute tolerance follows the largest output."""
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=max(ATOL, 2e-6 * np.abs(want).max()))


def run_in_view(spec: OpSpec, inputs: list[np.ndarray]) -> np.ndarray:
    """Run a kernel into a view in the middle of a bigger buffer; check the rest is untouched."""
    o = spec.outputs[0]
    size = int(np.prod(o.shape))
    buf = np.full(size + 64, 7, dtype=o.dtype)
    out = buf[32:32 + size].reshape(o.shape)
    nbytes = workspace_bytes(spec)
    scratch = np.full(nbytes + 64, 0x7F, dtype=np.uint8)  # float32 3.4e38: stale scratch shows
    kernel = build_kernel(spec)
    kernel(inputs, [out], scratch[:nbytes] if nbytes else None)
    first = out.copy()
    kernel(inputs, [out], scratch[:nbytes] if nbytes else None)
    np.testing.assert_array_equal(out, first)
    assert (buf[:32] == 7).all() and (buf[32 + size:] == 7).all()
    assert (scratch[nbytes:] == 0x7F).all()
    return first


def run_over_residual(spec: OpSpec, inputs: list[np.ndarray]) -> np.ndarray:
    """Run a conv as the compiler plans it where its output took the residual's bytes (attribute
    OVERWRITES): the output array holds the residual when the kernel starts; twice, each time
    from the residual again."""
    spec.attrs[OVERWRITES] = len(inputs) - 1
    kernel = build_kernel(spec)
    nbytes = workspace_bytes(spec)
    results = []
    for _ in range(2):
        out = inputs[-1].copy()
        kernel(list(inputs[:-1]) + [out], [out], np.zeros(nbytes, np.uint8) if nbytes else None)
        results.append(out)
    np.testing.assert_array_equal(results[0], results[1])
    return results[0]


def as_stored(spec: OpSpec, inputs: list[np.ndarray] | None = None) -> np.ndarray | None:
    """Give spec (and `inputs`, where given) the weights as the compiler stores them (the prepack
    hook), and return them; None where it leaves them as they are."""
    stored = prepack(spec)
    if stored is None:
        return None
    spec.attrs.update(stored[0])
    spec.consts.update(stored[1])
    weights = stored[1][1]
    spec.inputs[1] = TensorSpec(weights.shape, weights.dtype)
    if inputs is not None:
        inputs[1] = weights
    return weights


@pytest.mark.parametrize("name,case", list(cases_for("Conv", "ConvTranspose")))
def test_node_cases(name: str, case: Any) -> None:
    run_case(case)


def _rand(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32)


CONV_CONFIGS = [
    # (N, C, M, spatial, kernel, attrs)
    (1, 8, 16, (12, 12), (3, 3), {"pads": [1, 1, 1, 1]}),
    (2, 6, 9, (11, 10), (3, 3), {"strides": [2, 2], "pads": [0, 1, 2, 1]}),
    (1, 8, 8, (13, 13), (3, 3), {"group": 8, "pads": [1, 1, 1, 1]}),
    (2, 8, 16, (9, 9), (3, 3), {"group": 8, "strides": [2, 2], "auto_pad": "SAME_UPPER"}),
    (1, 8, 12, (10, 11), (3, 3), {"group": 4, "dilations": [2, 1], "pads": [2, 1, 2, 1]}),
    (1, 5, 7, (9, 9), (2, 3), {"auto_pad": "SAME_LOWER", "strides": [2, 1]}),
    (1, 5, 7, (9, 9), (3, 3), {"auto_pad": "VALID", "dilations": [2, 2]}),
    (3, 16, 8, (7, 7), (1, 1), {}),
    (1, 16, 8, (7, 7), (1, 1), {"strides": [2, 2]}),
    (1, 3, 8, (20,), (5,), {"pads": [2, 1], "strides": [3]}),
    (1, 4, 6, (5, 6, 7), (3, 2, 3), {"pads": [1, 0, 1, 1, 1, 0]}),
    (2, 6, 6, (8, 8), (5, 5), {"group": 6, "pads": [2, 2, 2, 2], "dilations": [1, 2]}),
    (1, 8, 8, (11, 12), (3, 3), {"group": 8, "strides": [2, 2], "pads": [1, 1, 1, 1]}),
    (2, 5, 5, (9, 10), (3, 2), {"group": 5, "strides": [3, 2], "pads": [0, 1, 2, 0], "dilations": [2, 1]}),
    (1, 4, 4, (7,), (3,), {"group": 4, "strides": [2], "pads": [1, 1]}),
    (1, 3, 3, (4, 5, 6), (3, 3, 3), {"group": 3, "pads": [1, 1, 1, 1, 1, 1]}),
    (1, 4, 4, (6, 6), (3, 3), {"group": 4}),
    # flat im2col with several row bands (enough flops to use the pool); strided k x k with odd sizes
    (1, 16, 40, (64, 64), (3, 3), {"pads": [1, 1, 1, 1]}),
    (1, 8, 32, (100, 101), (3, 3), {"strides": [2, 2], "pads": [1, 1, 1, 1]}),
    (2, 3, 16, (33, 33), (7, 7), {"strides": [2, 2], "pads": [3, 3, 3, 3]}),
    (1, 8, 16, (17, 16), (3, 3), {"strides": [3, 2], "pads": [1, 0, 2, 1]}),
    # depthwise with enough work for the pool: image blocks of a batch, channel blocks of one image
    (4, 64, 64, (56, 56), (3, 3), {"group": 64, "pads": [1, 1, 1, 1]}),
    (1, 96, 96, (60, 60), (3, 3), {"group": 96, "strides": [2, 2], "pads": [1, 1, 1, 1]}),
    (2, 32, 32, (40, 40), (5, 5), {"group": 32, "strides": [2, 3], "dilations": [2, 1], "pads": [4, 2, 4, 2]}),
]


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("cfg", CONV_CONFIGS)
def test_conv_matches_onnxruntime(kernel_paths, cfg, bias: bool) -> None:
    n, c, m, sp, k, attrs = cfg
    rng = np.random.default_rng(len(sp) * 7 + c)
    g = attrs.get("group", 1)
    ins = [_rand(rng, n, c, *sp), _rand(rng, m, c // g, *k)] + ([_rand(rng, m)] if bias else [])
    attrs = {"kernel_shape": list(k), **attrs}
    want = ort_run("Conv", ins, attrs)[0]
    got = run_in_view(make_spec("Conv", ins, [want], attrs), ins)
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)
    consts = {1: ins[1]} | ({2: ins[2]} if bias else {})
    got = run_op(make_spec("Conv", ins, [want], attrs, consts), ins)[0]
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


EPILOGUES = [("Relu", []), ("Clip", [0.0, 6.0]), ("LeakyRelu", [0.1]), ("Sigmoid", []), ("HardSwish", []),
             ("HardSigmoid", [0.3, 0.4]), ("Tanh", []), ("Elu", [0.7]), ("Selu", [1.5, 1.1]),
             ("Softplus", []), ("Gelu", []), (None, [])]


@pytest.mark.parametrize("act,params", EPILOGUES)
@pytest.mark.parametrize("residual", [False, True])
@pytest.mark.parametrize("cfg", [CONV_CONFIGS[0], CONV_CONFIGS[2], CONV_CONFIGS[7]])
def test_conv_fused_epilogue(kernel_paths, cfg, act, params, residual: bool) -> None:
    n, c, m, sp, k, attrs = cfg
    rng = np.random.default_rng(3)
    g = attrs.get("group", 1)
    ins = [_rand(rng, n, c, *sp), _rand(rng, m, c // g, *k), _rand(rng, m)]
    attrs = {"kernel_shape": list(k), **attrs}
    plain = ort_run("Conv", ins, attrs)[0]
    res = _rand(rng, *plain.shape)
    want = plain + res if residual else plain.copy()
    apply_activation(want, act, params)
    fused = dict(attrs, _activation=act, _activation_params=params, _residual=int(residual))
    fins = ins + ([res] if residual else [])
    got = run_in_view(make_spec("Conv", fins, [want], fused, {1: ins[1], 2: ins[2]}), fins)
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("k,strides,pads,hw", [(7, [2, 2], [3, 3, 3, 3], (30, 30)), (7, [2, 2], [3, 3, 3, 3], (29, 27)),
                                               (5, [2, 3], [2, 1, 0, 2], (17, 19)), (5, [2, 2], [0, 0, 1, 0], (16, 15))])
@pytest.mark.parametrize("batch,threaded", [(1, False), (3, False), (3, True)])
def test_strided_large_kernels_from_phases(kernel_paths, two_threads, monkeypatch, k: int, strides, pads, hw,
                                           batch: int, threaded: bool) -> None:
    """Padded strided 5x5 and 7x7 convs over few channels read their taps from the padded image's
    stride phases (omrt.kernels.phase_conv; with numpy only, im2col from the phases): uneven sizes,
    strides and pads, per image and in per-thread image slots."""
    from omrt.kernels import conv as conv_kernel
    from omrt.kernels import phase_conv

    if threaded:
        monkeypatch.setattr(conv_kernel, "MIN_PARALLEL_FLOPS", 0.0)
        monkeypatch.setattr(phase_conv, "MIN_SPLIT_FLOPS", 0.0)
    rng = np.random.default_rng(9)
    ins = [_rand(rng, batch, 3, *hw), _rand(rng, 16, 3, k, k), _rand(rng, 16)]
    attrs = {"kernel_shape": [k, k], "strides": strides, "pads": pads}
    want = np.maximum(ort_run("Conv", ins, attrs)[0], 0)
    spec = make_spec("Conv", ins, [want], dict(attrs, _activation="Relu"), {1: ins[1], 2: ins[2]})
    assert conv_kernel._phased(conv_geom(spec))
    got = run_in_view(spec, ins)
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


def test_conv_residual_without_bias() -> None:
    rng = np.random.default_rng(5)
    ins = [_rand(rng, 1, 4, 6, 6), _rand(rng, 5, 4, 3, 3)]
    attrs = {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}
    want = ort_run("Conv", ins, attrs)[0]
    res = _rand(rng, *want.shape)
    got = run_in_view(make_spec("Conv", ins + [res], [want], dict(attrs, _residual=1)), ins + [res])
    np.testing.assert_allclose(got, want + res, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("hw,pads", [((12, 12), [1, 1, 1, 1]), ((9, 11), [1, 1, 1, 1]), ((10, 10), [0, 2, 1, 0])])
def test_conv_winograd_prepack(small_winograd, hw, pads) -> None:
    rng = np.random.default_rng(11)
    ins = [_rand(rng, 2, 32, *hw), _rand(rng, 64, 32, 3, 3), _rand(rng, 64)]
    attrs = {"kernel_shape": [3, 3], "pads": pads}
    want = ort_run("Conv", ins, attrs)[0]
    spec = make_spec("Conv", ins, [want], attrs, {1: ins[1], 2: ins[2]})
    packed = prepack(spec)
    assert packed is not None and packed[0].get("_winograd")
    spec.attrs.update(packed[0])
    spec.consts.update(packed[1])
    spec.inputs[1] = TensorSpec(packed[1][1].shape, packed[1][1].dtype)
    got = run_in_view(spec, [ins[0], packed[1][1], ins[2]])
    # Winograd's float32 rounding grows with a tile's largest values, not with each output's own
    # (outputs up to 67 here, near-zero ones 1e-4 off)
    tol = {"rtol": 1e-3, "atol": max(1e-4, 4e-6 * np.abs(want).max())}
    np.testing.assert_allclose(got, want, **tol)
    u = wino_weight(ins[1])    # transformed weights given at run time (never packed)
    runtime_w = make_spec("Conv", [ins[0], u, ins[2]], [want], dict(attrs, _winograd=1))
    got = run_op(runtime_w, [ins[0], u, ins[2]])[0]
    np.testing.assert_allclose(got, want, **tol)


def _winograd(spec: OpSpec) -> bool:
    """Whether the compiler stores this conv's weights for Winograd."""
    stored = prepack(spec)
    return bool(stored and stored[0].get("_winograd"))


@pytest.mark.parametrize("compiled", [True, False])
@pytest.mark.parametrize("cin,cout,hw,expect", [(32, 128, 27, False), (128, 192, 27, True), (64, 64, 7, False)])
def test_winograd_skips_small_convs(monkeypatch, cin: int, cout: int, hw: int, expect: bool, compiled: bool) -> None:
    """SqueezeNet's 32->128 on 27x27 goes to the direct conv over stride phases (fewer than
    PHASE_OVER_WINOGRAD_INPUTS inputs); Inception's 128->192 on 27x27 (322 Mflop) runs as
    Winograd with or without the compiled transforms; 64->64 on 7x7 (3.6 Mflop) never does."""
    monkeypatch.setenv("OMRT_JIT", "1" if compiled else "0")
    x = np.zeros((1, cin, hw, hw), np.float32)
    w = np.random.default_rng(6).standard_normal((cout, cin, 3, 3)).astype(np.float32)
    spec = make_spec("Conv", [x, w], [np.zeros((1, cout, hw, hw), np.float32)],
                     {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}, {1: w})
    assert _winograd(spec) is expect


@pytest.mark.parametrize("compiled", [True, False])
@pytest.mark.parametrize("cin,batch,hw,winograd", [(128, 1, 56, False), (128, 1, 28, False), (128, 4, 14, False),
                                                   (128, 1, 7, False), (160, 1, 28, True), (160, 2, 56, True)])
def test_few_output_convs_take_winograd_on_large_maps(monkeypatch, compiled: bool, cin: int, batch: int, hw: int,
                                                      winograd: bool) -> None:
    """Convs to 32 channels run as Winograd from 49 tiles per image with the compiled transforms,
    whatever the batch, and as the tap GEMM otherwise; DenseNet's 128->32 growth convs go to the
    direct conv over stride phases instead (on maps narrower than 28 columns as one flat row)."""
    from omrt.kernels import jit
    from omrt.kernels.conv_common import conv_geom
    from omrt.kernels.phase_conv import phase_shaped

    monkeypatch.setenv("OMRT_JIT", "1" if compiled else "0")
    x = np.zeros((batch, cin, hw, hw), np.float32)
    w = np.random.default_rng(7).standard_normal((32, cin, 3, 3)).astype(np.float32)
    spec = make_spec("Conv", [x, w], [np.zeros((batch, 32, hw, hw), np.float32)],
                     {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}, {1: w})
    assert _winograd(spec) is (jit.enabled() and winograd)
    assert phase_shaped(conv_geom(spec), np.float32, True) is (cin <= 128)


def test_winograd_needs_enough_input_channels() -> None:
    x = np.zeros((1, 16, 55, 55), np.float32)
    w = np.random.default_rng(3).standard_normal((64, 16, 3, 3)).astype(np.float32)
    spec = make_spec("Conv", [x, w], [np.zeros((1, 64, 55, 55), np.float32)],
                     {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}, {1: w})
    assert not _winograd(spec)


@pytest.mark.parametrize("batch,hw,expect", [(1, 7, False), (2, 7, False), (4, 7, True), (1, 14, True)])
def test_winograd_takes_streamed_weights_from_16_tiles(batch: int, hw: int, expect: bool) -> None:
    """512->512 3x3 (38 MB of transformed weights): Winograd from 16 tiles, as for other convs."""
    x = np.zeros((batch, 512, hw, hw), np.float32)
    w = np.random.default_rng(2).standard_normal((512, 512, 3, 3)).astype(np.float32)
    spec = make_spec("Conv", [x, w], [x], {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}, {1: w})
    assert _winograd(spec) is expect


@pytest.mark.parametrize("batch,cin,cout", [(1, 4, 6), (3, 8, 4)])   # flat im2col; tap GEMM in blocks
def test_conv_float16_and_double(batch: int, cin: int, cout: int) -> None:
    rng = np.random.default_rng(2)
    x, w = _rand(rng, batch, cin, 8, 8), _rand(rng, cout, cin, 3, 3)
    attrs = {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}
    want = ort_run("Conv", [x, w], attrs)[0]
    for dt, tol in ((np.float16, 2e-2), (np.float64, 1e-5)):
        ins = [x.astype(dt), w.astype(dt)]
        got = run_in_view(make_spec("Conv", ins, [want.astype(dt)], attrs), ins)
        assert got.dtype == dt
        np.testing.assert_allclose(got.astype(np.float32), want, rtol=tol, atol=tol)


CONVT_CONFIGS = [
    (1, 4, 6, (5, 5), (3, 3), {}),
    (2, 4, 6, (5, 4), (3, 3), {"strides": [2, 2], "pads": [1, 0, 1, 1], "output_padding": [1, 1]}),
    (1, 4, 6, (5, 5), (3, 3), {"strides": [2, 2], "dilations": [2, 1], "group": 2}),
    (1, 4, 4, (6, 6), (4, 4), {"strides": [2, 2], "auto_pad": "SAME_UPPER"}),
    (1, 4, 4, (6, 6), (3, 3), {"strides": [2, 2], "auto_pad": "SAME_LOWER"}),
    (1, 3, 5, (7,), (4,), {"strides": [3], "pads": [1, 2]}),
    (1, 3, 3, (4, 4), (3, 3), {"strides": [2, 2], "output_shape": [10, 9]}),
]


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("cfg", CONVT_CONFIGS)
def test_conv_transpose_matches_onnxruntime(cfg, bias: bool) -> None:
    n, c, m, sp, k, attrs = cfg
    rng = np.random.default_rng(c + len(attrs))
    g = attrs.get("group", 1)
    ins = [_rand(rng, n, c, *sp), _rand(rng, c, m // g, *k)] + ([_rand(rng, m)] if bias else [])
    attrs = {"kernel_shape": list(k), **attrs}
    want = ort_run("ConvTranspose", ins, attrs)[0]
    got = run_in_view(make_spec("ConvTranspose", ins, [want], attrs), ins)
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)
    res = _rand(rng, *want.shape)
    fused = dict(attrs, _activation="Relu", _residual=1)
    got = run_in_view(make_spec("ConvTranspose", ins + [res], [want], fused, {1: ins[1]}), ins + [res])
    np.testing.assert_allclose(got, np.maximum(want + res, 0), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("batch,cfg", [
    (3, {"shape": (24, 16, 15, 17), "w": (40, 16, 3, 3), "attrs": {"strides": [2, 2], "pads": [1, 1, 1, 1]}}),
    (2, {"shape": (2, 3, 64, 60), "w": (16, 3, 7, 7), "attrs": {"strides": [2, 2], "pads": [3, 3, 3, 3]}}),
    (9, {"shape": (9, 32, 14, 14), "w": (64, 32, 1, 1), "attrs": {"strides": [2, 2]}}),
    (4, {"shape": (4, 8, 20, 20), "w": (12, 4, 3, 3), "attrs": {"group": 2, "dilations": [2, 2]}}),
])
def test_im2col_batch_as_whole_image_tasks(two_threads, monkeypatch, batch: int, cfg) -> None:
    """A batch through the im2col path runs one task per scratch slot (image_slots), each taking
    its images one after another; bias, residual and Relu land on every image."""
    from omrt.kernels import conv as conv_module
    from omrt.kernels.conv_common import conv_geom

    monkeypatch.setattr(conv_module, "MIN_PARALLEL_FLOPS", 0)  # small shapes, same path
    rng = np.random.default_rng(21)
    x = rng.standard_normal(cfg["shape"], dtype=np.float32)[:batch]
    w = rng.standard_normal(cfg["w"], dtype=np.float32)
    b = rng.standard_normal(cfg["w"][0], dtype=np.float32)
    attrs = dict(cfg["attrs"], kernel_shape=list(cfg["w"][2:]))
    conv = ort_run("Conv", [x, w, b], attrs)[0]
    res = rng.standard_normal(conv.shape, dtype=np.float32)
    want = np.maximum(conv + res, 0)
    spec = make_spec("Conv", [x, w, b, res], [want], dict(attrs, _activation="Relu", _residual=1), {1: w, 2: b})
    assert conv_module.image_slots(conv_geom(spec)) == min(batch, 8)
    got = run_in_view(spec, [x, w, b, res])
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=1e-4)



@pytest.mark.parametrize("shape,kernel,attrs", [
    ((9, 8, 56, 57), (3, 3), {"strides": [2, 2], "pads": [1, 0, 1, 1]}),   # phases, chunks of 2
    ((3, 8, 30, 31), (3, 3), {"dilations": [2, 2], "pads": [2, 2, 2, 2]}),
    ((1, 12, 9, 11), (5, 5), {"pads": [2, 1, 2, 3]}),                      # one small image
    ((1, 16, 13, 13), (3, 3), {"strides": [2, 2], "auto_pad": "SAME_UPPER"}),
])
@pytest.mark.parametrize("bias", [False, True])
def test_depthwise_channels_last(two_threads, monkeypatch, shape, kernel, attrs, bias: bool) -> None:
    """Depthwise convs on numpy's channels-last path: taps as whole-image passes, images in chunks
    spread over both threads, then bias, residual and Relu on the NCHW output."""
    monkeypatch.setenv("OMRT_JIT", "0")
    from omrt.kernels.conv_common import conv_geom
    from omrt.kernels.depthwise_cl import channels_last_wins

    rng = np.random.default_rng(23)
    c = shape[1]
    x = rng.standard_normal(shape, dtype=np.float32)
    w = rng.standard_normal((c, 1) + kernel, dtype=np.float32)
    b = rng.standard_normal(c, dtype=np.float32)
    attrs = dict(attrs, kernel_shape=list(kernel), group=c)
    ins = [x, w] + ([b] if bias else [])
    conv = ort_run("Conv", ins, attrs)[0]
    res = rng.standard_normal(conv.shape, dtype=np.float32)
    want = np.maximum(conv + res, 0)
    consts = {1: w} | ({2: b} if bias else {})
    spec = make_spec("Conv", ins + [res], [want], dict(attrs, _activation="Relu", _residual=1), consts)
    assert channels_last_wins(conv_geom(spec))
    got = run_in_view(spec, ins + [res])
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=1e-4)
    plain = make_spec("Conv", ins, [conv], attrs)  # weights as a run-time input
    np.testing.assert_allclose(run_in_view(plain, ins), conv, rtol=RTOL, atol=1e-4)


@pytest.mark.parametrize("const", [True, False])
@pytest.mark.parametrize("batch", [1, 3])
def test_grouped_conv_writing_shuffled_channels(kernel_paths, batch: int, const: bool) -> None:
    """A grouped 1x1 conv with `_shuffle_out` writes channel k*G + g for group g's k-th output, with
    each group's bias and the Relu (compiler pass shuffle_into_conv), from constant or run-time
    weights and bias."""
    rng = np.random.default_rng(41)
    groups, c, m, hw = 4, 16, 24, (5, 6)
    x = rng.standard_normal((batch, c, *hw), dtype=np.float32)
    w = rng.standard_normal((m, c // groups, 1, 1), dtype=np.float32)
    b = rng.standard_normal(m, dtype=np.float32)
    attrs = {"kernel_shape": [1, 1], "group": groups}
    conv = np.maximum(ort_run("Conv", [x, w, b], attrs)[0], 0)
    want = conv.reshape(batch, groups, m // groups, *hw).transpose(0, 2, 1, 3, 4).reshape(conv.shape)
    spec = make_spec("Conv", [x, w, b], [want], dict(attrs, _activation="Relu", _shuffle_out=1),
                     {1: w, 2: b} if const else {})
    np.testing.assert_allclose(run_in_view(spec, [x, w, b]), want, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("act,bias_const", [("Sigmoid", True), ("Relu", False)])
def test_a_path_that_adds_the_residual_after_its_product_keeps_it_aside(act: str, bias_const: bool) -> None:
    """Given its output in the residual's bytes, a conv whose kernel cannot add the residual as it
    stores (an activation other than a clamp, a bias given at run time) copies it aside first
    and gives the same numbers; the compiler does not choose to share bytes for such a conv."""
    rng = np.random.default_rng(7)
    x, w, b = _rand(rng, 1, 40, 9, 30), _rand(rng, 20, 40, 1, 1), _rand(rng, 20)
    res = _rand(rng, 1, 20, 9, 30)
    want = ort_run("Conv", [x, w, b], {"kernel_shape": [1, 1]})[0] + res
    want = 1 / (1 + np.exp(-want)) if act == "Sigmoid" else np.maximum(want, 0)
    spec = make_spec("Conv", [x, w, b, res], [want], {"kernel_shape": [1, 1], "_activation": act, "_residual": 1},
                     {1: w} | ({2: b} if bias_const else {}))
    assert _conv_overwrites(spec) == ()
    np.testing.assert_allclose(run_over_residual(spec, [x, w, b, res]), want, rtol=RTOL, atol=ATOL)
