"""`omrt atc`: ATC's options, the .om it writes, its views, and one-line failures."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import onnx
import pytest

from omrt.cli.main import main
from omrt.om import load_om, read_om
from tests.support.small_models import small_cnn


@pytest.fixture()
def onnx_file(tmp_path: Path) -> Path:
    path = tmp_path / "cnn.onnx"
    onnx.save(small_cnn(), str(path))
    return path


def _atc(*args: str) -> int:
    return main(["atc", *args])


def test_converts_and_appends_suffix(tmp_path: Path, onnx_file: Path, capsys) -> None:
    out = tmp_path / "net"
    assert _atc("--framework", "5", "--model", str(onnx_file), "--output", str(out), "--soc_version", "Ascend310P3") == 0
    assert "ATC run success" in capsys.readouterr().out
    model = load_om(str(out) + ".om")
    assert model.attrs["soc_version"] == "Ascend310P3"
    assert model.attrs["framework_type"] == "Onnx"
    assert "--framework 5" in model.attrs["atc_cmdline"]


def test_equals_form_of_options(tmp_path: Path, onnx_file: Path) -> None:
    out = tmp_path / "eq"
    assert _atc("--framework=5", f"--model={onnx_file}", f"--output={out}") == 0
    assert (tmp_path / "eq.om").exists()


def test_dynamic_batch(tmp_path: Path) -> None:
    path = tmp_path / "dyn.onnx"
    onnx.save(small_cnn(batch="N"), str(path))
    out = tmp_path / "dyn"
    assert _atc("--framework", "5", "--model", str(path), "--output", str(out),
                "--input_shape", "x:-1,3,16,16", "--dynamic_batch_size", "1,2,4") == 0
    model = load_om(str(out) + ".om")
    assert model.gears == [1, 2, 4]
    assert model.inputs[-1].name == "ascend_mbatch_shape_data"


def test_batch_lanes_option(tmp_path: Path) -> None:
    path = tmp_path / "b4.onnx"
    onnx.save(small_cnn(batch=4), str(path))
    for lanes, want in ((None, 2), ("1", 1), ("4", 4)):
        out = tmp_path / f"b4_{lanes}"
        extra = ["--batch_lanes", lanes] if lanes else []
        assert _atc("--framework", "5", "--model", str(path), "--output", str(out), *extra) == 0
        model = load_om(str(out) + ".om")
        assert model.graphs[0].lanes == want and model.inputs[0].shape == (4, 3, 16, 16)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--framework", "0"], "not supported"),
        (["--framework", "3"], "not supported"),
        (["--framework", "9"], "invalid"),
        (["--framework", "5", "--log", "loud"], "E10010"),
        (["--framework", "5", "--mode", "4"], "only support"),
        (["--framework", "5", "--input_shape", "x:1,a"], "non-integer"),
        (["--framework", "5", "--dynamic_batch_size", "1;2"], "digits and commas"),
        (["--framework", "5", "--input_shape", "nope:1,3,16,16"], "nope"),
        (["--framework", "5", "--batch_lanes", "2"], "lanes 2 must divide"),
    ],
)
def test_bad_options_fail_with_one_line(tmp_path: Path, onnx_file: Path, capsys, args, message) -> None:
    out = tmp_path / "bad"
    assert _atc("--model", str(onnx_file), "--output", str(out), *args) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not (tmp_path / "bad.om").exists()


def test_not_an_onnx_file_leaves_nothing(tmp_path: Path, capsys) -> None:
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"this is not a protobuf \x00\xff" * 10)
    assert _atc("--framework", "5", "--model", str(junk), "--output", str(tmp_path / "junk")) != 0
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == [junk]


def test_unsupported_ops_are_listed_together(tmp_path: Path, capsys) -> None:
    from onnx import TensorProto, helper

    nodes = [
        helper.make_node("Relu", ["x"], ["a"], name="r"),
        helper.make_node("Hardmax", ["a"], ["b"], name="h1"),
        helper.make_node("Einsum", ["b", "b"], ["c"], equation="ij,ij->ij", name="e1"),
    ]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 2])],
                              [helper.make_tensor_value_info("c", TensorProto.FLOAT, [2, 2])])
    path = tmp_path / "u.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    assert _atc("--framework", "5", "--model", str(path), "--output", str(tmp_path / "u")) != 0
    err = capsys.readouterr().err
    assert "Hardmax (node h1)" in err and "Einsum (node e1)" in err
    assert not (tmp_path / "u.om").exists()


def test_json_view_and_model_info(tmp_path: Path, onnx_file: Path, capsys) -> None:
    out = tmp_path / "net"
    assert _atc("--framework", "5", "--model", str(onnx_file), "--output", str(out)) == 0
    js = tmp_path / "net.json"
    assert _atc("--mode", "1", "--om", str(out) + ".om", "--json", str(js)) == 0
    view = json.loads(js.read_text())
    assert view["graph"][0]["op"][0]["type"] == "Data"
    capsys.readouterr()
    assert _atc("--mode", "6", "--om", str(out) + ".om") == 0
    info = capsys.readouterr().out
    model = read_om((tmp_path / "net.om").read_bytes())
    assert f"memory_size[{model.memory_size} B]" in info
    assert "Display Model Info start" in info


def test_console_script_runs(tmp_path: Path, onnx_file: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "omrt.cli.main", "atc", "--framework", "5", "--model", str(onnx_file),
         "--output", str(tmp_path / "cli")],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "cli.om").exists()


def test_out_nodes_pick_the_outputs(tmp_path: Path, onnx_file: Path) -> None:
    out = tmp_path / "cut"
    assert _atc("--framework", "5", "--model", str(onnx_file), "--output", str(out), "--out_nodes", "fc:0;relu1:0") == 0
    model = load_om(str(out) + ".om")
    assert [d.name for d in model.outputs] == ["logits", "r1"]
    assert all(op.op_type != "Softmax" for op in model.graphs[0].ops)


def test_out_nodes_unknown_node_is_an_error(tmp_path: Path, onnx_file: Path, capsys) -> None:
    assert _atc("--framework", "5", "--model", str(onnx_file), "--output", str(tmp_path / "x"), "--out_nodes", "nope:0") != 0
    assert "nope" in capsys.readouterr().err
