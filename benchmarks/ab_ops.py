"""Per-op A/B of omrt settings on one randomized light model: where a setting gains or loses.

    python benchmarks/ab_ops.py resnet50 [--batch 1] [--repeats 30] [--top 15] VARIANT VARIANT

VARIANTs as in ab_models.py (`name=` for the defaults, `name=KEY=VALUE,...` for module constants).
Both sessions are built, then each op's kernel is timed in turn in both (as profile_model.py times
them), alternating op by op, so drift hits both alike. Prints each variant's sum of per-op
medians and the Conv shapes (and other op types) whose time moved most, B minus A.
"""
from __future__ import annotations

import collections
import time

import numpy as np

from ab_models import parse
from common import model_arguments
from profile_model import bound_steps, shape_key

from omrt.kernels.ufunc_buffer import kernel_ufunc_buffer
from tests.support.light_models import random_input, randomized


def main() -> None:
    ap = model_arguments(repeats=30, top=15)
    ap.add_argument("variants", nargs=2)
    args = ap.parse_args()
    onnx_model = randomized(args.model, batch=args.batch, expose_logits=False)
    feeds = random_input(onnx_model)
    names, built = [], []
    for spec in args.variants:
        name, constants, _ = parse(spec)
        names.append(name)
        built.append(bound_steps(onnx_model, feeds, constants))
    times = [collections.defaultdict(list) for _ in built]
    with kernel_ufunc_buffer():  # as the executor runs them
        for _ in range(args.repeats):
            for lane_index in range(len(built[0][1])):
                for v, (_, lanes, ops, _) in enumerate(built):
                    for i, (kernel, ins, outs, scratch) in enumerate(lanes[lane_index].steps):
                        start = time.perf_counter()
                        kernel(ins, outs, scratch)
                        times[v][(lane_index, shape_key(ops[i]), i)].append(time.perf_counter() - start)
    per_shape = []
    for v in range(2):
        shapes: dict[str, float] = collections.defaultdict(float)
        for (_, key, _), samples in times[v].items():
            shapes[key] += float(np.median(samples)) * 1e3
        per_shape.append(shapes)
        print(f"{names[v]:>12}: {sum(shapes.values()):8.3f} ms (sum of per-op medians)")
    keys = set(per_shape[0]) | set(per_shape[1])
    moved = sorted(keys, key=lambda k: -abs(per_shape[1].get(k, 0.0) - per_shape[0].get(k, 0.0)))
    print(f"{'shape':50s} {names[0]:>10} {names[1]:>10} {'B - A':>8}")
    for key in moved[:args.top]:
        a, b = per_shape[0].get(key, 0.0), per_shape[1].get(key, 0.0)
        print(f"{key:50s} {a:10.3f} {b:10.3f} {b - a:+8.3f}")


if __name__ == "__main__":
    main()
