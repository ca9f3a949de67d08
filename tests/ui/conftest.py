"""Fixtures of the IDE tests: QSettings in a temporary folder, a main window, a File Explorer."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from unittest import mock

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QMessageBox
from pytestqt.qtbot import QtBot

from symphony.ui import settings as st

if TYPE_CHECKING:
    from symphony.ui.main_window import MainWindow


@pytest.fixture(autouse=True)
def settings_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Point the application's QSettings (INI, user scope) at a fresh folder."""
    folder = tmp_path_factory.mktemp("qsettings")
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(folder))
    return folder


def settings_file(folder: Path) -> Path:
    """The INI file QSettings writes for Symphony under ``folder``."""
    return folder / st.ORGANIZATION / f"{st.APPLICATION}.ini"


@pytest.fixture
def make_window(qtbot: QtBot) -> Iterator[Callable[..., object]]:
    """Create main windows without background services; closes them at the end."""
    from symphony.ui.main_window import MainWindow

    made: list[MainWindow] = []

    def make(**kw: object) -> MainWindow:
        kw.setdefault("start_services", False)
        w = MainWindow(**kw)  # type: ignore[arg-type]
        # Not qtbot.addWidget: pytest-qt closes those before this fixture's teardown, and a
        # window with unsaved edits would ask (modally) whether to save them.
        made.append(w)
        return w

    yield make
    for w in made:
        while w.tabs.count():
            w.close_tab(0, ask=False)  # unsaved edits would make close() ask, modally
        # so would a run still going on (a test that failed half-way): quit it
        with mock.patch.object(
            QMessageBox, "question", return_value=QMessageBox.StandardButton.Yes
        ):
            w.close()
        w.deleteLater()


@pytest.fixture
def ops_window(
    make_window: Callable[..., object], tmp_path: Path
) -> Iterator[Callable[[], MainWindow]]:
    """Make main windows over the test node types, a File Explorer on ``tmp_path`` and the Pit
    at ``tmp_path / "pit"`` (made when called, so a test can fill that Pit first)."""
    from symphony.extension_host.host import ExtensionHost
    from symphony.pit import Pit
    from symphony.ui.main_window import MainWindow
    from tests.conductor.conftest import make_registry
    from tests.conftest import TEST_KEY

    hosts: list[ExtensionHost] = []

    def make() -> MainWindow:
        w = make_window()
        assert isinstance(w, MainWindow)
        host = ExtensionHost(None, w, workspace=tmp_path)
        hosts.append(host)
        w.set_host(host)
        w.set_registry(make_registry())
        w.set_pit(Pit.open(tmp_path / "pit", key=TEST_KEY))
        return w

    yield make
    for host in hosts:
        host.shutdown()
