"""Where the Artifact Store's encryption key comes from.

Three explicit sources, tried in this order, never a silent plaintext fallback:

1. ``key=`` — 32 bytes passed by the caller.
2. ``key_file=`` (or the ``SYMPHONY_PIT_KEY_FILE`` environment variable) — a file holding the key
   as 64 hexadecimal characters. It is created (mode 0600) with a fresh random key when missing;
   an existing file readable by group or others is refused.
3. The OS keyring (service ``symphony-aide``, one entry per data directory), created on first use.
   With no keyring backend (a headless Linux box), a backend that cannot be loaded, or one that
   does not keep what it is given (the null backend), this fails with :class:`EncryptionKeyError`
   saying how to choose a key file instead.

A new key (file or keyring entry) is made only for a new Pit: a data directory that already holds
one (its ``PIT`` manifest) was made with a key, and a new one could not read it, so a mistyped key
file or a missing keyring entry is an error naming it, not a fresh key.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from symphony.pit.errors import EncryptionKeyError

KEY_FILE_ENV = "SYMPHONY_PIT_KEY_FILE"
KEYRING_SERVICE = "symphony-aide"
KEY_BYTES = 32
#: the file every Pit data directory has (written at creation)
MANIFEST = "PIT"


def _parse(text: str, origin: str) -> bytes:
    t = text.strip()
    try:
        key = bytes.fromhex(t)
    except ValueError:
        raise EncryptionKeyError(
            f"{origin} does not hold a key: expected {KEY_BYTES * 2} hexadecimal characters", origin
        ) from None
    if len(key) != KEY_BYTES:
        raise EncryptionKeyError(
            f"{origin} holds a {len(key)}-byte key; expected {KEY_BYTES} bytes "
            f"({KEY_BYTES * 2} hexadecimal characters)",
            origin,
        )
    return key


def key_from_file(path: str | os.PathLike[str]) -> bytes:
    """Read the key in ``path``, creating the file with a new random key when it is missing.

    Parameters
    ----------
    path
        The key file.

    Returns
    -------
    bytes
        The 32-byte key.

    Raises
    ------
    EncryptionKeyError
        When the file is malformed, unreadable, or readable by group or others.
    """
    p = Path(path)
    try:
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    except OSError as e:
        raise EncryptionKeyError(f"cannot create key file {p}: {e.strerror}", str(p)) from e
    else:
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_bytes(KEY_BYTES).hex() + "\n")
            f.flush()
            os.fsync(f.fileno())
    try:
        mode = p.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise EncryptionKeyError(
                f"key file {p} is accessible by group or others (mode {stat.S_IMODE(mode):o}); "
                f"run: chmod 600 {p}",
                str(p),
            )
        text = p.read_text(encoding="ascii")
    except UnicodeDecodeError:
        raise EncryptionKeyError(f"key file {p} is not text", str(p)) from None
    except OSError as e:
        raise EncryptionKeyError(f"cannot read key file {p}: {e.strerror}", str(p)) from e
    return _parse(text, f"key file {p}")


def key_from_keyring(data_dir: str | os.PathLike[str], *, create: bool = True) -> bytes:
    """Fetch (or create) the key of ``data_dir`` in the OS keyring.

    Parameters
    ----------
    data_dir
        The Pit data directory; its absolute path names the keyring entry.
    create
        Make a new key when the entry is missing; ``False`` (an inspection that must change
        nothing) raises instead.

    Returns
    -------
    bytes
        The 32-byte key.

    Raises
    ------
    EncryptionKeyError
        When no keyring backend is available or it refuses the request, or the entry is
        missing and ``create`` is false.
    """
    entry = f"pit-key:{Path(data_dir).resolve()}"
    instead = f"choose a key file (--key-file, key_file=... or {KEY_FILE_ENV})"
    try:
        import keyring

        stored = keyring.get_password(KEYRING_SERVICE, entry)
        if stored is None and not create:
            raise EncryptionKeyError(f"the OS keyring has no key for it (entry {entry!r})", entry)
        if stored is None:
            stored = secrets.token_bytes(KEY_BYTES).hex()
            keyring.set_password(KEYRING_SERVICE, entry, stored)
            # A backend may accept and drop it (the null one): data encrypted with a key
            # nobody kept is lost at the next open.
            if keyring.get_password(KEYRING_SERVICE, entry) != stored:
                raise EncryptionKeyError(
                    f"the OS keyring ({type(keyring.get_keyring()).__name__}) did not keep the "
                    f"new key for entry {entry!r}; {instead}",
                    entry,
                )
    except EncryptionKeyError:
        raise
    except Exception as e:  # noqa: BLE001 - a backend that fails to load raises anything
        raise EncryptionKeyError(
            f"the OS keyring is not available ({type(e).__name__}: {e}); {instead}", entry
        ) from e
    return _parse(stored, f"keyring entry {entry!r}")


def resolve_key(
    data_dir: str | os.PathLike[str],
    key: bytes | None,
    key_file: str | os.PathLike[str] | None,
) -> bytes:
    """Pick the key per the module's order of sources.

    Parameters
    ----------
    data_dir
        The Pit data directory.
    key
        An explicit key, or ``None``.
    key_file
        An explicit key file, or ``None`` (then ``SYMPHONY_PIT_KEY_FILE``, then the keyring).

    Returns
    -------
    bytes
        The 32-byte key.
    """
    if key is not None:
        if not isinstance(key, bytes | bytearray | memoryview):
            raise TypeError(f"argument 'key': expected bytes, got {type(key).__name__}")
        return bytes(key)
    if key_file is None:
        key_file = os.environ.get(KEY_FILE_ENV) or None
    # only a new Pit gets a new key (see the module's docstring)
    if not (Path(data_dir) / MANIFEST).is_file():
        return key_from_keyring(data_dir) if key_file is None else key_from_file(key_file)
    needs = f"the Pit in {data_dir} exists, so it needs the key it was made with"
    if key_file is None:
        try:
            return key_from_keyring(data_dir, create=False)
        except EncryptionKeyError as e:
            raise EncryptionKeyError(
                f"{e}; {needs}: was it made with a key file (--key-file)?", e.subject
            ) from e.__cause__
    if not os.path.lexists(key_file):
        raise EncryptionKeyError(
            f"key file {key_file}: no such file; {needs}, not a new one", os.fspath(key_file)
        )
    return key_from_file(key_file)
