"""The ``symphony`` command line."""

from __future__ import annotations

import json
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


def test_a_data_dir_that_is_a_file_is_named_as_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "pitfile"
    data.write_text("i am a file")
    melody = tmp_path / "m.melody"
    key = ["--key-file", str(tmp_path / "k")]
    commands = [
        (["run", str(melody), "--data-dir", str(data), *key], 4, "symphony run: "),
        (["runs", "--data-dir", str(data), *key], 4, "symphony runs: "),
        (["pit", "info", str(data), *key], 2, "symphony: "),
    ]
    for argv, code, prefix in commands:
        assert main(argv) == code, argv
        err = capsys.readouterr().err
        assert err.startswith(prefix), err
        assert f"{data} is a file, not a folder" in err, err
        assert "Errno" not in err
        assert "no such folder" not in err
    assert main(["run", str(melody), "--json", "--data-dir", str(data / "sub"), *key]) == 4
    out = json.loads(capsys.readouterr().out)
    assert out == {
        "error": f"data directory {data / 'sub'} cannot be created: {data} is a file, not a folder",
        "exit_code": 4,
    }
    assert main(["runs", "--json", "--data-dir", str(data), *key]) == 4
    assert json.loads(capsys.readouterr().out)["error"].endswith(f"{data} is a file, not a folder")
    assert data.read_text() == "i am a file"
    assert not (tmp_path / "k").exists()
