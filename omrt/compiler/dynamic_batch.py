"""--dynamic_batch_size: one plan per gear, validated the way ATC validates it."""
from __future__ import annotations

from omrt.compiler.options import CompileOptions
from omrt.constants import ACL_ERROR_INVALID_PARAM
from omrt.errors import OmrtError

MAX_GEARS = 100


def validate_gears(options: CompileOptions) -> list[int]:
    """The gears, or [] for a static model; raises on anything ATC would refuse."""
    gears = [int(g) for g in options.dynamic_batch_size]
    dynamic = {name: dims for name, dims in options.input_shape.items() if any(int(d) == -1 for d in dims)}
    if not gears:
        return []
    if len(gears) < 2:
        raise OmrtError(ACL_ERROR_INVALID_PARAM, f"--dynamic_batch_size needs at least 2 gears, got {gears}")
    if len(gears) > MAX_GEARS:
        raise OmrtError(ACL_ERROR_INVALID_PARAM, f"--dynamic_batch_size allows at most {MAX_GEARS} gears, got {len(gears)}")
    if any(g <= 0 for g in gears):
        raise OmrtError(ACL_ERROR_INVALID_PARAM, f"--dynamic_batch_size gears must be positive, got {gears}")
    if len(set(gears)) != len(gears):
        raise OmrtError(ACL_ERROR_INVALID_PARAM, f"--dynamic_batch_size has duplicate gears: {gears}")
    if not dynamic or not any(int(dims[0]) == -1 for dims in dynamic.values() if dims):
        raise OmrtError(ACL_ERROR_INVALID_PARAM,
                        "--dynamic_batch_size needs an --input_shape entry whose first dim is -1")
    for name, dims in dynamic.items():
        if any(int(d) == -1 for d in dims[1:]) or int(dims[0]) != -1:
            raise OmrtError(ACL_ERROR_INVALID_PARAM,
                            f"--input_shape {name}: with --dynamic_batch_size only the first dim may be -1")
    return gears


def shapes_for_gear(input_shape: dict[str, list[int]], gear: int) -> dict[str, list[int]]:
    return {name: [gear if (k == 0 and int(d) == -1) else int(d) for k, d in enumerate(dims)]
            for name, dims in input_shape.items()}
