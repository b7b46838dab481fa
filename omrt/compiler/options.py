"""What `omrt atc` passes to the compiler, with ATC's option names."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class CompileOptions:
    input_shape: dict[str, list[int]] = field(default_factory=dict)  # --input_shape; -1 = dynamic dim
    dynamic_batch_size: list[int] = field(default_factory=list)      # --dynamic_batch_size gears
    out_nodes: list[tuple[str, int]] = field(default_factory=list)   # --out_nodes "node:idx;..."
    input_format: str = "NCHW"
    soc_version: str = "Ascend310"
    precision_mode: str = "force_fp32"
    atc_cmdline: str = ""
    model_name: str = ""
    progress: bool = False            # show a progress bar on long compiles
    lanes: int | None = None          # batch lanes (omrt.compiler.lanes); None: chosen from the batch
