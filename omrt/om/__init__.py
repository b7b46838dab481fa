"""The .om container: write an OfflineModel to GE's offline-model format and read it back."""
from omrt.om.info import model_info_text
from omrt.om.json_view import om_to_json
from omrt.om.model import GraphPlan, Location, OfflineModel, OpPlan, Region, TensorDesc, TensorRef
from omrt.om.reader import load_om, query_sizes, read_om
from omrt.om.writer import save_om, write_om

__all__ = [
    "write_om", "save_om", "read_om", "load_om", "query_sizes", "om_to_json", "model_info_text",
    "OfflineModel", "GraphPlan", "OpPlan", "TensorRef", "TensorDesc", "Location", "Region",
]
