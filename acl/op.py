"""acl.op: single-operator execution. omrt runs whole offline models only, so every function here
answers ACL_ERROR_API_NOT_SUPPORT (200001) in the shape pyACL returns."""
from __future__ import annotations

from acl._facade import RET as _RET, not_supported as _ns

set_model_dir = _ns("op.set_model_dir")
create_attr = _ns("op.create_attr", 0)
destroy_attr = _ns("op.destroy_attr", None)
set_attr_bool = _ns("op.set_attr_bool")
set_attr_int = _ns("op.set_attr_int")
set_attr_float = _ns("op.set_attr_float")
set_attr_string = _ns("op.set_attr_string")
set_attr_list_int = _ns("op.set_attr_list_int")
set_attr_list_float = _ns("op.set_attr_list_float")
execute = _ns("op.execute")
execute_v2 = _ns("op.execute_v2")
cast = _ns("op.cast")
create_handle = _ns("op.create_handle", (0, _RET))
execute_with_handle = _ns("op.execute_with_handle")
destroy_handle = _ns("op.destroy_handle", None)
compile = _ns("op.compile")  # noqa: A001  (the pyACL name)
update_params = _ns("op.update_params")
