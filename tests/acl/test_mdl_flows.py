"""Whole client flows on a converted light model (squeezenet with random weights), written the way
public pyACL programs write them, checked against onnxruntime on the same ONNX model."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import acl

ACL_MEM_MALLOC_HUGE_FIRST = 0
ACL_MEM_MALLOC_NORMAL_ONLY = 2
ACL_MEMCPY_HOST_TO_DEVICE = 1
ACL_MEMCPY_DEVICE_TO_HOST = 2
ACL_MEMCPY_DEVICE_TO_DEVICE = 3
ACL_HOST = 1
NPY_FLOAT32 = 11
ACL_FLOAT = 0


def check_ret(message: str, ret: int) -> None:
    if ret != 0:
        raise Exception(f"{message} failed ret={ret}: {acl.get_recent_err_msg()}")


def _image(seed: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((1, 3, 224, 224)).astype(np.float32)


def test_raw_pyacl_flow(squeezenet):
    """resnet50_imagenet_classification acl_net.py, step by step."""
    device_id = 0
    ret = acl.init()
    check_ret("acl.init", ret)
    ret = acl.rt.set_device(device_id)
    check_ret("acl.rt.set_device", ret)
    context, ret = acl.rt.create_context(device_id)
    check_ret("acl.rt.create_context", ret)
    stream, ret = acl.rt.create_stream()
    check_ret("acl.rt.create_stream", ret)

    model_id, ret = acl.mdl.load_from_file(squeezenet.om_path)
    check_ret("acl.mdl.load_from_file", ret)
    model_desc = acl.mdl.create_desc()
    ret = acl.mdl.get_desc(model_desc, model_id)
    check_ret("acl.mdl.get_desc", ret)

    input_data, output_data = [], []
    input_dataset = acl.mdl.create_dataset()
    for i in range(acl.mdl.get_num_inputs(model_desc)):
        size = acl.mdl.get_input_size_by_index(model_desc, i)
        ptr, ret = acl.rt.malloc(size, ACL_MEM_MALLOC_HUGE_FIRST)
        check_ret("acl.rt.malloc", ret)
        input_data.append({"buffer": ptr, "size": size})
        data = acl.create_data_buffer(ptr, size)
        _, ret = acl.mdl.add_dataset_buffer(input_dataset, data)
        check_ret("acl.mdl.add_dataset_buffer", ret)
    output_dataset = acl.mdl.create_dataset()
    for i in range(acl.mdl.get_num_outputs(model_desc)):
        size = acl.mdl.get_output_size_by_index(model_desc, i)
        ptr, ret = acl.rt.malloc(size, ACL_MEM_MALLOC_HUGE_FIRST)
        check_ret("acl.rt.malloc", ret)
        output_data.append({"buffer": ptr, "size": size})
        data = acl.create_data_buffer(ptr, size)
        _, ret = acl.mdl.add_dataset_buffer(output_dataset, data)
        check_ret("acl.mdl.add_dataset_buffer", ret)

    image = _image()
    image_bytes = image.tobytes()
    if "bytes_to_ptr" in dir(acl.util):
        host_ptr = acl.util.bytes_to_ptr(image_bytes)
    else:
        host_ptr = acl.util.numpy_to_ptr(image)
    ret = acl.rt.memcpy(input_data[0]["buffer"], input_data[0]["size"], host_ptr, len(image_bytes),
                        ACL_MEMCPY_HOST_TO_DEVICE)
    check_ret("acl.rt.memcpy", ret)

    ret = acl.mdl.execute(model_id, input_dataset, output_dataset)
    check_ret("acl.mdl.execute", ret)

    results = []
    for i, item in enumerate(output_data):
        host_out, ret = acl.rt.malloc_host(item["size"])
        check_ret("acl.rt.malloc_host", ret)
        ret = acl.rt.memcpy(host_out, item["size"], item["buffer"], item["size"], ACL_MEMCPY_DEVICE_TO_HOST)
        check_ret("acl.rt.memcpy", ret)
        dims, ret = acl.mdl.get_cur_output_dims(model_desc, i)
        check_ret("acl.mdl.get_cur_output_dims", ret)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            arr = acl.util.ptr_to_numpy(host_out, tuple(dims["dims"]), NPY_FLOAT32)
        results.append(np.frombuffer(arr.tobytes(), np.float32).reshape(dims["dims"]))
        also = np.frombuffer(acl.util.ptr_to_bytes(host_out, item["size"]), np.float32)
        np.testing.assert_array_equal(also, results[-1].ravel())
        ret = acl.rt.free_host(host_out)
        check_ret("acl.rt.free_host", ret)

    for i in range(acl.mdl.get_dataset_num_buffers(input_dataset)):
        acl.destroy_data_buffer(acl.mdl.get_dataset_buffer(input_dataset, i))
    check_ret("destroy input", acl.mdl.destroy_dataset(input_dataset))
    for i in range(acl.mdl.get_dataset_num_buffers(output_dataset)):
        acl.destroy_data_buffer(acl.mdl.get_dataset_buffer(output_dataset, i))
    check_ret("destroy output", acl.mdl.destroy_dataset(output_dataset))
    check_ret("acl.mdl.unload", acl.mdl.unload(model_id))
    check_ret("acl.mdl.destroy_desc", acl.mdl.destroy_desc(model_desc))
    for item in input_data + output_data:
        check_ret("acl.rt.free", acl.rt.free(item["buffer"]))
    check_ret("acl.rt.destroy_stream", acl.rt.destroy_stream(stream))
    check_ret("acl.rt.destroy_context", acl.rt.destroy_context(context))
    check_ret("acl.rt.reset_device", acl.rt.reset_device(device_id))
    check_ret("acl.finalize", acl.finalize())

    expected = squeezenet.reference(image)
    assert len(results) == len(expected) == 2
    for got, want in zip(results, expected):
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4)
    assert np.abs(expected[1]).max() > 1e-2  # the logits carry signal: the comparison means something


class AclLiteModelLike:
    """The parts of Ascend/samples python/common/acllite/acllite_model.py that touch acl.mdl."""

    def __init__(self, model_path: str, run_mode: int) -> None:
        self._run_mode = run_mode
        self._copy_policy = ACL_MEMCPY_DEVICE_TO_HOST if run_mode == ACL_HOST else ACL_MEMCPY_DEVICE_TO_DEVICE
        self._model_id, ret = acl.mdl.load_from_file(model_path)
        check_ret("acl.mdl.load_from_file", ret)
        self._model_desc = acl.mdl.create_desc()
        check_ret("acl.mdl.get_desc", acl.mdl.get_desc(self._model_desc, self._model_id))
        self._input_num = acl.mdl.get_num_inputs(self._model_desc)
        self._output_num = acl.mdl.get_num_outputs(self._model_desc)
        self._input_buffers: list[dict] = []
        self._output_dataset = acl.mdl.create_dataset()
        self._output_ptrs = []
        for i in range(self._output_num):
            size = acl.mdl.get_output_size_by_index(self._model_desc, i)
            ptr, ret = acl.rt.malloc(size, ACL_MEM_MALLOC_NORMAL_ONLY)
            check_ret("acl.rt.malloc", ret)
            self._output_ptrs.append(ptr)
            _, ret = acl.mdl.add_dataset_buffer(self._output_dataset, acl.create_data_buffer(ptr, size))
            check_ret("acl.mdl.add_dataset_buffer", ret)

    def execute(self, input_list: list[np.ndarray]) -> list[np.ndarray]:
        dynamic_index, ret = acl.mdl.get_input_index_by_name(self._model_desc, "ascend_mbatch_shape_data")
        assert ret != 0  # a static model
        assert len(input_list) == self._input_num
        dataset = acl.mdl.create_dataset()
        for i, arr in enumerate(input_list):
            size = arr.size * arr.itemsize
            host_ptr = acl.util.bytes_to_ptr(arr.tobytes())
            if i >= len(self._input_buffers):
                ptr, ret = acl.rt.malloc(size, ACL_MEM_MALLOC_NORMAL_ONLY)
                check_ret("acl.rt.malloc", ret)
                self._input_buffers.append({"data": ptr, "size": size})
            ret = acl.rt.memcpy(self._input_buffers[i]["data"], size, host_ptr, size, ACL_MEMCPY_HOST_TO_DEVICE)
            check_ret("acl.rt.memcpy", ret)
            model_size = acl.mdl.get_input_size_by_index(self._model_desc, i)
            assert size == model_size
            _, ret = acl.mdl.add_dataset_buffer(dataset, acl.create_data_buffer(self._input_buffers[i]["data"], size))
            check_ret("acl.mdl.add_dataset_buffer", ret)
        ret = acl.mdl.execute(self._model_id, dataset, self._output_dataset)
        check_ret("acl.mdl.execute", ret)
        for i in range(acl.mdl.get_dataset_num_buffers(dataset)):
            acl.destroy_data_buffer(acl.mdl.get_dataset_buffer(dataset, i))
        acl.mdl.destroy_dataset(dataset)
        return self._output_dataset_to_numpy()

    def _output_dataset_to_numpy(self) -> list[np.ndarray]:
        dataset = []
        for i in range(self._output_num):
            buf = acl.mdl.get_dataset_buffer(self._output_dataset, i)
            data = acl.get_data_buffer_addr(buf)
            size = int(acl.get_data_buffer_size(buf))
            shape = tuple(acl.mdl.get_output_dims(self._model_desc, i)[0]["dims"])
            assert acl.mdl.get_output_data_type(self._model_desc, i) == ACL_FLOAT
            zeros = np.zeros(acl.mdl.get_output_size_by_index(self._model_desc, i) // 4, dtype=np.float32)
            output_tensor = zeros.reshape(shape)
            bytes_data = output_tensor.tobytes()
            ret = acl.rt.memcpy(acl.util.bytes_to_ptr(bytes_data), len(bytes_data), data, size, self._copy_policy)
            check_ret("acl.rt.memcpy", ret)
            dataset.append(np.frombuffer(bytes_data, dtype=np.float32).reshape(shape).copy())
        return dataset

    def destroy(self) -> None:
        for i in range(self._output_num):
            acl.destroy_data_buffer(acl.mdl.get_dataset_buffer(self._output_dataset, i))
        acl.mdl.destroy_dataset(self._output_dataset)
        for ptr in self._output_ptrs + [b["data"] for b in self._input_buffers]:
            acl.rt.free(ptr)
        if self._model_id:
            check_ret("acl.mdl.unload", acl.mdl.unload(self._model_id))
        acl.mdl.destroy_desc(self._model_desc)


def test_acllite_flow(squeezenet):
    assert acl.init() == 0
    assert acl.rt.set_device(0) == 0
    context, ret = acl.rt.create_context(0)
    stream, _ = acl.rt.create_stream()
    run_mode, ret = acl.rt.get_run_mode()
    try:
        model = AclLiteModelLike(squeezenet.om_path, run_mode)
        for seed in (5, 6):
            image = _image(seed)
            outputs = model.execute([image])
            expected = squeezenet.reference(image)
            for got, want in zip(outputs, expected):
                np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4)
        model.destroy()
    finally:
        acl.rt.destroy_stream(stream)
        acl.rt.destroy_context(context)
        acl.rt.reset_device(0)
        acl.finalize()


@pytest.mark.parametrize("policy", [ACL_MEMCPY_DEVICE_TO_DEVICE])
def test_acllite_flow_device_run_mode_copy_policy(acl_ctx, cnn, policy):
    """In ACL_DEVICE run mode AclLite copies outputs with DEVICE_TO_DEVICE; that must work too."""
    model = AclLiteModelLike(cnn.om_path, run_mode=0)
    x = np.random.default_rng(9).standard_normal((1, 3, 16, 16)).astype(np.float32)
    np.testing.assert_allclose(model.execute([x])[0], cnn.reference(x)[0], rtol=1e-3, atol=1e-4)
    model.destroy()
