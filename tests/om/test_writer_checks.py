"""The writer refuses models it could not write faithfully; the runtime side never imports onnx."""
from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from tests.om.om_testkit import dynamic_model, laned_model, ref, static_model
from omrt.constants import ACL_ERROR_GE_EXEC_MODEL_ADDR_INVALID, ACL_ERROR_GE_PARAM_INVALID
from omrt.errors import OmrtError
from omrt.om import Region, write_om


def code_of(m) -> int:
    with pytest.raises(OmrtError) as info:
        write_om(m)
    return info.value.code


def test_work_tensor_outside_memory():
    m = static_model()
    m.graphs[0].memory_size = 10
    assert code_of(m) == ACL_ERROR_GE_EXEC_MODEL_ADDR_INVALID


def test_laned_plans_must_describe_their_model():
    m = laned_model()
    m.inputs = [r.desc for r in m.graphs[0].inputs]      # the lane's shape, not the model's
    assert code_of(m) == ACL_ERROR_GE_PARAM_INVALID
    m = laned_model()
    m.graphs[0].memory_size += 1                         # lanes of unequal work
    assert code_of(m) == ACL_ERROR_GE_PARAM_INVALID
    m = laned_model()
    m.graphs[0].memory_size = 2 * 100                    # the workspace at 256 lies in the second lane
    assert code_of(m) == ACL_ERROR_GE_EXEC_MODEL_ADDR_INVALID
    m = dynamic_model()
    m.graphs[1].lanes = 5                                # a gear's lanes must divide its work too
    assert code_of(m) == ACL_ERROR_GE_PARAM_INVALID


def test_const_outside_weights():
    m = static_model(weights=bytes(600))
    assert code_of(m) == ACL_ERROR_GE_EXEC_MODEL_ADDR_INVALID


def test_inconsistent_refs_and_names():
    m = static_model()
    add = m.graphs[0].ops[1]
    add.inputs[0] = ref("mm", (1, 3), Region.WORK, 8)
    assert code_of(m) == ACL_ERROR_GE_PARAM_INVALID
    m = static_model()
    m.graphs[0].ops[1].name = "mm0"
    assert code_of(m) == ACL_ERROR_GE_PARAM_INVALID
    m = static_model()
    m.graphs[0].ops[2].op_type = "NetOutput"
    assert code_of(m) == ACL_ERROR_GE_PARAM_INVALID


def test_model_level_checks():
    assert code_of(static_model(attrs={"memory_size": 1})) == ACL_ERROR_GE_PARAM_INVALID
    assert code_of(static_model(inputs=[])) == ACL_ERROR_GE_PARAM_INVALID
    m = dynamic_model()
    m.inputs = m.inputs[:-1]
    assert code_of(m) == ACL_ERROR_GE_PARAM_INVALID
    m = dynamic_model()
    m.gears = m.gears[:-1]
    assert code_of(m) == ACL_ERROR_GE_PARAM_INVALID


def test_unsupported_attr_values():
    for bad in ({1, 2}, [1, "a"], np.array(["x"]), 1 << 70, None):
        m = static_model()
        m.graphs[0].ops[0].attrs = {"bad": bad}
        assert code_of(m) in (ACL_ERROR_GE_PARAM_INVALID, 145022), bad


def test_names_do_not_collide_with_generated_ops():
    m = static_model()
    m.graphs[0].ops[2].name = "x"          # same name as the Data op would take
    m.graphs[0].ops[0].name = "NetOutput"
    from omrt.om import read_om
    assert [op.name for op in read_om(write_om(m)).graphs[0].ops] == ["NetOutput", "add0", "x", "reshape0"]


def test_om_package_does_not_import_onnx():
    root = Path(__file__).resolve().parents[2] / "omrt" / "om"
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            assert not any(n == "onnx" or n.startswith("onnx.") for n in names), path
