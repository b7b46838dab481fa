"""A/B of omrt settings on one randomized light model, in one process, against onnxruntime.

    python benchmarks/ab_models.py squeezenet [--batch 1] [--rounds 30] VARIANT [VARIANT ...]

A VARIANT is `name=` (the defaults) or `name=KEY=VALUE,KEY=VALUE`. An upper-case KEY is a module
constant of omrt.kernels, set in every kernel module that has it while that variant's session
is compiled and loaded (kernels read their thresholds then); `pool.linger`, `pool.holdoff`,
`pool.poll` (in seconds) set the kernel pool's polling before each of that variant's runs (0
linger: workers park after every job; `pool.poll`: how often a polling thread yields its core).
Examples:

    python benchmarks/ab_models.py densenet121 now= old=MIN_PARALLEL_FLOPS=4e7
    python benchmarks/ab_models.py squeezenet polling= parked=pool.linger=0

Why one process: the VM's speed drifts between runs of bench_models.py by more than most single
changes. Each round runs onnxruntime, then one variant, for every variant, so each omrt run
starts where bench_models.py's do, right after onnxruntime's (which costs omrt 0.3-0.5 ms at batch
1 against a run after another omrt run); the variants' order rotates from round to round. Prints
each median (ms) and its ratio to onnxruntime's median.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from common import kernel_constants, ort_session, parse_constants

from omrt.compiler import compile_onnx
from omrt.kernels import parallel, spin_wait
from omrt.om import write_om
from omrt.session import InferenceSession
from tests.support.light_models import random_input, randomized

POOL_KEYS = {"pool.linger": "linger_ticks", "pool.holdoff": "holdoff_ticks", "pool.poll": "poll_ticks"}


def parse(spec: str) -> tuple[str, dict[str, float], dict[str, float]]:
    """'name=K=V,K=V' -> (name, module constants, pool settings)."""
    name, _, rest = spec.partition("=")
    items = [item for item in rest.split(",") if item]
    pool = {POOL_KEYS[key]: float(value) for key, _, value in (i.partition("=") for i in items) if key in POOL_KEYS}
    constants = parse_constants(",".join(i for i in items if i.partition("=")[0] not in POOL_KEYS))
    return name, constants, pool


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("variants", nargs="+")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=30)
    args = ap.parse_args()
    onnx_model = randomized(args.model, batch=args.batch, expose_logits=False)
    ort = ort_session(onnx_model.SerializeToString())
    feeds = random_input(onnx_model)
    pool = parallel.get_pool()
    defaults = {"linger_ticks": pool.linger_ticks, "holdoff_ticks": pool.holdoff_ticks}
    variants = []
    for spec in args.variants:
        name, constants, settings = parse(spec)
        with kernel_constants(constants):
            session = InferenceSession(write_om(compile_onnx(onnx_model)))
        ticks = {attr: spin_wait.ticks(seconds) if seconds and pool.linger_ticks else 0
                 for attr, seconds in settings.items()}
        variants.append((name, session, dict(defaults, **ticks)))

    times: dict[str, list[float]] = {name: [] for name, _, _ in variants}
    times["onnxruntime"] = []
    for round_ in range(args.rounds + 2):
        k = round_ % len(variants)
        for name, session, settings in variants[k:] + variants[:k]:
            for attr, value in settings.items():
                setattr(pool, attr, value)
            start = time.perf_counter()
            ort.run(None, feeds)
            middle = time.perf_counter()
            session.run(None, feeds)
            end = time.perf_counter()
            if round_ >= 2:  # two rounds of warm-up
                times["onnxruntime"].append((middle - start) * 1e3)
                times[name].append((end - middle) * 1e3)
    for attr, value in defaults.items():
        setattr(pool, attr, value)
    ort_ms = float(np.median(times["onnxruntime"]))
    print(f"{args.model} batch {args.batch}, {args.rounds} rounds")
    for name, samples in times.items():
        ms = float(np.median(samples))
        print(f"  {name:14s} {ms:8.3f} ms   omrt/ort {ms / ort_ms:.3f}")


if __name__ == "__main__":
    main()
