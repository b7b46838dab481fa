"""Top-level acl functions: module shape, init/finalize, logging, data buffers, tensor descs, op/media."""
from __future__ import annotations

import inspect
import json
import subprocess
import sys

import pytest

import acl
from omrt import constants as C

SUBMODULES = ("rt", "mdl", "util", "op", "media")


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)


def test_module_shape():
    for name in SUBMODULES:
        mod = getattr(acl, name)
        assert sys.modules[f"acl.{name}"] is mod
    assert "bytes_to_ptr" in dir(acl.util) and "ptr_to_bytes" in dir(acl.util)
    assert not [n for n in dir(acl) if n.startswith("ACL_")]


def test_run_mode_before_init_in_a_fresh_process():
    r = _run("import acl; print(acl.rt.get_run_mode())")
    assert r.returncode == 0 and r.stdout.strip() == "(1, 0)"


def test_init_finalize_repeat_codes(tmp_path, capfd):
    assert acl.init() == 0
    assert acl.init() == C.ACL_ERROR_REPEAT_INITIALIZE
    assert acl.finalize() == 0
    assert acl.finalize() == C.ACL_ERROR_REPEAT_FINALIZE
    assert "[ERROR] acl.finalize" in capfd.readouterr().err
    cfg = tmp_path / "acl.json"
    cfg.write_text(json.dumps({"dump": {}}))
    assert acl.init(str(cfg)) == 0 and acl.finalize() == 0
    cfg.write_text("{not json")
    assert acl.init(str(cfg)) == C.ACL_ERROR_PARSE_FILE
    assert acl.init(str(tmp_path / "missing.json")) == C.ACL_ERROR_INVALID_FILE
    assert acl.finalize() in (0, C.ACL_ERROR_REPEAT_FINALIZE)
    with pytest.raises(TypeError, match=r"^acl.init args parse failed$"):
        acl.init(1)
    with pytest.raises(TypeError, match="acl.init args parse failed"):
        acl.init("a", "b")


def test_version_soc_and_extra_args_ignored():
    assert acl.get_version(1, 2, 3) == (1, 0, 0, 0)
    assert isinstance(acl.get_soc_name("ignored"), str)
    assert acl.finalize("x", None) == C.ACL_ERROR_REPEAT_FINALIZE


def test_recent_error_message_and_log(capfd):
    acl.rt.free(0)
    assert "acl.rt.free" in acl.get_recent_err_msg() and "100000" in acl.get_recent_err_msg()
    assert "[ERROR] acl.rt.free: devPtr is NULL (error 100000)" in capfd.readouterr().err
    assert acl.app_log(C.ACL_ERROR, "hello") is None
    assert "[ERROR] hello" in capfd.readouterr().err
    assert acl.app_log(C.ACL_INFO, "quiet") is None
    assert "quiet" not in capfd.readouterr().err
    with pytest.raises(TypeError, match="acl.app_log args parse failed"):
        acl.app_log("x", 1)


def test_data_buffer_functions():
    buf = acl.create_data_buffer(0, 1)
    assert isinstance(buf, int) and buf != 0
    assert (acl.get_data_buffer_addr(buf), acl.get_data_buffer_size(buf)) == (0, 1)
    assert acl.update_data_buffer(buf, 0x7000, 256) == 0
    assert acl.get_data_buffer_addr(buf) == 0x7000 and acl.get_data_buffer_size_v2(buf) == 256
    assert acl.destroy_data_buffer(buf) == 0
    assert acl.destroy_data_buffer(buf) == C.ACL_ERROR_INVALID_PARAM
    assert acl.get_data_buffer_addr(buf) == 0 and acl.get_data_buffer_size(0) == 0
    assert acl.update_data_buffer(buf, 1, 1) == C.ACL_ERROR_INVALID_PARAM
    assert acl.create_data_buffer(-1, 8)  # 'k' wraps -1 as C does
    with pytest.raises(TypeError, match="acl.create_data_buffer args parse failed"):
        acl.create_data_buffer(None, 1)
    with pytest.raises(TypeError):
        acl.create_data_buffer(1.5, 1)


def test_tensor_desc_and_data_type_size():
    assert acl.data_type_size(C.ACL_FLOAT16) == 2 and acl.data_type_size(13) == 0
    td = acl.create_tensor_desc(C.ACL_FLOAT, [2, 3], C.ACL_FORMAT_ND)
    assert acl.get_tensor_desc_size(td) == 24
    assert acl.destroy_tensor_desc(td) is None
    assert acl.get_tensor_desc_size(td) == 0
    with pytest.raises(TypeError, match="acl.create_tensor_desc args parse failed"):
        acl.create_tensor_desc(0, "23", 0)


def test_datasets_through_mdl():
    ds = acl.mdl.create_dataset(1, 2)
    bufs = [acl.create_data_buffer(0, 0) for _ in range(2)]
    for b in bufs:
        assert acl.mdl.add_dataset_buffer(ds, b) == (ds, 0)
    assert acl.mdl.add_dataset_buffer(ds, 0) == (ds, C.ACL_ERROR_INVALID_PARAM)
    assert acl.mdl.get_dataset_num_buffers(ds) == 2
    assert acl.mdl.get_dataset_buffer(ds, 1) == bufs[1] and acl.mdl.get_dataset_buffer(ds, 2) == 0
    assert acl.mdl.get_dataset_num_buffers(0) == 0
    assert acl.mdl.destroy_dataset(ds) == 0 and acl.mdl.destroy_dataset(ds) == C.ACL_ERROR_INVALID_PARAM
    assert acl.get_data_buffer_size(bufs[0]) == 0 and acl.destroy_data_buffer(bufs[0]) == 0


def test_op_and_media_are_not_supported():
    assert acl.op.set_model_dir("x") == C.ACL_ERROR_API_NOT_SUPPORT
    assert acl.op.create_handle(1, 2) == (0, C.ACL_ERROR_API_NOT_SUPPORT)
    assert acl.op.create_attr() == 0 and acl.op.destroy_attr(0) is None
    assert acl.media.dvpp_malloc(1024) == (0, C.ACL_ERROR_API_NOT_SUPPORT)
    assert acl.media.dvpp_free(1) == C.ACL_ERROR_API_NOT_SUPPORT
    assert acl.media.dvpp_create_pic_desc() == 0
    assert acl.media.dvpp_set_pic_desc_width(1, 2) == C.ACL_ERROR_API_NOT_SUPPORT
    assert acl.media.dvpp_jpeg_get_image_info(1, 2) == (0, 0, 0, C.ACL_ERROR_API_NOT_SUPPORT)
    listed = ("execute_v2", "cast", "execute_with_handle", "destroy_handle", "set_attr_bool")
    assert all(callable(getattr(acl.op, n)) for n in listed)
    media = ("dvpp_create_channel_desc", "dvpp_create_channel", "dvpp_vpc_resize_async", "dvpp_vpc_crop_async",
             "dvpp_vpc_crop_and_paste_async", "dvpp_jpeg_decode_async", "dvpp_jpeg_predict_dec_size",
             "dvpp_create_roi_config", "dvpp_create_resize_config", "vdec_create_channel", "venc_send_frame")
    assert all(callable(getattr(acl.media, n)) for n in media)


def test_only_functions_are_public():
    for mod in (acl, *(getattr(acl, n) for n in SUBMODULES)):
        for name in dir(mod):
            if name.startswith("_") or name in SUBMODULES or name == "annotations":
                continue
            obj = getattr(mod, name)
            assert callable(obj) and not inspect.isclass(obj), f"{mod.__name__}.{name}"


def test_destroy_calls_from_del_at_interpreter_exit():
    code = """
import acl
class Res:
    def __init__(self):
        acl.init(); acl.rt.set_device(0)
        self.ctx, _ = acl.rt.create_context(0)
        self.stream, _ = acl.rt.create_stream()
        self.ptr, _ = acl.rt.malloc(1024, 0)
        acl.rt.launch_callback(lambda d: None, None, 0, self.stream)
    def __del__(self):
        rets = [acl.rt.free(self.ptr), acl.rt.destroy_stream(self.stream),
                acl.rt.destroy_context(self.ctx), acl.rt.reset_device(0), acl.finalize()]
        assert rets == [0, 0, 0, 0, 0], rets
        print("clean")
keep = Res()
"""
    r = _run(code)
    assert r.returncode == 0, r.stderr
    assert "clean" in r.stdout and "Traceback" not in r.stderr
