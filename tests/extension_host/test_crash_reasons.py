"""Why a child died, as the host tells it: the child's own last words on stderr, not a symptom."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from symphony.extension_host.host import (
    DISABLED,
    READY,
    STDERR_LINE_MAX,
    STDERR_TAIL_LINES,
    ExtensionDisabledError,
    HostConfig,
)
from symphony.protocol import ExtensionCrashedError

from .conftest import HostFactory, spin

FAST = HostConfig(backoff_base=0.05)


def _extension(root: Path, name: str, code: str) -> str:
    """Write a user extension ``test.<name>`` whose entry module is ``code``; return its id."""
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "extension.toml").write_text(
        f'id = "test.{name}"\nname = "Test {name}"\nversion = "0.1.0"\nentry = "main"\n'
        'description = "crash reasons"\nactivation_events = ["onStartup"]\n'
        '[permissions]\nfilesystem = "none"\nnetwork = false\nsecrets = []\n'
    )
    (folder / "main.py").write_text(code)
    return f"test.{name}"


def test_an_extension_that_fails_at_import_is_disabled_with_its_own_error(
    make_host: HostFactory, tmp_path: Path
) -> None:
    ext = _extension(
        tmp_path,
        "broken",
        "import sys\n"
        "for i in range(50):\n"
        "    print(f'noise {i} ' + 'x' * 3000, file=sys.stderr)\n"
        "raise RuntimeError('the model file is missing')\n",
    )
    host, rec = make_host([tmp_path], config=FAST)
    with pytest.raises(ExtensionCrashedError):
        host.request(ext, "anything").wait(60)
    spin(lambda: host.state(ext) == DISABLED)
    reason = host.last_error(ext)
    assert "RuntimeError: the model file is missing (exit code 1)" in reason
    assert "cannot load" in reason
    assert "connection" not in reason.lower()  # the symptom the host saw, not the cause
    assert rec.breakers == [(ext, reason)]
    with pytest.raises(ExtensionDisabledError, match="the model file is missing"):
        host.request(ext, "anything").wait()
    # what is kept of stderr is capped in lines and in characters per line
    tail = host.stderr_tail(ext)
    assert len(tail) == STDERR_TAIL_LINES
    assert all(len(line) <= STDERR_LINE_MAX for line in tail)
    assert tail[-1].endswith("RuntimeError: the model file is missing")


def test_a_child_killed_from_outside_is_not_blamed_on_what_it_printed(
    make_host: HostFactory, tmp_path: Path
) -> None:
    ext = _extension(
        tmp_path,
        "talker",
        "import os, sys\n"
        "from symphony.sdk import Extension\n"
        "extension = Extension()\n"
        "@extension.request('warn')\n"
        "def warn(ctx):\n"
        "    print('a harmless warning', file=sys.stderr, flush=True)\n"
        "@extension.request('fail')\n"
        "def fail(ctx):\n"
        "    print('fatal: the index is damaged', file=sys.stderr, flush=True)\n"
        "    os._exit(3)\n",
    )
    host, _ = make_host([tmp_path], config=FAST)
    host.request(ext, "warn").wait(60)
    spin(lambda: host.stderr_tail(ext) == ["a harmless warning"])
    pid = host.pid(ext)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    spin(lambda: host.state(ext) == READY and host.pid(ext) != pid)
    assert "SIGKILL" in host.last_error(ext)
    assert "harmless" not in host.last_error(ext)
    assert host.stderr_tail(ext) == []  # a new start, a new tail
    with pytest.raises(ExtensionCrashedError, match="fatal: the index is damaged"):
        host.request(ext, "fail").wait(60)
    assert host.last_error(ext) == "fatal: the index is damaged (exit code 3)"
