"""The frozen bundle's extension children: ``symphony --run-extension <folder> --fd N``.

A bundle has no interpreter that takes ``-m``; the launcher then starts ``sys.executable`` (the
``symphony`` executable) with the dispatch flag, and :func:`symphony.cli.main` hands over to the
runner before importing anything else. The end-to-end test stands in for the frozen executable
with a wrapper script that ``exec``s ``python -m symphony "$@"``: the same argv, the same entry
point, the same process (so the runner's peer check still sees the host as its parent).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from symphony.cli import main
from symphony.extension_host import launcher
from symphony.extension_host.launcher import RUN_EXTENSION_FLAG, runner_command
from symphony.sdk.runtime import EXIT_USAGE

FE = "symphony.file_explorer"


def test_the_cli_dispatches_on_the_launcher_flag(capsys: pytest.CaptureFixture[str]) -> None:
    assert RUN_EXTENSION_FLAG == "--run-extension"
    assert main([RUN_EXTENSION_FLAG]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "symphony extension runner: usage" in err


def test_the_dispatch_takes_the_flag_only_first(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["pit", RUN_EXTENSION_FLAG])
    assert info.value.code == 2  # argparse's usage error, not the runner
    assert "symphony extension runner" not in capsys.readouterr().err


def test_the_dispatched_child_never_imports_qt_or_torch() -> None:
    code = (
        "import sys\n"
        "from symphony.cli import main\n"
        f"rc = main([{RUN_EXTENSION_FLAG!r}, 'nowhere', '--fd', 'x'])\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('PySide6', 'torch'))\n"
        "print(rc, heavy)\n"
    )
    out = subprocess.run(
        [sys.executable, "-I", "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert out.stdout.strip() == f"{EXIT_USAGE} []"


def test_runner_command_frozen_and_not(tmp_path: Path) -> None:
    folder = tmp_path / "ext one"
    assert runner_command("/opt/Symphony/symphony", folder, 7, frozen=True) == [
        "/opt/Symphony/symphony",
        RUN_EXTENSION_FLAG,
        str(folder),
        "--fd",
        "7",
    ]
    assert runner_command("/usr/bin/python3", folder, 7, frozen=False) == [
        "/usr/bin/python3",
        "-I",
        "-m",
        "symphony.sdk.runner",
        str(folder),
        "--fd",
        "7",
    ]


def test_runner_command_frozen_passes_the_channel_and_identity(tmp_path: Path) -> None:
    identity = ("x.ext", "1.0.0", "main")
    argv = runner_command("/opt/S/symphony", tmp_path, "/run/s/sock", identity, frozen=True)
    assert argv == [
        "/opt/S/symphony",
        RUN_EXTENSION_FLAG,
        str(tmp_path),
        "--connect",
        "/run/s/sock",
        "--id",
        "x.ext",
        "--version",
        "1.0.0",
        "--entry",
        "main",
    ]
    unfrozen = runner_command("py", tmp_path, "/run/s/sock", identity, frozen=False)
    assert unfrozen[:4] == ["py", "-I", "-m", "symphony.sdk.runner"]
    assert unfrozen[4:] == argv[2:]


def test_runner_command_follows_sys_frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    assert runner_command("py", Path("/x"), 3)[1] == "-I"
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert runner_command("exe", Path("/x"), 3)[1] == RUN_EXTENSION_FLAG


@pytest.fixture
def fake_frozen_exe(tmp_path: Path) -> Path:
    """An executable in a folder with spaces that behaves like the bundle's ``symphony``."""
    folder = tmp_path / "Sÿmphony ünï"
    folder.mkdir()
    exe = folder / "symphony"
    app = Path(__file__).resolve().parents[2] / "app"
    exe.write_text(
        "#!/bin/sh\n"
        # the child's environment is an allowlist without PYTHONPATH: say where the app is
        f"export PYTHONPATH={shlex.quote(str(app))}\n"
        f'exec {shlex.quote(sys.executable)} -m symphony "$@"\n',
        encoding="utf-8",
    )
    exe.chmod(0o755)
    return exe


@pytest.fixture
def qapp() -> object:
    from PySide6.QtCore import QCoreApplication

    return QCoreApplication.instance() or QCoreApplication([])


def test_a_frozen_host_runs_a_real_extension_through_the_flag(
    monkeypatch: pytest.MonkeyPatch, fake_frozen_exe: Path, tmp_path: Path, qapp: object
) -> None:
    from symphony.extension_host.discovery import bundled_dir
    from symphony.extension_host.host import READY, ExtensionHost
    from symphony.extension_host.manifest import parse_manifest

    monkeypatch.setattr(sys, "frozen", True, raising=False)
    started: list[list[str]] = []
    real_popen = launcher.subprocess.Popen

    def recording_popen(argv: list[str], **kw: object) -> subprocess.Popen[bytes]:
        started.append(list(argv))
        return real_popen(argv, **kw)  # type: ignore[call-overload, no-any-return]

    monkeypatch.setattr(launcher.subprocess, "Popen", recording_popen)
    ws = tmp_path / "work space"
    ws.mkdir()
    (ws / "notes ü.md").write_text("hello", encoding="utf-8")
    host = ExtensionHost([bundled_dir()], workspace=ws, python=str(fake_frozen_exe))
    try:
        listing = host.request(FE, "files.list", {"path": ""}).wait().result
        assert host.state(FE) == READY
        pid = host.pid(FE)
        assert pid is not None
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    finally:
        host.shutdown(grace=5)
    assert [e["name"] for e in listing["entries"]] == ["notes ü.md"]
    folder = str(bundled_dir() / "file_explorer")
    assert len(started) == 1
    argv = started[0]
    assert argv[:4] == [str(fake_frozen_exe), RUN_EXTENSION_FLAG, folder, "--fd"]
    assert argv[4].isdigit()
    # the manifest's identity rides along; `--version` here is the runner's, not the CLI's
    m = parse_manifest(bundled_dir() / "file_explorer")
    assert argv[5:] == ["--id", FE, "--version", m.version, "--entry", m.entry]
    # the child is python running `-m symphony --run-extension …` in the wrapper's process
    assert cmdline[1:5] == [
        b"-m",
        b"symphony",
        RUN_EXTENSION_FLAG.encode(),
        os.fsencode(bundled_dir() / "file_explorer"),
    ]
