"""Collection settings for the whole repository (not shipped with skae)."""

import importlib.util

# skae.onnx needs the optional onnx extra; its doctest runs only where the extra
# is installed (tests/test_onnx.py skips itself likewise).
collect_ignore = []
if any(
    importlib.util.find_spec(name) is None
    for name in ("onnx", "onnxruntime", "skl2onnx")
):
    collect_ignore.append("skae/onnx.py")
