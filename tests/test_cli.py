"""The ``symphony`` command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import symphony
from symphony.cli import main


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"symphony {symphony.__version__}"


def test_module_entry_point() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "symphony", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.startswith("symphony ")


def test_pit_info(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pit", "info", str(tmp_path / "d"), "--key-file", str(tmp_path / "k")]) == 0
    assert "data directory:" in capsys.readouterr().out
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "x").write_text("x")
    assert main(["pit", "info", str(tmp_path / "other"), "--key-file", str(tmp_path / "k")]) == 2
    assert "not a Pit data directory" in capsys.readouterr().err
