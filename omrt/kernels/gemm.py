"""gemm kernels."""
