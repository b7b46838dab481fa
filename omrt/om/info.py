"""`atc --mode 6`: the "Display Model Info" block, from MODEL_DEF attrs (GE omg.cc PrintModelInfo)."""
from __future__ import annotations

from omrt.om.container import model_def, open_container

OM_INFO_SIZE = 5


def _s(attrs, key: str) -> str:
    return attrs[key].s.decode("utf-8", errors="replace") if key in attrs else ""


def _i(attrs, key: str) -> int:
    return attrs[key].i if key in attrs else -1


def model_info_text(data: bytes | memoryview) -> str:
    """The lines GE prints between the start and end markers, inclusive, newline-terminated."""
    md, modeldef_size = model_def(open_container(data))
    a = md.attr
    lines = [
        "============ Display Model Info start ============",
        f"Original Atc command line: {_s(a, 'atc_cmdline')}",
        f"system   info: atc_version[{_s(a, 'atc_version')}], soc_version[{_s(a, 'soc_version')}], "
        f"framework_type[{_s(a, 'framework_type')}].",
        f"resource info: memory_size[{_i(a, 'memory_size')} B], weight_size[{_i(a, 'weight_size')} B], "
        f"stream_num[{_i(a, 'stream_num')}], event_num[{_i(a, 'event_num')}].",
    ]
    if "om_info_list" not in a:
        lines.append('Display Model Info failed, attr "om_info_list" is not found in om, check the version is matched.')
    elif len(a["om_info_list"].list.i) == OM_INFO_SIZE:
        i = list(a["om_info_list"].list.i)
        lines.append(
            f"om       info: modeldef_size[{modeldef_size} B], weight_data_size[{i[0]} B], "
            f"tbe_kernels_size[{i[1]} B], cust_aicpu_kernel_store_size[{i[2]} B], task_info_size[{i[3]} B], "
            f"so_store_size[{i[4]} B]."
        )
    else:
        lines.append("Display Model Info error, please check!")
    lines.append("============ Display Model Info end   ============")
    return "\n".join(lines) + "\n"
