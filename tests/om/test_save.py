"""save_om/load_om: atomic writes that leave nothing behind on failure."""
from __future__ import annotations

import os

import pytest

from tests.om.om_testkit import assert_models_equal, static_model
from omrt.constants import ACL_ERROR_GE_PARAM_INVALID, ACL_ERROR_INVALID_FILE, ACL_ERROR_WRITE_FILE
from omrt.errors import OmrtError
from omrt.om import OpPlan, load_om, save_om, write_om


def test_save_and_load(tmp_path):
    path = tmp_path / "m.om"
    save_om(static_model(), path)
    assert path.read_bytes() == write_om(static_model())
    assert_models_equal(load_om(path), static_model())
    assert os.listdir(tmp_path) == ["m.om"]


def test_invalid_model_leaves_nothing(tmp_path):
    m = static_model()
    m.graphs[0].ops.append(OpPlan("bad", "Foo", {"x": object()}, [], []))
    with pytest.raises(OmrtError) as info:
        save_om(m, tmp_path / "m.om")
    assert info.value.code == ACL_ERROR_GE_PARAM_INVALID
    assert os.listdir(tmp_path) == []


def test_failed_write_leaves_nothing(tmp_path, monkeypatch):
    def boom(fd):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OmrtError) as info:
        save_om(static_model(), tmp_path / "m.om")
    assert info.value.code == ACL_ERROR_WRITE_FILE
    assert os.listdir(tmp_path) == []


def test_failed_write_keeps_old_file(tmp_path, monkeypatch):
    path = tmp_path / "m.om"
    path.write_bytes(b"old")
    monkeypatch.setattr(os, "replace", lambda a, b: (_ for _ in ()).throw(OSError(13, "denied")))
    with pytest.raises(OmrtError):
        save_om(static_model(), path)
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["m.om"]


def test_missing_folder_and_file(tmp_path):
    with pytest.raises(OmrtError) as info:
        save_om(static_model(), tmp_path / "nope" / "m.om")
    assert info.value.code == ACL_ERROR_WRITE_FILE
    with pytest.raises(OmrtError) as info:
        load_om(tmp_path / "absent.om")
    assert info.value.code == ACL_ERROR_INVALID_FILE
