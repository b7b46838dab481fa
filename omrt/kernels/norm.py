"""BatchNormalization (inference as one fused multiply-add, training as the ONNX reference) and LRN."""
from __future__ import annotations

import numpy as np

from omrt.kernels import fused_epilogue, jit
from omrt.kernels.base import OpSpec, register
from omrt.kernels.conv_common import compute_itemsize
from omrt.kernels.epilogue import apply_activation, float16_via_float32
from omrt.kernels.parallel import get_pool, split

# Inference BN tensors from this size are split over the kernel threads (whole images, or channel
# blocks of one image). DenseNet-121's 58 pre-activation BN+Relu at 2 threads: batch 8 42 -> 27 ms
# per run, batch 1 4.4 -> 4.1 ms; from 256 KB batch 1 went to 4.8-5.4 ms. Since the one-pass
# compiled BN, its 62 BN ops at batch 1 (per-op medians, two alternations) take 1.55-1.58 ms split
# from 1 MB and 1.17-1.24 from 4 MB: a second thread's wake-up costs more than half of a pass
# over a few MB.
NORM_PARALLEL_BYTES = 1 << 22


def _norm_tasks(shape: tuple[int, ...], itemsize: int, threads: int) -> list[tuple[int, int, int, int]]:
    """(first image, end image, first channel, end channel) pieces of an (N, C, ...) tensor; one
    piece when it is not worth threads."""
    n, c = shape[:2]
    if threads == 1 or int(np.prod(shape)) * itemsize < NORM_PARALLEL_BYTES:
        return [(0, n, 0, c)]
    if n >= threads:
        return [(a, b, 0, c) for a, b in split(n, threads)]
    return [(i, i + 1, a, b) for i in range(n) for a, b in split(c, threads)]


def bn_affine(scale: np.ndarray, bias: np.ndarray, mean: np.ndarray, var: np.ndarray,
              eps: float) -> tuple[np.ndarray, np.ndarray]:
    """(a, b) with BatchNormalization(x) == a * x + b per channel; the compiler can fold these too."""
    a = scale / np.sqrt(var + eps)
    return a, bias - mean * a


@register("BatchNormalization")
@float16_via_float32
def batch_norm(spec: OpSpec):
    """Inference: y = a*x + b, with (a, b) precomputed when the statistics are constants, then
    the fused `_activation` (pre-activation blocks: BN -> Relu -> Conv) while y is in cache.

    training_mode=1 uses batch statistics and also returns the updated running mean and variance;
    it allocates its temporaries (training is not a runtime path).
    """
    eps = float(spec.attr("epsilon", 1e-5))
    momentum = float(spec.attr("momentum", 0.9))
    training = bool(spec.attr("training_mode", 0))
    activation = spec.attr("_activation")
    act_params = spec.attr("_activation_params")
    x_spec = spec.inputs[0]
    dtype = np.dtype(spec.outputs[0].dtype)
    bshape = (x_spec.shape[1],) + (1,) * (len(x_spec.shape) - 2)
    axes = (0,) + tuple(range(2, len(x_spec.shape)))
    const = None
    if not training and all(i in spec.consts for i in (1, 2, 3, 4)):
        a, b = bn_affine(*(spec.consts[i].astype(np.float64) for i in (1, 2, 3, 4)), eps)
        const = (a.astype(dtype).reshape(bshape), b.astype(dtype).reshape(bshape))
    # a BN whose scale went into the following Convs (omrt.compiler.passes.scale_into_conv)
    unit_scale = const is not None and bool((const[0] == 1).all())
    # ... and whose shift went into their biases too: relu(a*x + b) - b = max(a*x, -b), so the
    # constant pair then carries -b
    floor = const is not None and activation == "Relu" and bool(spec.attr("_bias_to_consumers"))
    if floor:
        const = (const[0], -const[1])

    def run(inputs, outputs, scratch):
        x, y = inputs[0], outputs[0]
        scale, bias, mean, var = inputs[1:5]
        if training:
            bmean, bvar = x.mean(axis=axes), x.var(axis=axes)
            if len(outputs) > 1:
                np.copyto(outputs[1], mean * momentum + bmean * (1 - momentum), casting="unsafe")
            if len(outputs) > 2:
                np.copyto(outputs[2], var * momentum + bvar * (1 - momentum), casting="unsafe")
            mean, var = bmean, bvar
        if const is not None:
            a, b = const
        else:
            a, b = bn_affine(scale, bias, mean, var, eps)  # per-channel temporaries (C values)
            a, b = a.astype(dtype, copy=False).reshape(bshape), b.astype(dtype, copy=False).reshape(bshape)
        if len(tasks) < 2:
            _affine(x, y, a, b)
            return

        def task(i: int) -> None:
            n0, n1, c0, c1 = tasks[i]
            _affine(x[n0:n1, c0:c1], y[n0:n1, c0:c1], a[c0:c1], b[c0:c1])

        pool.run(task, len(tasks))

    def _affine(x: np.ndarray, y: np.ndarray, a: np.ndarray, b: np.ndarray) -> None:
        if one_pass is not None and fused_epilogue.channel_affine(x, y, None if unit_scale else a, b, floor,
                                                                  one_pass):
            return
        if floor:
            if not unit_scale:
                np.multiply(x, a, out=y)
                x = y
            np.maximum(x, b, out=y)
            return
        if unit_scale:
            np.add(x, b, out=y)
        else:
            np.multiply(x, a, out=y)
            np.add(y, b, out=y)
        if activation:
            apply_activation(y, activation, act_params)

    # The compiled one-pass form (omrt.kernels.fused_epilogue), for the activations it applies.
    # With `floor` the max against -b is the Relu.
    one_pass = None
    if jit.enabled():
        one_pass = fused_epilogue.NO_PASS if floor else fused_epilogue.activation_code(
            activation, list(act_params or []))
    if one_pass is not None:
        fused_epilogue.warm_up()
    pool = get_pool()
    tasks = [] if training or len(x_spec.shape) < 2 else _norm_tasks(
        tuple(x_spec.shape), np.dtype(dtype).itemsize, pool.size)
    return run


def _lrn_workspace(spec: OpSpec) -> int:
    shape = spec.inputs[0].shape
    size = int(spec.attr("size"))
    rest = int(np.prod(shape[2:], dtype=np.int64))
    return shape[0] * (shape[1] + size - 1) * rest * compute_itemsize(spec.outputs[0].dtype)


@register("LRN", workspace=_lrn_workspace)
@float16_via_float32
def lrn(spec: OpSpec):
    """y = x / (bias + alpha/size * sum of x^2 over `size` neighbouring channels)^beta."""
    alpha = float(spec.attr("alpha", 1e-4))
    beta = float(spec.attr("beta", 0.75))
    bias = float(spec.attr("bias", 1.0))
    size = int(spec.attr("size"))
    n, c = spec.inputs[0].shape[:2]
    rest = tuple(spec.inputs[0].shape[2:])
    lo = (size - 1) // 2
    dtype = np.dtype(spec.outputs[0].dtype)

    def run(inputs, outputs, scratch):
        x, y = inputs[0], outputs[0]
        sq = scratch[:n * (c + size - 1) * int(np.prod(rest, dtype=np.int64)) * dtype.itemsize]
        sq = sq.view(dtype).reshape((n, c + size - 1) + rest)
        sq[:, :lo] = 0
        sq[:, lo + c:] = 0
        np.square(x, out=sq[:, lo:lo + c])
        np.copyto(y, sq[:, 0:c])
        for k in range(1, size):
            np.add(y, sq[:, k:k + c], out=y)
        y *= alpha / size
        y += bias
        inverse_power(y, beta, sq[:, lo:lo + c])
        np.multiply(y, x, out=y)
    return run


def inverse_power(y: np.ndarray, beta: float, tmp: np.ndarray) -> None:
    """y = y ** -beta in place. numpy's float32 power has no SIMD loop; for the betas LRN uses
    (0.75 in AlexNet, CaffeNet and GoogLeNet, 0.5) a square-root chain is exact to an ulp or two
    and about 30% faster on 192x55x55."""
    if beta == 0.75:
        np.sqrt(y, out=y)
        np.sqrt(y, out=tmp)
        np.multiply(y, tmp, out=y)
        np.divide(1.0, y, out=y)
    elif beta == 0.5:
        np.sqrt(y, out=y)
        np.divide(1.0, y, out=y)
    else:
        np.power(y, -beta, out=y)
