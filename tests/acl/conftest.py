"""Models for the acl tests, built with onnx.helper (plus squeezenet from the onnx package with
seeded random weights), compiled once per session to .om files; and an initialised acl session."""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import acl
from omrt.compiler import CompileOptions, compile_onnx
from omrt.om import save_om
from tests.support.light_models import data_inputs, randomized

ACL_MEM_MALLOC_NORMAL_ONLY = 2
ACL_MEMCPY_HOST_TO_DEVICE = 1
ACL_MEMCPY_DEVICE_TO_HOST = 2


@dataclass(frozen=True)
class Compiled:
    """An ONNX model (the onnxruntime oracle's input) and its .om file."""

    onnx_bytes: bytes
    om_path: str
    input_names: tuple[str, ...]

    def reference(self, *inputs: np.ndarray) -> list[np.ndarray]:
        import onnxruntime as ort

        sess = ort.InferenceSession(self.onnx_bytes, providers=["CPUExecutionProvider"])
        return sess.run(None, dict(zip(self.input_names, inputs)))

    def om_bytes(self) -> bytes:
        with open(self.om_path, "rb") as f:
            return f.read()


def _init(name: str, arr: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(np.ascontiguousarray(arr), name)


def small_cnn(batch: int | str = 1, seed: int = 0, classes: int = 10) -> onnx.ModelProto:
    """Conv-Relu-MaxPool-Conv-Relu-GlobalAveragePool-Flatten-Gemm: has weights and work memory."""
    rng = np.random.default_rng(seed)
    w1 = rng.standard_normal((8, 3, 3, 3)).astype(np.float32) * 0.3
    b1 = rng.standard_normal(8).astype(np.float32) * 0.1
    w2 = rng.standard_normal((16, 8, 3, 3)).astype(np.float32) * 0.2
    b2 = rng.standard_normal(16).astype(np.float32) * 0.1
    wf = rng.standard_normal((classes, 16)).astype(np.float32) * 0.3
    bf = rng.standard_normal(classes).astype(np.float32) * 0.1
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"]),
        helper.make_node("GlobalAveragePool", ["r2"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("Gemm", ["f", "wf", "bf"], ["y"], transB=1),
    ]
    graph = helper.make_graph(
        nodes, "small_cnn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, classes])],
        [_init("w1", w1), _init("b1", b1), _init("w2", w2), _init("b2", b2), _init("wf", wf), _init("bf", bf)],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)


def tiny_mlp(seed: int = 1) -> onnx.ModelProto:
    """y = relu(x @ w + b): the smallest model with weights, for load/unload loops."""
    rng = np.random.default_rng(seed)
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["m"]),
        helper.make_node("Add", ["m", "b"], ["a"]),
        helper.make_node("Relu", ["a"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes, "tiny_mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])],
        [_init("w", rng.standard_normal((8, 4)).astype(np.float32)),
         _init("b", rng.standard_normal(4).astype(np.float32))],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)


def compile_to(tmp: str, name: str, model: onnx.ModelProto, options: CompileOptions | None = None) -> Compiled:
    path = os.path.join(tmp, f"{name}.om")
    save_om(compile_onnx(model, options or CompileOptions()), path)
    return Compiled(model.SerializeToString(), path, tuple(i.name for i in data_inputs(model)))


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("om"))


@pytest.fixture(scope="session")
def cnn(model_dir: str) -> Compiled:
    return compile_to(model_dir, "small_cnn", small_cnn())


@pytest.fixture(scope="session")
def cnn_b(model_dir: str) -> Compiled:
    """A second, different model (other weights, other output width)."""
    return compile_to(model_dir, "small_cnn_b", small_cnn(seed=7, classes=6))


@pytest.fixture(scope="session")
def cnn4(model_dir: str) -> Compiled:
    """Batch 4: the compiler puts it in two lanes of two images."""
    return compile_to(model_dir, "small_cnn_b4", small_cnn(batch=4))


@pytest.fixture(scope="session")
def tiny(model_dir: str) -> Compiled:
    return compile_to(model_dir, "tiny_mlp", tiny_mlp())


@pytest.fixture(scope="session")
def dyn(model_dir: str) -> Compiled:
    options = CompileOptions(input_shape={"x": [-1, 3, 16, 16]}, dynamic_batch_size=[1, 2, 4])
    return compile_to(model_dir, "small_cnn_dyn", small_cnn(batch="batch"), options)


@pytest.fixture(scope="session")
def squeezenet(model_dir: str) -> Compiled:
    return compile_to(model_dir, "squeezenet_random", randomized("squeezenet", seed=0))


@pytest.fixture
def acl_ctx():
    """acl.init + set_device(0) + create_context; torn down in reverse order."""
    assert acl.init() == 0
    assert acl.rt.set_device(0) == 0
    ctx, ret = acl.rt.create_context(0)
    assert ret == 0
    yield ctx
    acl.rt.destroy_context(ctx)
    acl.rt.reset_device(0)
    acl.finalize()


class Device:
    """Device memory, data buffers and datasets a test makes, released at teardown."""

    def __init__(self) -> None:
        self.ptrs: list[int] = []
        self.buffers: list[int] = []
        self.datasets: list[int] = []

    def malloc(self, size: int) -> int:
        ptr, ret = acl.rt.malloc(size, ACL_MEM_MALLOC_NORMAL_ONLY)
        assert ret == 0, ret
        self.ptrs.append(ptr)
        return ptr

    def put(self, arr: np.ndarray) -> tuple[int, int]:
        """A device copy of `arr`: (ptr, nbytes)."""
        arr = np.ascontiguousarray(arr)
        ptr = self.malloc(arr.nbytes)
        assert acl.rt.memcpy(ptr, arr.nbytes, arr.ctypes.data, arr.nbytes, ACL_MEMCPY_HOST_TO_DEVICE) == 0
        return ptr, arr.nbytes

    def get(self, ptr: int, shape: tuple[int, ...], dtype=np.float32) -> np.ndarray:
        out = np.empty(shape, dtype)
        assert acl.rt.memcpy(out.ctypes.data, out.nbytes, ptr, out.nbytes, ACL_MEMCPY_DEVICE_TO_HOST) == 0
        return out

    def dataset(self, pairs: list[tuple[int, int]]) -> int:
        ds = acl.mdl.create_dataset()
        self.datasets.append(ds)
        for ptr, size in pairs:
            buf = acl.create_data_buffer(ptr, size)
            self.buffers.append(buf)
            _, ret = acl.mdl.add_dataset_buffer(ds, buf)
            assert ret == 0
        return ds

    def outputs(self, desc: int) -> tuple[int, list[int]]:
        """An output dataset with one device buffer per model output, sized from the desc."""
        ptrs = [self.malloc(acl.mdl.get_output_size_by_index(desc, i))
                for i in range(acl.mdl.get_num_outputs(desc))]
        return self.dataset([(p, acl.mdl.get_output_size_by_index(desc, i)) for i, p in enumerate(ptrs)]), ptrs

    def infer(self, model_id: int, *arrays: np.ndarray) -> list[np.ndarray]:
        """Execute with device copies of `arrays`; the outputs read back as arrays."""
        desc = acl.mdl.create_desc()
        try:
            assert acl.mdl.get_desc(desc, model_id) == 0
            in_ds = self.dataset([self.put(a) for a in arrays])
            out_ds, ptrs = self.outputs(desc)
            ret = acl.mdl.execute(model_id, in_ds, out_ds)
            assert ret == 0, (ret, acl.get_recent_err_msg())
            return [self.get(p, tuple(acl.mdl.get_output_dims(desc, i)[0]["dims"])) for i, p in enumerate(ptrs)]
        finally:
            acl.mdl.destroy_desc(desc)

    def release(self) -> None:
        for ds in self.datasets:
            acl.mdl.destroy_dataset(ds)
        for buf in self.buffers:
            acl.destroy_data_buffer(buf)
        for ptr in self.ptrs:
            acl.rt.free(ptr)


@pytest.fixture
def dev(acl_ctx):
    device = Device()
    yield device
    device.release()
