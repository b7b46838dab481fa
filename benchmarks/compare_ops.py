"""Per op shape, omrt against onnxruntime on one randomized light model, in one process, alternating.

    python benchmarks/compare_ops.py resnet50 [--batch 1] [--repeats 20] [--top 30]

profile_model.py and profile_ort.py run one after the other, so a host whose speed drifts by 10-20 %
from one minute to the next moves one runtime's figures and not the other's. Here every round
times each of omrt's bound kernels in turn (as profile_model.py does), one onnxruntime run with its
profiler on and one plain onnxruntime run; each op's median over the rounds is summed per shape.
onnxruntime runs its Convs in a blocked layout with Relu and Add fused in, so shapes are keyed by
input and output (channels@size), which both runtimes share. Its profiled kernel times add up to
more than its plain run (5-20 %, more on a loaded host), so its per-op figures are scaled to the
plain run's median, as if its kernels took all of that run.
"""
from __future__ import annotations

import collections
import json
import os
import tempfile
import time

import numpy as np

import common
from profile_model import bound_steps, time_steps

from omrt.kernels.ufunc_buffer import kernel_ufunc_buffer
from tests.support.light_models import random_input, randomized

WARMUP = 3


def shape_key(op_type: str, x: list[int], y: list[int]) -> str:
    """Convs by input and output channels and map size (in@size->out@size); other ops by type."""
    if op_type not in ("Conv", "FusedConv") or len(x) < 3 or len(y) < 3:
        return op_type
    return f"Conv {x[1]}@{x[2]}->{y[1]}@{y[2]}"


def _first_shape(shapes: list[dict] | None) -> list[int]:
    """The first tensor's shape in an onnxruntime profile event's [{dtype: shape}, ...]."""
    return next(iter(shapes[0].values()), []) if shapes else []


def _ort_key(event: dict) -> str:
    args = event["args"]
    return shape_key(args.get("op_name", "?"), _first_shape(args.get("input_type_shape")),
                     _first_shape(args.get("output_type_shape")))


def main() -> None:
    args = common.model_arguments(repeats=20, top=30).parse_args()
    plain = randomized(args.model, batch=args.batch, expose_logits=False)
    feeds = random_input(plain)
    session, lanes, ops, _buffers = bound_steps(plain, feeds)
    steps = [step for lane in lanes for step in lane.steps]
    ours = np.zeros((args.repeats, len(steps)))
    plain_runs = []
    with tempfile.TemporaryDirectory() as tmp:
        with_logits = randomized(args.model, batch=args.batch).SerializeToString()
        ort = common.ort_session(with_logits, profile_prefix=os.path.join(tmp, "ort"))
        ort_plain = common.ort_session(with_logits)
        with kernel_ufunc_buffer():
            for _ in range(WARMUP):
                ort.run(None, feeds)
                ort_plain.run(None, feeds)
                for kernel, ins, outs, scratch in steps:
                    kernel(ins, outs, scratch)
            for r in range(args.repeats):
                time_steps(steps, ours[r])
                ort.run(None, feeds)
                start = time.perf_counter()
                ort_plain.run(None, feeds)
                plain_runs.append(time.perf_counter() - start)
        with open(ort.end_profiling()) as f:
            events = json.load(f)
    nodes = [e for e in events if e.get("cat") == "Node" and e["name"].endswith("_kernel_time")]
    per_run = len(nodes) // (WARMUP + args.repeats)
    nodes = nodes[WARMUP * per_run:]
    theirs = np.array([e["dur"] / 1e3 for e in nodes]).reshape(args.repeats, per_run)
    plain_ms = float(np.median(plain_runs) * 1e3)
    scale = plain_ms / float(np.median(theirs.sum(axis=1)))
    omrt_ms: dict[str, float] = collections.defaultdict(float)
    ort_ms: dict[str, float] = collections.defaultdict(float)
    count: collections.Counter[str] = collections.Counter()
    lane_ops = [op for _ in lanes for op in ops]
    for op, ms in zip(lane_ops, np.median(ours, axis=0) * 1e3):
        key = shape_key(op.op_type, list(op.inputs[0].desc.shape), list(op.outputs[0].desc.shape))
        omrt_ms[key] += ms
        count[key] += 1
    for event, ms in zip(nodes[:per_run], np.median(theirs, axis=0)):
        ort_ms[_ort_key(event)] += ms * scale
    print(f"{args.model} batch {args.batch}, {args.repeats} rounds: sums of per-op medians omrt "
          f"{sum(omrt_ms.values()):.2f} ms, onnxruntime {sum(ort_ms.values()):.2f} ms (its plain run "
          f"{plain_ms:.2f} ms, profiled kernels scaled by {scale:.3f})")
    print(f"{'shape':30s} {'ops':>4s} {'omrt':>8s} {'ort':>8s} {'diff':>7s} {'ratio':>6s}")
    keys = sorted(set(omrt_ms) | set(ort_ms), key=lambda k: ort_ms.get(k, 0.0) - omrt_ms.get(k, 0.0))
    for key in keys[:args.top]:
        a, b = omrt_ms.get(key, 0.0), ort_ms.get(key, 0.0)
        ratio = f"{a / b:6.2f}" if b else "     -"
        print(f"{key:30s} {count[key]:4d} {a:8.2f} {b:8.2f} {a - b:+7.2f} {ratio}")


if __name__ == "__main__":
    main()
