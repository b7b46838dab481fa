"""ONNX -> OfflineModel: import, passes to a fixpoint, placement, weights; one plan per gear."""
from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager
from typing import Iterator

import numpy as np
import onnx

from omrt.compiler import onnx_import, shapes
from omrt.compiler.dynamic_batch import shapes_for_gear, validate_gears
from omrt.compiler.emit import emit
from omrt.compiler.ir import Graph
from omrt.compiler.lanes import (
    NotLaneSafe, check_lanes, choose_lanes, concat_share, data_batch, retarget_reshapes, split_inputs,
)
from omrt.compiler.lifetimes import place
from omrt.compiler.options import CompileOptions
from omrt.compiler.planner import DEFAULT_ALIGNMENT, align_up
from omrt.compiler.passes.dead import remove_dead
from omrt.compiler.passes.fold import fold_constants
from omrt.compiler.passes.fuse_bn import fuse_affine
from omrt.compiler.passes.fuse_epilogue import fuse_epilogues
from omrt.compiler.passes.identity import remove_identities
from omrt.compiler.passes.outputs import separate_outputs
from omrt.compiler.passes.prepack import prepack_weights
from omrt.compiler.passes.scale_into_conv import scale_into_convs
from omrt.compiler.passes.shuffle_into_conv import shuffle_into_convs
from omrt.compiler.report import CompileReport, GraphReport
from omrt.compiler.spec import op_spec
from omrt.compiler.weights import WeightBlob
from omrt.constants import ACL_DYNAMIC_TENSOR_NAME, ACL_ERROR_INVALID_PARAM
from omrt.errors import OmrtError
from omrt.kernels import overwritable_inputs, workspace_bytes
from omrt.om.model import GraphPlan, OfflineModel, TensorDesc

STAGES = ("import", "fold", "simplify", "fuse", "prepack", "place", "emit")


def _version() -> str:
    try:
        from importlib.metadata import version
        return version("omrt")
    except Exception:
        return getattr(sys.modules.get("omrt"), "__version__", "0")


class _Progress:
    """A tqdm bar over compile stages (on stderr), or nothing."""

    def __init__(self, enabled: bool, total: int) -> None:
        self.bar = None
        if enabled:
            from tqdm import tqdm
            self.bar = tqdm(total=total, file=sys.stderr, desc="omrt compile", unit="pass", leave=False)

    def redo(self, stages: int) -> None:
        """Stages to run again (a lane plan given up for the whole batch)."""
        if self.bar is not None:
            self.bar.total += stages
            self.bar.refresh()

    def step(self, label: str) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(label)
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@contextmanager
def _timed(timings: dict[str, float], key: str) -> Iterator[None]:
    t0 = time.perf_counter()
    try:
        yield
    finally:
        timings[key] = timings.get(key, 0.0) + time.perf_counter() - t0


def _fold_to_fixpoint(graph: Graph, opsets: list[onnx.OperatorSetIdProto]) -> int:
    """Fold, re-infer shapes where folding made shape inputs known, until nothing changes."""
    folded = 0
    shapes.infer(graph, opsets)
    while True:
        n = fold_constants(graph)
        folded += n
        if not n:
            break
        if not shapes.all_static(graph):
            shapes.infer(graph, opsets)
    _drop_unused_outputs(graph)
    shapes.require_static(graph)
    return folded


def select_outputs(graph: Graph, out_nodes: list[tuple[str, int]]) -> None:
    """--out_nodes: the model's outputs become the named nodes' outputs, in the order given."""
    by_name = {n.name: n for n in graph.nodes}
    outputs = []
    for name, index in out_nodes:
        node = by_name.get(name)
        if node is None:
            raise OmrtError(ACL_ERROR_INVALID_PARAM, f"--out_nodes: the model has no node named {name!r}")
        if not 0 <= index < len(node.outputs) or not node.outputs[index]:
            raise OmrtError(ACL_ERROR_INVALID_PARAM,
                            f"--out_nodes: node {name!r} has no output {index} (it has {len(node.outputs)})")
        outputs.append(node.outputs[index])
    graph.outputs = outputs
    graph.declared = {}


def _drop_unused_outputs(graph: Graph) -> None:
    """Optional outputs nobody reads and ONNX gives no shape (Dropout's mask, ...) are left off."""
    consumers = graph.consumers()
    for node in graph.nodes:
        for k in range(1, len(node.outputs)):
            name = node.outputs[k]
            info = graph.tensors.get(name)
            if name and (info is None or not info.static) and not graph.uses(name, consumers):
                node.outputs[k] = ""


def _compile_graph(proto: onnx.ModelProto, input_shape: dict[str, list[int]], blob: WeightBlob,
                   options: CompileOptions, batch: int | None, progress: _Progress,
                   lanes: int = 1) -> tuple[GraphPlan, GraphReport]:
    """One plan; with lanes > 1, the plan of one lane, or NotLaneSafe before anything is added to
    the weight blob."""
    timings: dict[str, float] = {}
    fusions: dict[str, int] = {}
    opsets = list(proto.opset_import)
    with _timed(timings, "import"):
        graph = onnx_import.to_ir(proto, input_shape)
        if options.out_nodes:
            select_outputs(graph, options.out_nodes)
        if lanes > 1:
            lane_batch = split_inputs(graph, lanes)
            retarget_reshapes(graph, lane_batch * lanes, lane_batch)
    progress.step("import")
    with _timed(timings, "fold"):
        folded = _fold_to_fixpoint(graph, opsets)
        if lanes > 1:
            check_lanes(graph, lane_batch)
    progress.step("fold")
    with _timed(timings, "simplify"):
        remove_identities(graph)
        remove_dead(graph)
    progress.step("simplify")
    with _timed(timings, "fuse"):
        graph.toposort()
        while fuse_affine(graph, fusions) + fuse_epilogues(graph, fusions):
            pass
        scale_into_convs(graph, fusions)
        shuffle_into_convs(graph, fusions)
        remove_dead(graph)
    progress.step("fuse")
    with _timed(timings, "prepack"):
        prepack_weights(graph)
    progress.step("prepack")
    with _timed(timings, "place"):
        output_names = separate_outputs(graph)
        graph.toposort()
        specs = [op_spec(graph, n) for n in graph.nodes]
        placement = place(graph, [workspace_bytes(spec) for spec in specs],
                          [overwritable_inputs(spec) for spec in specs])
    progress.step("place")
    with _timed(timings, "emit"):
        plan = emit(graph, placement, blob, output_names, options.input_format, batch)
        if lanes > 1:
            plan.lanes = lanes
            plan.memory_size = lanes * align_up(plan.memory_size, DEFAULT_ALIGNMENT)
    progress.step("emit")
    report = GraphReport(plan.name, batch, placement.size, placement.lower_bound, placement.naive,
                         len(proto.graph.node), len(plan.ops), folded, fusions,
                         len(placement.share.views), placement.share.inplace, timings, lanes)
    return plan, report


def _compile_plan(proto: onnx.ModelProto, input_shape: dict[str, list[int]], batch: int | None,
                  options: CompileOptions, blob: WeightBlob, progress: _Progress) -> tuple[GraphPlan, GraphReport]:
    """A static model's plan or one gear's: in batch lanes where the graph allows (omrt.compiler.lanes)."""
    batch_size = data_batch(proto, input_shape)
    share = concat_share(proto) if options.lanes is None and batch_size and batch_size > 1 else 0.0
    lanes = choose_lanes(batch_size, options.lanes, share)
    if lanes > 1:
        try:
            return _compile_graph(proto, input_shape, blob, options, batch, progress, lanes)
        except NotLaneSafe as exc:
            reason = str(exc)
        except OmrtError as exc:  # e.g. a constant shape the lane's batch does not fit
            reason = f"the graph does not fit the lane's batch: {exc}"
        progress.redo(len(STAGES))
    result = _compile_graph(proto, input_shape, blob, options, batch, progress)
    if lanes > 1 and options.lanes is not None:  # asked for, and the model itself is fine
        raise OmrtError(ACL_ERROR_INVALID_PARAM, f"lanes {options.lanes}: {reason}")
    return result


def compile_onnx_report(model: str | os.PathLike | bytes | onnx.ModelProto,
                        options: CompileOptions | None = None) -> tuple[OfflineModel, CompileReport]:
    """Compile and say what was done: per-plan memory figures, op counts, fusions, timings."""
    t0 = time.perf_counter()
    options = options or CompileOptions()
    gears = validate_gears(options)
    proto = onnx_import.load(model)
    onnx_import.check_supported(proto)
    blob = WeightBlob()
    shape_sets = [(shapes_for_gear(options.input_shape, g), g) for g in gears] or [(options.input_shape, None)]
    progress = _Progress(options.progress, len(STAGES) * len(shape_sets))
    plans, reports = [], []
    try:
        for input_shape, batch in shape_sets:
            plan, report = _compile_plan(proto, input_shape, batch, options, blob, progress)
            plans.append(plan)
            reports.append(report)
    finally:
        progress.close()
    name = options.model_name or proto.graph.name or "model"
    largest = plans[-1] if not gears else plans[int(np.argmax(gears))]
    inputs = largest.input_descs
    if gears:
        inputs.append(TensorDesc(ACL_DYNAMIC_TENSOR_NAME, np.dtype(np.int32), (1,), "ND"))
    attrs = {
        "atc_cmdline": options.atc_cmdline,
        "soc_version": options.soc_version,
        "atc_version": f"omrt-{_version()}",
        "framework_type": "Onnx",
        "precision_mode": options.precision_mode,
    }
    om = OfflineModel(name, inputs, largest.output_descs, plans, blob.tobytes(),
                      list(gears), attrs, options.soc_version)
    return om, CompileReport(name, reports, om.weight_size, time.perf_counter() - t0)


def compile_onnx(model: str | os.PathLike | bytes | onnx.ModelProto,
                 options: CompileOptions | None = None) -> OfflineModel:
    """Compile an ONNX model to an offline model (see compile_onnx_report for the figures)."""
    return compile_onnx_report(model, options)[0]


__all__ = ["compile_onnx", "compile_onnx_report"]
