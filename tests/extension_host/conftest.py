from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QCoreApplication, QEventLoop, QTimer

from symphony.extension_host.host import ExtensionHost, HostConfig

FIXTURES = Path(__file__).parent / "fixtures"
MISBEHAVE = "test.misbehave"


@pytest.fixture(scope="session")
def qapp() -> QCoreApplication:
    app = QCoreApplication.instance()
    if app is None:
        app = QCoreApplication([])
    assert isinstance(app, QCoreApplication)
    return app


def spin(predicate: Callable[[], object], timeout: float = 30.0) -> None:
    """Run the Qt event loop until ``predicate()`` is true (fails the test after ``timeout``)."""
    end = time.monotonic() + timeout
    wake = QTimer()
    wake.start(20)
    try:
        while not predicate():
            assert time.monotonic() < end, f"condition not met within {timeout} s"
            QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.WaitForMoreEvents)
    finally:
        wake.stop()


class Recorder:
    """Collects the host's signals."""

    def __init__(self, host: ExtensionHost) -> None:
        self.states: list[tuple[str, str]] = []
        self.logs: list[tuple[str, str, str]] = []
        self.notifications: list[tuple[str, str, Any, bytes]] = []
        self.breakers: list[tuple[str, str]] = []
        host.sig_state_changed.connect(lambda i, s: self.states.append((i, s)))
        host.sig_log.connect(lambda i, lvl, m: self.logs.append((i, lvl, m)))
        host.sig_notification.connect(
            lambda i, m, p, b: self.notifications.append((i, m, p, b[:256]))
        )
        host.sig_breaker_opened.connect(lambda i, r: self.breakers.append((i, r)))

    def states_of(self, ext_id: str) -> list[str]:
        return [s for i, s in self.states if i == ext_id]


HostFactory = Callable[..., tuple[ExtensionHost, Recorder]]


@pytest.fixture
def make_host(qapp: QCoreApplication) -> Iterator[HostFactory]:
    hosts: list[ExtensionHost] = []

    def make(
        roots: list[Path] | None = None, config: HostConfig | None = None, **kw: Any
    ) -> tuple[ExtensionHost, Recorder]:
        host = ExtensionHost(roots or [FIXTURES], config=config or HostConfig(), **kw)
        hosts.append(host)
        return host, Recorder(host)

    yield make
    for h in hosts:
        h.shutdown(grace=2.0)
