"""Fixtures shared by every test: an isolated keyring, offscreen Qt, Pit factories."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

TEST_KEY = bytes(range(32))


def folder_listing(root: Path) -> dict[str, tuple[int, int, str] | None]:
    """Every entry under ``root``: size, mtime and SHA-256 of each file (``None`` for folders).

    Two equal listings mean nothing under ``root`` was written, created or removed.
    """
    import hashlib

    out: dict[str, tuple[int, int, str] | None] = {}
    for p in sorted(root.rglob("*")):
        st = p.stat()
        if p.is_dir():
            out[str(p.relative_to(root))] = None
        else:
            digest = hashlib.sha256(p.read_bytes()).hexdigest()
            out[str(p.relative_to(root))] = (st.st_size, st.st_mtime_ns, digest)
    return out


@pytest.fixture(autouse=True)
def _isolated_keyring(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Point keyring at a file backend in a temporary folder, never the developer's keyring."""
    import keyring
    from keyrings.alt.file import PlaintextKeyring

    home = tmp_path_factory.mktemp("keyring-home")
    monkeypatch.setenv("XDG_DATA_HOME", str(home))
    # and the app's settings (QSettings), which `symphony run` reads too, in a child as well
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyrings.alt.file.PlaintextKeyring")
    monkeypatch.delenv("SYMPHONY_PIT_KEY_FILE", raising=False)
    backend = PlaintextKeyring()
    backend.file_path = str(home / "keyring.cfg")  # type: ignore[misc]
    previous = keyring.get_keyring()
    keyring.set_keyring(backend)
    yield
    keyring.set_keyring(previous)


@pytest.fixture
def pit() -> Iterator[object]:
    """An in-memory Pit on a manual clock starting at 1,000,000 s."""
    from symphony.pit import Pit

    p = Pit.in_memory(manual_clock=1_000_000.0)
    yield p
    p.close()


@pytest.fixture
def open_pit(tmp_path: Path) -> Iterator[Callable[..., object]]:
    """Open persistent Pits (default directory ``tmp_path/pit``, fixed test key); closes them."""
    from symphony.pit import Pit

    opened: list[Pit] = []

    def _open(path: Path | None = None, **kw: object) -> Pit:
        kw.setdefault("key", TEST_KEY)
        p = Pit.open(path or tmp_path / "pit", **kw)  # type: ignore[arg-type]
        opened.append(p)
        return p

    yield _open
    for p in opened:
        p.close()


@pytest.fixture(scope="session", autouse=True)
def _qt_application() -> Iterator[object]:
    """One QApplication for the session, made before any test makes a bare QCoreApplication.

    Qt allows one application object per process, and widget tests (pytest-qt's ``qapp``, the
    board, the main window) need a QApplication; non-GUI tests are happy with it. At the end,
    every widget and scene is deleted while the application still exists: left to the
    interpreter's shutdown, Qt objects die after the application and the process segfaults.
    """
    import gc

    from PySide6.QtCore import QCoreApplication, QEvent
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    yield app
    # QMimeData handed to the clipboard is Python-owned: dropped after the application, it
    # crashes the interpreter's shutdown.
    QApplication.clipboard().clear()
    for w in QApplication.topLevelWidgets():
        w.close()
        w.deleteLater()
    gc.collect()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    QCoreApplication.processEvents()
    gc.collect()
