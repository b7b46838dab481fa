"""`make demo`: convert a model with `omrt atc`, run it through unmodified-style pyACL code.

The model is ResNet-50 from the onnx package's light test models; the input is the one the ONNX
backend tests feed it, and the output is checked against the reference output shipped beside it.
Work and weight memory are allocated by the program and handed to
`acl.mdl.load_from_file_with_mem`, the way an Ascend application with explicit memory does it.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ACL_MEM_MALLOC_HUGE_FIRST = 0
ACL_MEMCPY_HOST_TO_DEVICE = 1
ACL_MEMCPY_DEVICE_TO_HOST = 2
NPY_FLOAT32 = 11


def check(ret: int, what: str) -> None:
    if ret != 0:
        raise SystemExit(f"{what} failed with error {ret}")


def convert(onnx_path: Path, out_stem: Path) -> Path:
    from omrt.cli.main import main as omrt_main

    rc = omrt_main([
        "atc", "--framework", "5", "--model", str(onnx_path), "--output", str(out_stem),
        "--soc_version", "Ascend310", "--input_format", "NCHW",
    ])
    if rc != 0:
        raise SystemExit("conversion failed")
    return out_stem.with_suffix(".om")


def run_with_acl(om_path: Path, image: np.ndarray, loops: int = 10) -> tuple[np.ndarray, float]:
    import acl

    check(acl.init(), "acl.init")
    check(acl.rt.set_device(0), "acl.rt.set_device")
    context, ret = acl.rt.create_context(0)
    check(ret, "acl.rt.create_context")

    work_size, weight_size, ret = acl.mdl.query_size(str(om_path))
    check(ret, "acl.mdl.query_size")
    print(f"query_size: work {work_size / 2**20:.2f} MiB, weights {weight_size / 2**20:.2f} MiB")
    work_ptr, ret = acl.rt.malloc(work_size, ACL_MEM_MALLOC_HUGE_FIRST)
    check(ret, "acl.rt.malloc(work)")
    weight_ptr, ret = acl.rt.malloc(weight_size, ACL_MEM_MALLOC_HUGE_FIRST)
    check(ret, "acl.rt.malloc(weights)")
    model_id, ret = acl.mdl.load_from_file_with_mem(str(om_path), work_ptr, work_size, weight_ptr, weight_size)
    check(ret, "acl.mdl.load_from_file_with_mem")

    desc = acl.mdl.create_desc()
    check(acl.mdl.get_desc(desc, model_id), "acl.mdl.get_desc")
    in_size = acl.mdl.get_input_size_by_index(desc, 0)
    out_size = acl.mdl.get_output_size_by_index(desc, 0)
    out_dims = acl.mdl.get_output_dims(desc, 0)[0]["dims"]

    in_dev, ret = acl.rt.malloc(in_size, ACL_MEM_MALLOC_HUGE_FIRST)
    check(ret, "acl.rt.malloc(input)")
    out_dev, ret = acl.rt.malloc(out_size, ACL_MEM_MALLOC_HUGE_FIRST)
    check(ret, "acl.rt.malloc(output)")
    in_ds, out_ds = acl.mdl.create_dataset(), acl.mdl.create_dataset()
    in_buf, out_buf = acl.create_data_buffer(in_dev, in_size), acl.create_data_buffer(out_dev, out_size)
    check(acl.mdl.add_dataset_buffer(in_ds, in_buf)[1], "add input buffer")
    check(acl.mdl.add_dataset_buffer(out_ds, out_buf)[1], "add output buffer")

    host = np.ascontiguousarray(image, dtype=np.float32).tobytes()
    check(acl.rt.memcpy(in_dev, in_size, acl.util.bytes_to_ptr(host), len(host), ACL_MEMCPY_HOST_TO_DEVICE), "memcpy H2D")
    check(acl.mdl.execute(model_id, in_ds, out_ds), "acl.mdl.execute")
    times = []
    for _ in range(loops):
        start = time.perf_counter()
        check(acl.mdl.execute(model_id, in_ds, out_ds), "acl.mdl.execute")
        times.append(time.perf_counter() - start)

    result = bytes(out_size)
    check(acl.rt.memcpy(acl.util.bytes_to_ptr(result), out_size, out_dev, out_size, ACL_MEMCPY_DEVICE_TO_HOST), "memcpy D2H")
    output = np.frombuffer(result, dtype=np.float32).reshape(out_dims).copy()

    acl.destroy_data_buffer(in_buf)
    acl.destroy_data_buffer(out_buf)
    acl.mdl.destroy_dataset(in_ds)
    acl.mdl.destroy_dataset(out_ds)
    acl.mdl.destroy_desc(desc)
    check(acl.mdl.unload(model_id), "acl.mdl.unload")
    for ptr in (in_dev, out_dev, work_ptr, weight_ptr):
        acl.rt.free(ptr)
    acl.rt.destroy_context(context)
    acl.rt.reset_device(0)
    acl.finalize()
    return output, float(np.median(times))


def main() -> int:
    from tests.support.light_models import load, model_path, reference_input, reference_output

    name = os.environ.get("OMRT_DEMO_MODEL", "resnet50")
    out_dir = Path("out")
    out_dir.mkdir(exist_ok=True)
    print(f"== converting light_{name}.onnx with omrt atc")
    start = time.perf_counter()
    om_path = convert(model_path(name), out_dir / name)
    print(f"   wrote {om_path} ({om_path.stat().st_size / 2**20:.1f} MiB) in {time.perf_counter() - start:.1f} s")

    image = next(iter(reference_input(load(name)).values()))
    print("== running it with pyACL calls (user-managed work and weight memory)")
    output, seconds = run_with_acl(om_path, image)
    expected = reference_output(name)
    top5 = np.argsort(output.reshape(-1))[::-1][:5]
    print(f"   output shape {output.shape}, top-5 classes {top5.tolist()}")
    if np.ptp(output) == 0:
        print("   (this test model's weights are all equal, so every class scores the same,"
              " as in the ONNX reference output)")
    print(f"   median latency {seconds * 1e3:.1f} ms")
    diff = float(np.max(np.abs(output - expected.reshape(output.shape))))
    print(f"   max |omrt - ONNX reference output| = {diff:.3g}")
    ok = np.allclose(output, expected.reshape(output.shape), rtol=1e-3, atol=1e-7)
    print("== result matches the ONNX reference output" if ok else "== result DOES NOT match the reference output")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
