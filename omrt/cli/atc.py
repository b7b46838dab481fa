"""`omrt atc`: ATC's command line, by ATC's option names, for ONNX models.

Modes: 0 converts a model to `<output>.om`; 1 writes the JSON view of a `.om`; 6 prints its
model-info block. Every failure is one readable line on stderr and a non-zero exit; a failed
conversion leaves no `.om` behind.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import sys

from omrt.errors import OmrtError

_MODES = {"0", "1", "6"}
_LOG_LEVELS = {"debug", "info", "warning", "error", "null"}
_FRAMEWORKS = {"0": "Caffe", "1": "MindSpore", "3": "TensorFlow", "5": "ONNX"}


class UsageError(Exception):
    """A bad command line: reported like any other failure, as one line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse would print usage and exit(2)
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="omrt atc", description="Convert an ONNX model to an offline model (.om).")
    p.add_argument("--mode", default="0", help="0: model to .om; 1: .om to JSON; 6: display .om info")
    p.add_argument("--model", help="source model (ONNX)")
    p.add_argument("--weight", help="accepted for ATC compatibility; ignored for ONNX")
    p.add_argument("--framework", help="5 = ONNX (0 Caffe, 1 MindSpore, 3 TensorFlow are not supported)")
    p.add_argument("--output", help="output path without suffix; .om is appended")
    p.add_argument("--input_shape", default="", help='"name:n,c,h,w;name2:..."; -1 marks the dynamic batch dim')
    p.add_argument("--input_format", default="NCHW", help="NCHW, ND or NCDHW")
    p.add_argument("--soc_version", default="Ascend310")
    p.add_argument("--dynamic_batch_size", default="", help='gears, e.g. "1,2,4,8"')
    p.add_argument("--out_nodes", default="", help='"node:0;node:1"')
    p.add_argument("--precision_mode", default="force_fp32")
    p.add_argument("--om", help=".om file for --mode 1 and 6")
    p.add_argument("--json", help="JSON file to write for --mode 1")
    p.add_argument("--log", default="null", help="debug, info, warning, error or null")
    p.add_argument("--batch_lanes", type=int, default=None,
                   help="omrt only: run the batch as this many lanes (1: none); default chosen from the batch")
    return p


def parse_input_shape(text: str) -> dict[str, list[int]]:
    shapes: dict[str, list[int]] = {}
    for item in filter(None, (s.strip() for s in text.split(";"))):
        name, sep, dims = item.rpartition(":")
        if not sep or not name:
            raise UsageError(f"--input_shape entry {item!r} is not name:d1,d2,...")
        try:
            shapes[name] = [int(d) for d in dims.split(",")] if dims.strip() else []
        except ValueError:
            raise UsageError(f"--input_shape entry {item!r} has a non-integer dimension") from None
        if any(d < -1 for d in shapes[name]):
            raise UsageError(f"--input_shape entry {item!r} has an invalid dimension")
    return shapes


def parse_gears(text: str) -> list[int]:
    text = text.strip().rstrip(",")
    if not text:
        return []
    if not all(c.isdigit() or c == "," for c in text):
        raise UsageError(f"--dynamic_batch_size {text!r} may hold only digits and commas")
    try:
        return [int(g) for g in text.split(",")]
    except ValueError:
        raise UsageError(f"--dynamic_batch_size {text!r} is not a list of integers") from None


def parse_out_nodes(text: str) -> list[tuple[str, int]]:
    nodes = []
    for item in filter(None, (s.strip() for s in text.split(";"))):
        name, sep, idx = item.rpartition(":")
        if not sep or not idx.isdigit():
            raise UsageError(f"--out_nodes entry {item!r} is not node:index")
        nodes.append((name, int(idx)))
    return nodes


def _read_om_file(path: str | None, mode: str) -> bytes:
    if not path:
        raise UsageError(f"--om is required for --mode {mode}")
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise UsageError(f"cannot read --om {path!r}: {e.strerror}") from None


def _convert(args: argparse.Namespace, argv: list[str]) -> None:
    from omrt.compiler import compile_onnx
    from omrt.compiler.options import CompileOptions
    from omrt.om import save_om

    if args.framework is None:
        raise UsageError("--framework is required (5 = ONNX)")
    if args.framework != "5":
        name = _FRAMEWORKS.get(args.framework)
        if name is None:
            raise UsageError(f"--framework {args.framework!r} is invalid; only 5 (ONNX) is supported")
        raise UsageError(f"--framework {args.framework} ({name}) is not supported; only 5 (ONNX) is")
    if not args.model:
        raise UsageError("--model is required for --mode 0")
    if not args.output:
        raise UsageError("--output is required for --mode 0")
    if os.path.basename(args.output) in ("", ".", ".."):
        raise UsageError("--output must include a file name")
    if args.input_format not in ("NCHW", "ND", "NCDHW"):
        raise UsageError(f"--input_format {args.input_format!r} is not supported for ONNX (NCHW, ND, NCDHW)")
    if not os.path.isfile(args.model):
        raise UsageError(f"--model {args.model!r} does not exist")
    options = CompileOptions(
        input_shape=parse_input_shape(args.input_shape),
        dynamic_batch_size=parse_gears(args.dynamic_batch_size),
        out_nodes=parse_out_nodes(args.out_nodes),
        input_format=args.input_format,
        soc_version=args.soc_version,
        precision_mode=args.precision_mode,
        atc_cmdline="atc " + " ".join(shlex.quote(a) for a in argv),
        model_name=os.path.basename(args.output),
        progress=args.log in ("debug", "info") or sys.stderr.isatty(),
        lanes=args.batch_lanes,
    )
    model = compile_onnx(args.model, options)
    save_om(model, args.output + ".om")


def _write_json(args: argparse.Namespace) -> None:
    from omrt.om import om_to_json

    data = _read_om_file(args.om, "1")
    if not args.json:
        raise UsageError("--json is required for --mode 1")
    view = om_to_json(data)
    tmp = args.json + ".tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(view, f, indent=2)
        os.replace(tmp, args.json)
    except OSError as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise UsageError(f"cannot write --json {args.json!r}: {e.strerror}") from None


def main(argv: list[str]) -> int:
    try:
        args = build_parser().parse_args(argv)
        if args.log not in _LOG_LEVELS:
            raise UsageError(f"E10010: invalid value for --log: {args.log}")
        if args.mode not in _MODES:
            raise UsageError(
                f"--mode {args.mode!r} is invalid: only support 0(model to framework model), "
                "1(framework model to json), 6(display model info)"
            )
        if args.mode == "0":
            print("ATC start working now, please wait for a moment.", flush=True)
            _convert(args, argv)
            print("ATC run success, welcome to the next use.")
        elif args.mode == "1":
            _write_json(args)
            print("ATC run success, welcome to the next use.")
        else:
            from omrt.om import model_info_text

            print(model_info_text(_read_om_file(args.om, "6")))
        return 0
    except (UsageError, OmrtError) as e:
        print(f"ATC run failed: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("ATC run failed: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # a bug must still end as one line and a non-zero exit
        print(f"ATC run failed: internal error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
