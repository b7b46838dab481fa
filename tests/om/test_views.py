"""atc --mode 1 (JSON) and --mode 6 (model info) views."""
from __future__ import annotations

import json

from tests.om.om_testkit import pack_om, split_om, static_model
from omrt.om import model_info_text, om_to_json, write_om


def _walk_keys(obj):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield k
            yield from _walk_keys(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _walk_keys(v)


def test_json_follows_pb2json_rules():
    data = write_om(static_model())
    j = om_to_json(data)
    json.dumps(j, indent=2)
    keys = set(_walk_keys(j))
    for black in ("output", "data_offset", "data", "workspace", "workspace_bytes", "memory_size", "weight_size",
                  "size", "bt"):
        assert black not in keys
    assert j["name"] == "tiny_mlp" and j["custom_version"] == "omrt-cpu"
    attr_keys = [e["key"] for e in j["attr"]]
    assert "memory_size" in attr_keys and attr_keys == sorted(attr_keys)
    g = j["graph"][0]
    assert "output" not in g and g["input"] == ["x:0"]
    add = next(op for op in g["op"] if op["name"] == "add0")
    attrs = {e["key"]: e["value"] for e in add["attr"]}
    assert attrs["alpha"] == {"f": "0.5"} and attrs["axis"] == {"i": -1} and attrs["flag"] == {"b": True}
    assert attrs["floats"]["list"] == {"f": ["0.25", "1.5"], "val_type": "VT_LIST_FLOAT"}
    assert attrs["_fused"] == {"s": "none"} and "raw" in attrs and attrs["raw"] is None
    assert add["input_desc"][0]["dtype"] == "DT_FLOAT" and add["input_desc"][0]["shape"] == {"dim": [1, 3]}
    reshape = next(op for op in g["op"] if op["name"] == "reshape0")
    assert reshape["input_desc"][1] is None          # all-default descriptor of an absent input
    assert list(g["op"][0]) == sorted(g["op"][0])    # keys sorted like nlohmann::json


def test_model_info_block():
    m = static_model()
    data = write_om(m)
    md, td, w = split_om(data)
    text = model_info_text(data)
    assert text == (
        "============ Display Model Info start ============\n"
        "Original Atc command line: omrt atc --model m.onnx\n"
        "system   info: atc_version[omrt-0.1], soc_version[Ascend310], framework_type[Onnx].\n"
        f"resource info: memory_size[{m.memory_size} B], weight_size[{len(w)} B], stream_num[1], event_num[0].\n"
        f"om       info: modeldef_size[{md.ByteSize()} B], weight_data_size[{len(w)} B], tbe_kernels_size[0 B], "
        f"cust_aicpu_kernel_store_size[0 B], task_info_size[{td.ByteSize()} B], so_store_size[0 B].\n"
        "============ Display Model Info end   ============\n"
    )


def test_model_info_without_attrs():
    md, td, w = split_om(write_om(static_model()))
    md.ClearField("attr")
    text = model_info_text(pack_om([(0, md.SerializeToString()), (1, w), (2, td.SerializeToString())]))
    assert "memory_size[-1 B], weight_size[-1 B], stream_num[-1], event_num[-1]." in text
    assert 'Display Model Info failed, attr "om_info_list" is not found in om' in text
