"""What a compile did, in figures: memory plan against its bounds, op counts, fusions, timings."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class GraphReport:
    name: str
    batch: int | None
    memory_size: int          # planned work memory
    lower_bound: int          # most bytes live at one step: no plan is smaller
    naive: int                # one buffer per block
    ops_before: int           # nodes in the ONNX graph
    ops_after: int            # ops in the plan
    folded: int               # nodes folded to constants
    fusions: dict[str, int] = field(default_factory=dict)
    views: int = 0            # zero-copy alias ops
    inplace: int = 0          # ops writing over an input
    pass_seconds: dict[str, float] = field(default_factory=dict)
    lanes: int = 1            # the figures above are one lane's (omrt.compiler.lanes)


@dataclass
class CompileReport:
    model: str
    graphs: list[GraphReport]
    weight_size: int
    seconds: float = 0.0

    def summary(self) -> str:
        lines = [f"{self.model}: weights {self.weight_size} B, {self.seconds:.2f} s"]
        for g in self.graphs:
            ratio = g.memory_size / g.lower_bound if g.lower_bound else 1.0
            lanes = f"{g.lanes} lanes x " if g.lanes > 1 else ""
            lines.append(
                f"  {g.name}: work {lanes}{g.memory_size} B (lower bound {g.lower_bound}, x{ratio:.3f}; naive {g.naive}), "
                f"ops {g.ops_before} -> {g.ops_after}, folded {g.folded}, views {g.views}, in-place {g.inplace}, "
                f"fusions {sum(g.fusions.values())} {dict(sorted(g.fusions.items()))}")
        return "\n".join(lines)
