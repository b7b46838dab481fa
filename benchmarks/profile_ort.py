"""Where onnxruntime spends its time on one randomized light model, per op type and per node shape.

    python benchmarks/profile_ort.py densenet121 [--batch 8] [--repeats 10] [--top 25]

The counterpart of profile_model.py: onnxruntime's own profiler (OMRT_BENCH_THREADS intra-op
threads, spinning off, as in bench_models.py), kernel time per run summed over the nodes of one
op type and input -> output shape. Its Convs run in a blocked layout, so some of its time sits in
ReorderInput / ReorderOutput nodes, and it may split a BatchNormalization into Mul and Add.
"""
from __future__ import annotations

import collections
import json
import os
import tempfile

import common
from tests.support.light_models import random_input, randomized

WARMUP = 3


def node_key(event: dict) -> str:
    args = event["args"]
    shapes_in = args.get("input_type_shape") or [{}]
    shapes_out = args.get("output_type_shape") or [{}]
    return f"{args.get('op_name')} {json.dumps(shapes_in[0])} -> {json.dumps(shapes_out[0])}"


def main() -> None:
    args = common.model_arguments(repeats=10, top=25).parse_args()
    model = randomized(args.model, batch=args.batch)
    feed = random_input(model)
    with tempfile.TemporaryDirectory() as tmp:
        session = common.ort_session(model.SerializeToString(), profile_prefix=os.path.join(tmp, "ort"))
        for _ in range(WARMUP + args.repeats):
            session.run(None, feed)
        with open(session.end_profiling()) as f:
            events = json.load(f)
    runs = [e["dur"] / 1e3 for e in events if e.get("name") == "model_run"][WARMUP:]
    nodes = [e for e in events if e.get("cat") == "Node" and e["name"].endswith("_kernel_time")]
    nodes = nodes[len(nodes) * WARMUP // (WARMUP + args.repeats):]
    per_shape: dict[str, float] = collections.defaultdict(float)
    per_op: dict[str, float] = collections.defaultdict(float)
    count: collections.Counter[str] = collections.Counter()
    for e in nodes:
        ms = e["dur"] / 1e3 / args.repeats
        key = node_key(e)
        per_shape[key] += ms
        count[key] += 1
        per_op[e["args"].get("op_name", "?")] += ms
    by_shape = {f"{key} x{count[key] // args.repeats}": ms for key, ms in per_shape.items()}
    runs.sort()
    common.print_breakdown(f"{args.model} batch {args.batch}: onnxruntime run {runs[len(runs) // 2]:.2f} ms "
                           f"(median), kernels {sum(per_shape.values()):.2f} ms per run", per_op, by_shape, args.top)


if __name__ == "__main__":
    main()
