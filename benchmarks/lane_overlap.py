"""What running batch lanes side by side costs each op: lanes one after another against together.

    python benchmarks/lane_overlap.py resnet50 [--batch 8] [--repeats 8] [--top 40]

A plan in batch lanes (omrt.compiler.lanes) runs each lane on a thread of its own. Each round
times every op of every lane twice: with the lanes run one after another on the calling thread
(each alone on the machine), then with all lanes at once on the kernel pool's threads, as the
executor runs them. Prints both rounds' medians of wall time, the sums of per-op medians, and per
shape the two sums and their ratio: how much the lanes slow each other down through the shared
cache and memory, op by op.
"""
from __future__ import annotations

import collections
import time

import numpy as np

from common import model_arguments
from profile_model import bound_steps, shape_key, time_steps

from omrt.kernels import parallel
from omrt.kernels.ufunc_buffer import kernel_ufunc_buffer
from tests.support.light_models import random_input, randomized

WARMUP = 2


def main() -> None:
    ap = model_arguments(repeats=8, top=40)
    ap.set_defaults(batch=8)
    args = ap.parse_args()
    onnx_model = randomized(args.model, batch=args.batch, expose_logits=False)
    _, lanes, ops, _ = bound_steps(onnx_model, random_input(onnx_model))
    if len(lanes) < 2:
        raise SystemExit(f"{args.model} at batch {args.batch} compiles to one lane: nothing runs side by side")
    pool = parallel.get_pool()
    shape = (args.repeats, len(lanes), len(ops))
    op_times = {"alone": np.zeros(shape), "together": np.zeros(shape)}
    walls: dict[str, list[float]] = {"alone": [], "together": []}

    def run_lane(mode: str, round_: int, lane: int) -> None:
        time_steps(lanes[lane].steps, op_times[mode][round_, lane])

    with kernel_ufunc_buffer():  # as the executor runs them
        for k in range(args.repeats + WARMUP):
            r = max(k - WARMUP, 0)
            start = time.perf_counter()
            for lane in range(len(lanes)):
                run_lane("alone", r, lane)
            middle = time.perf_counter()
            pool.run(lambda lane: run_lane("together", r, lane), len(lanes), True)
            end = time.perf_counter()
            if k >= WARMUP:
                walls["alone"].append(middle - start)
                walls["together"].append(end - middle)
    per_op = {mode: np.median(t, axis=0).sum(axis=0) * 1e3 for mode, t in op_times.items()}
    print(f"{args.model} batch {args.batch}, {len(lanes)} lanes, {args.repeats} rounds: wall "
          f"{np.median(walls['alone']) * 1e3:.1f} ms one after another, {np.median(walls['together']) * 1e3:.1f} "
          f"together; sums of per-op medians {per_op['alone'].sum():.1f} / {per_op['together'].sum():.1f} ms")
    by_shape: dict[str, list[float]] = collections.defaultdict(lambda: [0.0, 0.0])
    for op, alone, together in zip(ops, per_op["alone"], per_op["together"]):
        by_shape[shape_key(op)][0] += alone
        by_shape[shape_key(op)][1] += together
    print(f"{'shape':50s} {'alone':>9} {'together':>9} {'ratio':>6}")
    for key, (alone, together) in sorted(by_shape.items(), key=lambda kv: kv[1][0] - kv[1][1])[:args.top]:
        print(f"{key:50s} {alone:9.2f} {together:9.2f} {together / alone:6.2f}")


if __name__ == "__main__":
    main()
