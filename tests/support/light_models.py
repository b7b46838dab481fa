"""The nine light models shipped inside the onnx package, their reference data, and random-weight
variants (their own weights are all equal, which hides layout and indexing bugs)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

LIGHT_DIR = Path(os.path.dirname(onnx.__file__)) / "backend" / "test" / "data" / "light"
LIGHT_MODELS = [
    "bvlc_alexnet", "densenet121", "inception_v1", "inception_v2", "resnet50",
    "shufflenet", "squeezenet", "vgg19", "zfnet512",
]


def model_path(name: str) -> Path:
    return LIGHT_DIR / f"light_{name}.onnx"


def load(name: str) -> onnx.ModelProto:
    return onnx.load(str(model_path(name)))


def data_inputs(model: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    inits = {i.name for i in model.graph.initializer}
    return [i for i in model.graph.input if i.name not in inits]


def reference_input(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    """The input the ONNX backend test runner feeds light models: arange(n) / n."""
    feeds = {}
    for x in data_inputs(model):
        shape = tuple(d.dim_value if d.HasField("dim_value") else 1 for d in x.type.tensor_type.shape.dim)
        n = int(np.prod(shape))
        feeds[x.name] = (np.arange(n).reshape(shape) / n).astype(np.float32)
    return feeds


def reference_output(name: str) -> np.ndarray:
    tensor = onnx.TensorProto()
    tensor.ParseFromString((LIGHT_DIR / f"light_{name}_output_0.pb").read_bytes())
    return numpy_helper.to_array(tensor)


def _const_values(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    values = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    return values


def randomized(name: str, seed: int = 0, batch: int = 1, expose_logits: bool = True) -> onnx.ModelProto:
    """The light model with every weight replaced by a seeded random tensor of the same shape.

    Weights are scaled by 1/sqrt(fan_in) so activations stay in range; BatchNormalization
    variances are positive. The Softmax input is added as a second output ("logits"), and the
    batch dimension of the data input (and of constant Reshape targets) is set to `batch`.
    """
    model = load(name)
    rng = np.random.default_rng(seed)
    graph = model.graph
    values = _const_values(model)
    bn_var = {n.input[4] for n in graph.node if n.op_type == "BatchNormalization"}
    bn_scale = {n.input[1] for n in graph.node if n.op_type == "BatchNormalization"}

    new_inits: dict[str, np.ndarray] = {}
    keep_nodes = []
    for node in graph.node:
        if node.op_type == "ConstantOfShape" and node.input[0] in values:
            shape = tuple(int(d) for d in values[node.input[0]])
            new_inits[node.output[0]] = np.zeros(shape, np.float32)
        else:
            keep_nodes.append(node)
    data_names = {x.name for x in data_inputs(model)}
    reshape_shapes = {n.input[1] for n in graph.node if n.op_type == "Reshape"}
    for init in graph.initializer:
        if init.name in reshape_shapes and batch != 1:
            shape = numpy_helper.to_array(init).copy()
            if shape.size and shape[0] == 1:  # the batch dimension, written as a constant 1
                shape[0] = batch
                init.CopyFrom(numpy_helper.from_array(shape, init.name))
    for init in graph.initializer:
        arr = numpy_helper.to_array(init)
        if arr.dtype == np.float32 and init.name not in data_names:
            new_inits[init.name] = arr
    for key, arr in new_inits.items():
        if arr.dtype != np.float32:
            continue
        if key in bn_var:
            new_inits[key] = rng.uniform(0.5, 1.5, arr.shape).astype(np.float32)
        elif key in bn_scale:
            new_inits[key] = rng.uniform(0.5, 1.5, arr.shape).astype(np.float32)
        else:
            fan_in = int(np.prod(arr.shape[1:])) if arr.ndim > 1 else max(arr.size, 1)
            new_inits[key] = (rng.standard_normal(arr.shape) / np.sqrt(fan_in)).astype(np.float32)

    del graph.node[:]
    graph.node.extend(keep_nodes)
    used = {name for n in keep_nodes for name in n.input}
    kept_inits = [i for i in graph.initializer if i.name not in new_inits and i.name in used]
    kept_inputs = [i for i in graph.input if i.name in used or i.name in data_names]
    del graph.input[:]
    graph.input.extend(kept_inputs)
    del graph.initializer[:]
    graph.initializer.extend(kept_inits)
    graph.initializer.extend(numpy_helper.from_array(v, k) for k, v in new_inits.items())
    for x in graph.input:
        if x.name in data_names and x.type.tensor_type.shape.dim:
            x.type.tensor_type.shape.dim[0].dim_value = batch
    # IR 3 needs every initializer listed as a graph input.
    listed = {i.name for i in graph.input}
    for k, v in new_inits.items():
        if k not in listed:
            graph.input.append(helper.make_tensor_value_info(k, onnx.TensorProto.FLOAT, v.shape))
    for out in graph.output:
        if out.type.tensor_type.shape.dim:
            out.type.tensor_type.shape.dim[0].dim_value = batch
    if expose_logits:
        softmax = [n for n in graph.node if n.op_type == "Softmax"]
        if softmax:
            inferred = onnx.shape_inference.infer_shapes(model)
            logits = softmax[-1].input[0]
            info = [v for v in inferred.graph.value_info if v.name == logits]
            graph.output.append(info[0])
    return model


def random_input(model: onnx.ModelProto, seed: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    feeds = {}
    for x in data_inputs(model):
        shape = tuple(d.dim_value for d in x.type.tensor_type.shape.dim)
        feeds[x.name] = rng.standard_normal(shape).astype(np.float32)
    return feeds
