#!/bin/sh
# Regenerate ge_ir_pb2.py and task_pb2.py from the .proto files next to this script.
# The gencode's runtime-version pin is removed so the modules import with any protobuf >= 5.29
# (they use only the builder API that 5.26+ provides).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
python=${PYTHON:-python}
cd "$here"
"$python" -m grpc_tools.protoc -I. --python_out=. ge_ir.proto task.proto
"$python" - <<'PY'
import re
for name in ("ge_ir_pb2.py", "task_pb2.py"):
    text = open(name).read()
    text = re.sub(r"from google\.protobuf import runtime_version as _runtime_version\n", "", text)
    text = re.sub(r"_runtime_version\.ValidateProtobufRuntimeVersion\([^)]*\)\n", "", text, flags=re.S)
    open(name, "w").write(text)
PY
