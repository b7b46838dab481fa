"""A/B of omrt settings on one Conv kernel, in one process, alternating, against onnxruntime.

    python benchmarks/ab_conv.py t28 [--batch 1] [--cold] [--repeats 40] [--winograd] VARIANT [VARIANT ...]

The case is a key of bench_conv_kernel.py's CASES (its first word); a VARIANT is `name=` (the
defaults) or `name=KEY=VALUE,...` (omrt.kernels module constants while its kernel is built), as in
ab_models.py. Every variant's kernel and one onnxruntime session are built first, then timed in
turn, round after round, so drift hits all alike (`--cold`: caches flushed before each call).
Prints each median (ms), its ratio to onnxruntime's and the largest difference from it.
"""
from __future__ import annotations

import argparse

import numpy as np

from ab_models import parse
from bench_conv_kernel import CASES, FLUSH_BYTES, conv_case, omrt_conv
from common import alternate, ort_session


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("case")
    ap.add_argument("variants", nargs="+")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--cold", action="store_true")
    ap.add_argument("--repeats", type=int, default=40)
    ap.add_argument("--winograd", action="store_true", help="let prepack choose Winograd where eligible")
    args = ap.parse_args()
    cfg = next((v for k, v in CASES.items() if k.split()[0] == args.case), None)
    if cfg is None:
        raise SystemExit(f"ab_conv: no case {args.case!r} in bench_conv_kernel.CASES")
    x, w, b, attrs, out_shape, model = conv_case(*cfg, batch=args.batch)
    runs, outputs = {}, {}
    for spec in args.variants:
        name, constants, _ = parse(spec)
        runs[name], outputs[name], _ = omrt_conv(x, w, b, attrs, out_shape, winograd=args.winograd,
                                                 constants=constants)
    sess = ort_session(model.SerializeToString())
    runs["onnxruntime"] = lambda: sess.run(None, {"x": x})
    ref = sess.run(None, {"x": x})[0]
    flush = np.zeros(FLUSH_BYTES // 4, np.float32) if args.cold else None
    times = alternate(runs, args.repeats, before=None if flush is None else lambda: np.add(flush, 1.0, out=flush))
    base = float(np.median(times["onnxruntime"]))
    for name, samples in times.items():
        err = f"  max|diff| {np.abs(outputs[name] - ref).max():.1e}" if name in outputs else ""
        print(f"{args.case} {name:>12} {np.median(samples):8.3f} ms   omrt/ort {np.median(samples) / base:.3f}{err}")


if __name__ == "__main__":
    main()
