"""omrt's own numpy kernels; importing the package registers every op family."""
from omrt.kernels.base import (  # noqa: F401
    Kernel,
    OpSpec,
    TensorSpec,
    build_kernel,
    is_supported,
    overwritable_inputs,
    prepack,
    register,
    run_op,
    supported_ops,
    workspace_bytes,
)

from omrt.kernels import (  # noqa: F401,E402  (registration side effects)
    conv,
    conv_transpose,
    gemm,
    pool,
    norm,
    elementwise,
    reduce,
    shape,
    resize,
)
