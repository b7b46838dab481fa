"""Model-level names and sizes shared by the writer and the reader."""
from __future__ import annotations

# ModelDef attrs the writer derives from the model; the reader takes them out of model.attrs.
DERIVED_ATTRS = frozenset({
    "memory_size", "zero_copy_memory_size", "weight_size", "stream_num", "event_num", "om_info_list",
})
# String attrs GE always writes; the writer fills these defaults when model.attrs lacks them.
STRING_ATTR_DEFAULTS = {"atc_cmdline": "", "atc_version": "", "soc_version": "", "framework_type": "Onnx"}

# GE's weight layout keeps the first 512 bytes zero (kWeightsStartOffset); a model without weights
# gets exactly that blob so WEIGHTS_DATA is non-empty and the table keeps num = 3.
EMPTY_WEIGHTS = bytes(512)

STREAM_NUM = 1
EVENT_NUM = 0
