"""Hand-built OfflineModels for the container tests, and field-by-field equality."""
from __future__ import annotations

import numpy as np

from omrt.om import GraphPlan, Location, OfflineModel, OpPlan, Region, TensorDesc, TensorRef
from omrt.om.dynamic import SHAPE_DATA_DESC

F32 = np.dtype(np.float32)
ATTRS = {"atc_cmdline": "omrt atc --model m.onnx", "atc_version": "omrt-0.1", "soc_version": "Ascend310",
         "framework_type": "Onnx"}


def ref(name, shape, region, offset=0, index=0, dtype=F32, layout="ND"):
    return TensorRef(TensorDesc(name, np.dtype(dtype), tuple(shape), layout), Location(region, offset, index))


def static_plan(batch: int = 1, name: str = "main", with_batch: bool = False) -> GraphPlan:
    """x[b,4] -> MatMul(W[4,3]) -> Add(B[3]) -> Relu -> Reshape (alias) -> y[b,3]."""
    x = ref("x", (batch, 4), Region.INPUT)
    w = ref("W", (4, 3), Region.WEIGHT, 512)
    b = ref("B", (3,), Region.WEIGHT, 1024)
    mm = ref("mm", (batch, 3), Region.WORK, 0)
    add = ref("add", (batch, 3), Region.WORK, 64 * batch)
    relu = ref("relu", (batch, 3), Region.OUTPUT)
    y = ref("y", (batch, 3), Region.OUTPUT)
    ops = [
        OpPlan("mm0", "MatMul", {}, [x, w], [mm], workspace=[(128 * batch, 32)]),
        OpPlan("add0", "Add", {"_fused": "none", "axis": -1, "alpha": 0.5, "flag": True,
                               "ints": [1, 2, 3], "floats": [0.25, 1.5], "strs": ["a", "é"],
                               "bools": [True, False], "raw": b"\x00\xff", "empty": [],
                               "t": np.arange(6, dtype=np.int64).reshape(2, 3), "nested": [[1, 2], [3]]},
               [mm, b], [add]),
        OpPlan("relu0", "Relu", {}, [add], [relu]),
        OpPlan("reshape0", "Reshape", {"allowzero": 0}, [relu, None], [y], alias=True),
    ]
    return GraphPlan(name, [x], [y], [w, b], ops, 128 * batch + 32, batch if with_batch else None)


def weights() -> bytes:
    blob = bytearray(1536)
    blob[512:560] = np.arange(12, dtype=np.float32).tobytes()
    blob[1024:1036] = np.ones(3, dtype=np.float32).tobytes()
    return bytes(blob)


def static_model(**kw) -> OfflineModel:
    plan = static_plan()
    args = dict(name="tiny_mlp", inputs=[r.desc for r in plan.inputs], outputs=[r.desc for r in plan.outputs],
                graphs=[plan], weights=weights(), attrs=dict(ATTRS), platform_version="omrt-cpu")
    args.update(kw)
    return OfflineModel(**args)


def laned_model(lanes: int = 2, lane_batch: int = 2) -> OfflineModel:
    """static_plan's graph as `lanes` lanes of `lane_batch` rows each."""
    plan = static_plan(lane_batch)
    plan.lanes = lanes
    plan.memory_size *= lanes
    return static_model(inputs=plan.input_descs, outputs=plan.output_descs, graphs=[plan])


def dynamic_model(gears=(1, 2, 4)) -> OfflineModel:
    plans = [static_plan(g, name=f"main_b{g}", with_batch=True) for g in gears]
    top = plans[-1]
    return OfflineModel("dyn_mlp", [*(r.desc for r in top.inputs), SHAPE_DATA_DESC],
                        [r.desc for r in top.outputs], plans, weights(), list(gears), dict(ATTRS), "omrt-cpu")


def values_equal(a, b) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.dtype == b.dtype
                and a.shape == b.shape and np.array_equal(a, b))
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(values_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(values_equal(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def assert_models_equal(got: OfflineModel, want: OfflineModel) -> None:
    """Field by field, with numpy attrs compared by dtype, shape and value, and bool kept apart from int."""
    for f in ("name", "inputs", "outputs", "weights", "gears", "platform_version"):
        assert getattr(got, f) == getattr(want, f), f
    assert values_equal(got.attrs, want.attrs)
    assert len(got.graphs) == len(want.graphs)
    for g, w in zip(got.graphs, want.graphs):
        for f in ("name", "inputs", "outputs", "constants", "memory_size", "batch", "lanes"):
            assert getattr(g, f) == getattr(w, f), f"{w.name}.{f}"
        assert len(g.ops) == len(w.ops)
        for og, ow in zip(g.ops, w.ops):
            for f in ("name", "op_type", "inputs", "outputs", "workspace", "alias"):
                assert getattr(og, f) == getattr(ow, f), f"{ow.name}.{f}"
            assert values_equal(og.attrs, ow.attrs), f"{ow.name}.attrs: {og.attrs} != {ow.attrs}"


def split_om(data: bytes):
    """(ModelDef, ModelTaskDef, weights) of a file omrt wrote."""
    from omrt.om.container import model_def, open_container, task_def
    c = open_container(data)
    return model_def(c)[0], task_def(c), c.bytes_of(1)


def pack_om(parts: list[tuple[int, bytes]], name: str = "m") -> bytes:
    """A well-formed container (new header, wide table) around arbitrary partitions."""
    from omrt.om.header import pack_header
    from omrt.om.partition import pack_table
    table = pack_table([(t, len(b)) for t, b in parts])
    body = table + b"".join(b for _, b in parts)
    return pack_header(name, "", len(body)) + body


def rebuild(md, td, weights: bytes) -> bytes:
    return pack_om([(0, md.SerializeToString()), (1, weights), (2, td.SerializeToString())])
