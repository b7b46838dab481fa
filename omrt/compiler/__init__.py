"""ONNX -> offline model compiler: import, fold, fuse, place, emit."""
from omrt.compiler.compile import compile_onnx, compile_onnx_report
from omrt.compiler.options import CompileOptions
from omrt.compiler.report import CompileReport, GraphReport

__all__ = ["compile_onnx", "compile_onnx_report", "CompileOptions", "CompileReport", "GraphReport"]
