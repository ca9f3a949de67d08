"""A File Explorer child behind a real Qt host, over a fresh workspace."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QCoreApplication

from symphony.extension_host.discovery import bundled_dir
from symphony.extension_host.host import ExtensionHost


@pytest.fixture
def host(tmp_path: Path) -> Iterator[tuple[ExtensionHost, list[Any], Path]]:
    """``(host, files.changed params received, workspace folder)``."""
    if QCoreApplication.instance() is None:
        QCoreApplication([])
    ws = tmp_path / "ws"
    ws.mkdir()
    h = ExtensionHost([bundled_dir()], workspace=ws)
    changes: list[Any] = []
    h.sig_notification.connect(
        lambda ext, method, params, body: (
            changes.append(params) if method == "files.changed" else None
        )
    )
    yield h, changes, ws
    h.shutdown(grace=5)
