"""Per-op dispatch overhead: a chain of 1,000 tiny Relu ops, compiled and executed by omrt.

    python benchmarks/bench_dispatch.py
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper

from common import alternate, ort_session

from omrt.compiler import compile_onnx
from omrt.om import write_om
from omrt.session import InferenceSession

CHAIN = 1000


def relu_chain(n: int) -> onnx.ModelProto:
    nodes = [helper.make_node("Relu", [f"t{i}"], [f"t{i + 1}"], name=f"relu{i}") for i in range(n)]
    graph = helper.make_graph(
        nodes, "relu_chain",
        [helper.make_tensor_value_info("t0", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info(f"t{n}", TensorProto.FLOAT, [1, 4])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def main() -> None:
    model = relu_chain(CHAIN)
    om = compile_onnx(model)
    session = InferenceSession(write_om(om))
    executor = session._executor
    graph = executor.graphs[0]
    x = np.random.default_rng(0).standard_normal((1, 4)).astype(np.float32)
    out = np.empty((1, 4), np.float32)
    ins, outs = [x.reshape(-1).view(np.uint8)], [out.reshape(-1).view(np.uint8)]
    ort = ort_session(model.SerializeToString())
    times = alternate({
        "omrt": lambda: executor.execute(ins, outs),
        "ort": lambda: ort.run(None, {"t0": x}),
    }, repeats=50)
    steps = len(graph.steps)
    o, r = np.median(times["omrt"]), np.median(times["ort"])
    print(f"{CHAIN} Relu ops -> {steps} executed steps")
    print(f"omrt: {o:.3f} ms per run = {o * 1e3 / CHAIN:.2f} us per op")
    print(f"onnxruntime: {r:.3f} ms per run = {r * 1e3 / CHAIN:.2f} us per op (ratio {o / r:.3f})")


if __name__ == "__main__":
    main()
