"""The ``symphony`` command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import symphony
from symphony.cli import main
from symphony.pit import Pit
from tests.conftest import folder_listing


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
    Pit.open(tmp_path / "d", key_file=tmp_path / "k").close()
    assert main(["pit", "info", str(tmp_path / "d"), "--key-file", str(tmp_path / "k")]) == 0
    assert "data directory:" in capsys.readouterr().out
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "x").write_text("x")
    assert main(["pit", "info", str(tmp_path / "other"), "--key-file", str(tmp_path / "k")]) == 4
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
        (["pit", "info", str(data), *key], 4, "symphony pit info: "),
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


def test_pit_info_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    key = tmp_path / "k"
    monkeypatch.delenv("SYMPHONY_PIT_KEY_FILE", raising=False)
    typo = tmp_path / "typo_pit"
    assert main(["pit", "info", str(typo), "--key-file", str(key)]) == 4
    assert capsys.readouterr().err == f"symphony pit info: data directory {typo}: no such folder\n"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["pit", "info", str(empty), "--key-file", str(key)]) == 4
    assert "not a Pit data directory" in capsys.readouterr().err
    assert list(empty.iterdir()) == []
    Pit.open(tmp_path / "pit", key_file=key).close()
    missing_key = tmp_path / "other.key"
    assert main(["pit", "info", str(tmp_path / "pit"), "--key-file", str(missing_key)]) == 4
    assert f"key file {missing_key}: no such file" in capsys.readouterr().err
    monkeypatch.setenv("SYMPHONY_PIT_KEY_FILE", str(missing_key))
    assert main(["pit", "info", str(tmp_path / "pit")]) == 4
    assert f"key file {missing_key}: no such file" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "k", "pit"]


def test_pit_info_makes_no_keyring_entry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import keyring

    from symphony.pit.keys import KEYRING_SERVICE

    data = tmp_path / "pit"
    Pit.open(data, key_file=tmp_path / "k").close()  # a Pit whose key is not in the keyring
    entry = f"pit-key:{data.resolve()}"
    assert main(["pit", "info", str(data)]) == 4
    err = capsys.readouterr().err
    assert "the OS keyring has no key for it" in err
    assert err.endswith("was it made with a key file (--key-file)?\n")
    assert keyring.get_password(KEYRING_SERVICE, entry) is None  # nothing was made up
    keyed = tmp_path / "keyed"
    Pit.open(keyed).close()  # its key is made in the keyring
    assert main(["pit", "info", str(keyed)]) == 0
    assert f"data directory: {keyed}" in capsys.readouterr().out


def test_pit_info_exits_4_like_run_and_runs_when_the_data_dir_cannot_open(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = tmp_path / "k"
    with Pit.open(tmp_path / "pit", key_file=key):  # held: the second opener is refused
        assert main(["pit", "info", str(tmp_path / "pit"), "--key-file", str(key)]) == 4
    err = capsys.readouterr().err
    assert err.startswith("symphony pit info: "), err
    assert "in use" in err
    assert err.count(str(tmp_path / "pit")) == 1, err


def test_pit_info_leaves_the_folder_unchanged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    key = tmp_path / "k"
    data = tmp_path / "pit"
    with Pit.open(data, key_file=key) as pit:
        pit.pool.register("m")
        pit.artifacts.put("a", b"hello")
    # no lock file, no archive folder: pit info must not make them, nor checkpoint at close
    (data / "pit.lock").unlink()
    shutil.rmtree(data / "archive")
    before = folder_listing(data)
    assert main(["pit", "info", str(data), "--key-file", str(key)]) == 0
    out = capsys.readouterr().out
    assert "models:         1" in out
    assert "artifacts:      1" in out
    assert folder_listing(data) == before


def test_pit_info_inspects_an_immutable_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    chattr = shutil.which("chattr")
    if chattr is None:
        pytest.skip("chattr is not available")
    key = tmp_path / "k"
    data = tmp_path / "pit"
    with Pit.open(data, key_file=key) as pit:
        pit.artifacts.put("a", b"hello")
    before = folder_listing(data)
    r = subprocess.run([chattr, "-R", "+i", str(data)], capture_output=True, text=True, check=False)
    try:
        if r.returncode != 0:
            pytest.skip(f"chattr +i failed: {r.stderr.strip()}")
        assert main(["pit", "info", str(data), "--key-file", str(key)]) == 0
    finally:
        subprocess.run([chattr, "-R", "-i", str(data)], capture_output=True, check=False)
    assert "artifacts:      1" in capsys.readouterr().out
    assert folder_listing(data) == before
