"""`omrt run`: execute a `.om` the way msame does (zero inputs or .bin/.npy files, timed loops)."""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

from omrt.cli.atc import UsageError, _Parser
from omrt.errors import OmrtError


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="omrt run", description="Run an offline model (.om) on this machine.")
    p.add_argument("--model", required=True)
    p.add_argument("--input", default="", help="comma-separated .bin/.npy files, one per model input")
    p.add_argument("--output", default="", help="folder for the outputs")
    p.add_argument("--outfmt", default="BIN", help="BIN, NPY or TXT")
    p.add_argument("--loop", type=int, default=1, help="1..100 executions")
    p.add_argument("--dymBatch", type=int, default=0, help="batch size of a dynamic-batch model")
    p.add_argument("--device", type=int, default=0)
    return p


def _load_input(path: str, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
    try:
        arr = np.load(path) if path.endswith(".npy") else np.fromfile(path, dtype=dtype)
    except (OSError, ValueError) as e:
        raise UsageError(f"cannot read input {path!r}: {e}") from None
    if arr.size != int(np.prod(shape)):
        raise UsageError(f"input {path!r} holds {arr.size} elements, the model expects {int(np.prod(shape))} {shape}")
    return arr.astype(dtype, copy=False).reshape(shape)


def _write_output(arr: np.ndarray, path: str, fmt: str) -> None:
    tmp = path + ".tmp"
    if fmt == "NPY":
        with open(tmp, "wb") as f:
            np.save(f, arr)
    elif fmt == "TXT":
        rows = arr.reshape(-1, arr.shape[-1]) if arr.ndim else arr.reshape(1, 1)
        np.savetxt(tmp, rows, fmt="%f" if arr.dtype.kind == "f" else "%d")
    else:
        arr.tofile(tmp)
    os.replace(tmp, path)


def main(argv: list[str]) -> int:
    from omrt.session import InferenceSession

    try:
        args = build_parser().parse_args(argv)
        if not 1 <= args.loop <= 100:
            raise UsageError("loop must in 1 to 100")
        fmt = args.outfmt.upper()
        if fmt not in ("BIN", "NPY", "TXT"):
            raise UsageError(f"--outfmt {args.outfmt!r} is not BIN, NPY or TXT")
        if not args.model.endswith(".om"):
            raise UsageError("input model file type is not .om")
        session = InferenceSession(args.model, device_id=args.device)
        gears = session.model.gears
        if gears and args.dymBatch not in gears:
            raise UsageError(f"the dymBatch parameter is not correct; model has dynamic batch size {gears}")
        if not gears and args.dymBatch:
            raise UsageError("the dynamic_batch_size parameter is not specified for model conversion")
        files = [f for f in args.input.split(",") if f]
        metas = session.get_inputs()
        if files and len(files) != len(metas):
            raise UsageError(f"the model has {len(metas)} inputs, {len(files)} input files were given")
        feeds = {}
        for i, meta in enumerate(metas):
            shape = tuple(args.dymBatch if d == -1 else d for d in meta.shape)
            feeds[meta.name] = _load_input(files[i], meta.type, shape) if files else np.zeros(shape, meta.type)
        times = []
        for _ in range(args.loop):
            start = time.perf_counter()
            outputs = session.run(None, feeds)
            times.append((time.perf_counter() - start) * 1e3)
            print(f"Inference time: {times[-1]:.3f}ms")
        print(f"Inference average time: {np.mean(times):f} ms")
        if len(times) > 1:
            print(f"Inference average time without first time: {np.mean(times[1:]):f} ms")
        if args.output:
            os.makedirs(args.output, exist_ok=True)
            stem = os.path.splitext(os.path.basename(args.model))[0]
            for i, arr in enumerate(outputs):
                _write_output(arr, os.path.join(args.output, f"{stem}_output_{i}.{fmt.lower()}"), fmt)
            print(args.output)
        return 0
    except (UsageError, OmrtError) as e:
        print(f"[ERROR] {e}", file=sys.stderr)
        return 1
    except Exception as e:  # one line and a non-zero exit, whatever went wrong
        print(f"[ERROR] internal error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
