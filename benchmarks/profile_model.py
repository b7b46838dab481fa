"""Where omrt spends its time on one randomized light model: per op type and per Conv shape.

    python benchmarks/profile_model.py resnet50 [--batch 1] [--repeats 5] [--top 25] [--median]

Times each bound kernel call of the compiled plan (aliases excluded) after one warm-up run, so
the figures are kernel time without the executor's own per-op cost. A plan in batch lanes
(omrt.compiler.lanes) is timed lane after lane, each lane's kernels on one thread, and summed.
By default each op's mean over the repeats; `--median` takes each op's median instead ("per-op
medians"), which a one-off garbage collection or a VM hiccup in one repeat does not move.
"""
from __future__ import annotations

import collections
import time

import numpy as np

from common import kernel_constants, model_arguments, print_breakdown

from omrt.compiler import compile_onnx
from omrt.kernels.ufunc_buffer import kernel_ufunc_buffer
from omrt.om import write_om
from omrt.session import InferenceSession
from tests.support.light_models import random_input, randomized


def shape_key(op) -> str:
    """Conv ops by kernel, stride, group, channels and input size; other ops by type."""
    if op.op_type != "Conv":
        return op.op_type
    a = op.attrs
    x = op.inputs[0].desc.shape
    tag = "ConvW" if a.get("_winograd") else "Conv"
    return (f"{tag} k{a.get('kernel_shape')} s{a.get('strides')} g{a.get('group', 1)} "
            f"{x[1]}->{op.outputs[0].desc.shape[1]} {x[2]}")


def bound_steps(onnx_model, feeds, constants: dict[str, float] | None = None):
    """(session, its graph's lanes (or the graph), its ops with aliases left out, the input and
    output buffers): the model compiled and loaded with `constants` set (common.kernel_constants),
    bound to buffers the caller keeps alive while it calls the steps directly, run once."""
    with kernel_constants(constants or {}):
        session = InferenceSession(write_om(compile_onnx(onnx_model)))
    graph = session._executor.graphs[0]
    inputs = [np.ascontiguousarray(feeds[ref.desc.name]) for ref in graph.plan.inputs]
    outputs = [np.empty(desc.shape, desc.dtype) for desc in graph.plan.output_descs]
    graph.bind_io([a.reshape(-1).view(np.uint8) for a in inputs], [o.reshape(-1).view(np.uint8) for o in outputs])
    graph.run()
    ops = [op for op in graph.plan.ops if not op.alias]
    return session, getattr(graph, "lanes", [graph]), ops, (inputs, outputs)


def time_steps(steps, seconds: np.ndarray) -> None:
    """Run each bound step (kernel, inputs, outputs, scratch) once, in order, its wall time in
    seconds[i]."""
    for i, (kernel, ins, outs, scratch) in enumerate(steps):
        start = time.perf_counter()
        kernel(ins, outs, scratch)
        seconds[i] = time.perf_counter() - start


def main() -> None:
    ap = model_arguments(repeats=5, top=25)
    ap.add_argument("--median", action="store_true", help="sum each op's median instead of its mean")
    args = ap.parse_args()
    onnx_model = randomized(args.model, batch=args.batch, expose_logits=False)
    session, bound, ops, buffers = bound_steps(onnx_model, random_input(onnx_model))
    times = np.zeros((args.repeats, len(bound), len(ops)))
    with kernel_ufunc_buffer():  # as the executor runs them
        for k in range(args.repeats * len(bound)):
            time_steps(bound[k % len(bound)].steps, times[k // len(bound), k % len(bound)])
    per_op = (np.median(times, axis=0) if args.median else times.mean(axis=0)).sum(axis=0)
    by_type: dict[str, float] = collections.defaultdict(float)
    by_shape: dict[str, float] = collections.defaultdict(float)
    for op, dt in zip(ops, per_op):
        by_type[op.op_type] += dt
        by_shape[shape_key(op)] += dt
    scale = 1e3
    print_breakdown(f"{args.model} batch {args.batch}: kernels {sum(by_type.values()) * scale:.2f} ms per run",
                    {k: v * scale for k, v in by_type.items()}, {k: v * scale for k, v in by_shape.items()},
                    args.top)


if __name__ == "__main__":
    main()
