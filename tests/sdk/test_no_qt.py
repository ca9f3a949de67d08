"""Extension children never import Qt: neither the protocol nor the SDK may pull it in."""

from __future__ import annotations

import subprocess
import sys


def test_protocol_and_sdk_import_no_qt() -> None:
    code = (
        "import sys, symphony.protocol, symphony.sdk, symphony.sdk.runner;"
        "print(sorted(m for m in sys.modules if m.startswith(('PySide6', 'shiboken6'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "[]"
