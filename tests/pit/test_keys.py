"""Where the encryption key comes from: explicit key, key file, keyring — never plaintext."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from symphony.pit import EncryptionKeyError, Pit
from symphony.pit.keys import KEY_FILE_ENV, key_from_file, key_from_keyring, resolve_key


def test_key_file_is_created_private_and_reused(tmp_path: Path) -> None:
    kf = tmp_path / "pit.key"
    k1 = key_from_file(kf)
    assert len(k1) == 32
    assert stat.S_IMODE(kf.stat().st_mode) == 0o600
    assert key_from_file(kf) == k1
    assert kf.read_text().strip() == k1.hex()


def test_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    kf = tmp_path / "pit.key"
    key_from_file(kf)
    kf.chmod(0o644)
    with pytest.raises(EncryptionKeyError, match="chmod 600"):
        key_from_file(kf)


@pytest.mark.parametrize(
    ("text", "match"),
    [("zz" * 32, "64 hexadecimal"), ("ab" * 16, "16-byte key"), ("", "0-byte key")],
)
def test_malformed_key_file_is_refused(tmp_path: Path, text: str, match: str) -> None:
    kf = tmp_path / "pit.key"
    fd = os.open(kf, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, text.encode())
    os.close(fd)
    with pytest.raises(EncryptionKeyError, match=match):
        key_from_file(kf)


def test_keyring_entry_is_created_once_per_directory(tmp_path: Path) -> None:
    a = key_from_keyring(tmp_path / "a")
    assert key_from_keyring(tmp_path / "a") == a
    assert key_from_keyring(tmp_path / "b") != a


def test_no_keyring_backend_is_a_clear_error_not_a_fallback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import keyring
    import keyring.backends.fail

    keyring.set_keyring(keyring.backends.fail.Keyring())  # what a headless box has
    with pytest.raises(EncryptionKeyError, match=f"--key-file, key_file=... or {KEY_FILE_ENV}"):
        Pit.open(tmp_path / "p")
    assert not (tmp_path / "p").exists(), "nothing may be written without a key"


def test_sources_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    explicit = bytes(range(32))
    assert resolve_key(tmp_path, explicit, tmp_path / "ignored.key") == explicit
    assert not (tmp_path / "ignored.key").exists()
    env_file = tmp_path / "env.key"
    monkeypatch.setenv(KEY_FILE_ENV, str(env_file))
    from_env = resolve_key(tmp_path, None, None)
    assert env_file.exists()
    assert resolve_key(tmp_path, None, tmp_path / "arg.key") != from_env
    with pytest.raises(TypeError, match="argument 'key'"):
        resolve_key(tmp_path, "text", None)  # type: ignore[arg-type]


def test_open_with_keyring_and_key_file(tmp_path: Path) -> None:
    with Pit.open(tmp_path / "kr"):
        pass
    with Pit.open(tmp_path / "kr"):  # same keyring entry, same key
        pass
    kf = tmp_path / "k"
    with Pit.open(tmp_path / "kf", key_file=kf):
        pass
    with Pit.open(tmp_path / "kf", key_file=kf):
        pass


def test_an_existing_pit_gets_no_new_key(tmp_path: Path) -> None:
    import keyring

    from symphony.pit.keys import KEYRING_SERVICE

    data, kf = tmp_path / "pit", tmp_path / "k"
    Pit.open(data, key_file=kf).close()
    typo = tmp_path / "kk"
    with pytest.raises(EncryptionKeyError, match=f"key file {typo}: no such file; the Pit in"):
        Pit.open(data, key_file=typo)
    assert not typo.exists()  # a mistyped key file is named, not made
    with pytest.raises(EncryptionKeyError, match="the OS keyring has no key for it"):
        Pit.open(data)
    assert keyring.get_password(KEYRING_SERVICE, f"pit-key:{data.resolve()}") is None
    Pit.open(data, key_file=kf).close()  # the right key still opens it


def test_a_keyring_that_keeps_nothing_is_refused(tmp_path: Path) -> None:
    import keyring
    import keyring.backends.null

    keyring.set_keyring(keyring.backends.null.Keyring())  # what `keyring --disable` selects
    with pytest.raises(EncryptionKeyError, match="did not keep the new key"):
        Pit.open(tmp_path / "p")
    assert not (tmp_path / "p").exists()


def test_a_keyring_backend_that_cannot_load_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import keyring

    def broken() -> object:
        raise ModuleNotFoundError("No module named 'nonexistent'")

    monkeypatch.setattr(keyring, "get_password", lambda *_a: broken())
    with pytest.raises(EncryptionKeyError, match="keyring is not available.*nonexistent"):
        Pit.open(tmp_path / "p")
