"""A data directory path that cannot be a folder is refused by name, before anything is made."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from symphony.pit import ForeignDataDirError, Pit, StorageError, check_data_dir


def test_a_file_as_the_data_directory_is_named_as_a_file(tmp_path: Path) -> None:
    data = tmp_path / "pitfile"
    data.write_text("i am a file")
    key = tmp_path / "pit.key"
    with pytest.raises(ForeignDataDirError, match=r"pitfile is a file, not a folder$") as info:
        Pit.open(data, key_file=key)
    assert info.value.subject == str(data)
    assert data.read_text() == "i am a file"  # untouched
    assert not key.exists()  # refused before the key was looked for (or made)


def test_a_data_directory_under_a_file_cannot_be_created(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(
        StorageError, match=r"a/b cannot be created: .*file is a file, not a folder"
    ):
        Pit.open(tmp_path / "file" / "a" / "b", key_file=tmp_path / "pit.key")


def test_a_broken_link_is_named(tmp_path: Path) -> None:
    link = tmp_path / "link"
    os.symlink(tmp_path / "gone", link)
    with pytest.raises(ForeignDataDirError, match="broken symbolic link"):
        check_data_dir(link)


def test_folders_existing_or_to_be_made_pass(tmp_path: Path) -> None:
    check_data_dir(tmp_path)
    check_data_dir(tmp_path / "new" / "deeper")
    os.symlink(tmp_path, tmp_path / "to_dir")
    check_data_dir(tmp_path / "to_dir")
    with Pit.open(tmp_path / "new" / "deeper", key_file=tmp_path / "pit.key") as pit:
        assert pit.data_dir == str(tmp_path / "new" / "deeper")
