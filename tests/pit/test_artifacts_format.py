"""Decrypt stored blobs with nothing but the key, `cryptography` and `zstandard`.

This is the check that ``docs/artifact-format.md`` is precise enough for another implementation.
"""

from __future__ import annotations

import hashlib
import os
import random
import struct
from pathlib import Path

import pytest
import zstandard
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from symphony.pit import Pit

KEY = bytes(range(32))  # the key the open_pit fixture uses


def decrypt_object(key: bytes, obj: bytes) -> tuple[bytes, bytes]:
    """Return (plaintext, blake3 from the header) of one object, per the documented format."""
    assert obj[:8] == b"PITOBJ01"
    version, flags = obj[8], obj[9]
    assert version == 1
    assert flags & ~1 == 0
    n, plain_len = struct.unpack_from("<IQ", obj, 12)
    content_hash = obj[24:56]
    nonce = obj[56:68]
    assert len(obj) == 68 + n
    payload = AESGCM(key).decrypt(nonce, obj[68:], obj[:68])
    if flags & 1:
        plain = zstandard.ZstdDecompressor().decompress(payload, max_output_size=plain_len)
    else:
        plain = payload
    assert len(plain) == plain_len
    return plain, content_hash


def decrypt_export(key: bytes, stored: bytes) -> bytes:
    """Plaintext of an export: one object, or a PITMAN01 container of objects."""
    if stored[:8] == b"PITOBJ01":
        return decrypt_object(key, stored)[0]
    assert stored[:8] == b"PITMAN01"
    (count,) = struct.unpack_from("<I", stored, 8)
    (total,) = struct.unpack_from("<Q", stored, 16)
    pos, parts = 56, []
    for _ in range(count):
        (n,) = struct.unpack_from("<I", stored, pos + 12)
        parts.append(decrypt_object(key, stored[pos : pos + 68 + n])[0])
        pos += 68 + n
    assert pos == len(stored)
    plain = b"".join(parts)
    assert len(plain) == total
    return plain


def test_small_blobs_decrypt_with_cryptography_and_zstandard() -> None:
    p = Pit.in_memory(key=KEY)
    a = p.artifacts
    text = b"compressible text, compressible text, compressible text\n" * 50
    noise = os.urandom(3000)
    tiny = b"hi"
    for data in (text, noise, tiny):
        i = a.put(f"d{len(data)}", data)
        stored = a.export_stored(i)
        plain, _ = decrypt_object(KEY, stored)
        assert plain == data
    assert a.export_stored(a.resolve(f"d{len(text)}"))[9] == 1  # compressed
    assert a.export_stored(a.resolve(f"d{len(noise)}"))[9] == 0  # stored raw
    p.close()


def test_chunked_blob_export_decrypts() -> None:
    p = Pit.in_memory(key=KEY)
    rng = random.Random(3)
    data = b"".join(
        rng.randbytes(1 << 16) if rng.random() < 0.5 else b"abcdefgh" * (1 << 13) for _ in range(80)
    )
    i = p.artifacts.put("big", data)
    stored = p.artifacts.export_stored(i)
    assert stored[:8] == b"PITMAN01"
    assert decrypt_export(KEY, stored) == data
    p.close()


def test_segment_file_objects_decrypt(tmp_path: Path) -> None:
    p = Pit.open(tmp_path / "pit", key=KEY)
    blobs = [b"artifact number %d " % i * (i + 1) for i in range(20)]
    for i, b in enumerate(blobs):
        p.artifacts.put(f"a{i}", b)
    p.close()
    raw = (tmp_path / "pit" / "artifacts" / "seg-00000001.dat").read_bytes()
    pos, found = 0, []
    while pos < len(raw):
        (n,) = struct.unpack_from("<I", raw, pos + 12)
        found.append(decrypt_object(KEY, raw[pos : pos + 68 + n])[0])
        pos += 68 + n
    assert found == blobs


def test_header_is_authenticated() -> None:
    p = Pit.in_memory(key=KEY)
    stored = bytearray(p.artifacts.export_stored(p.artifacts.put("x", b"payload" * 100)))
    stored[30] ^= 1  # inside the content hash: AAD no longer matches
    with pytest.raises(InvalidTag):
        decrypt_object(KEY, bytes(stored))
    p.close()


def test_wrong_key_fails() -> None:
    p = Pit.in_memory(key=KEY)
    stored = p.artifacts.export_stored(p.artifacts.put("x", b"secret"))
    with pytest.raises(InvalidTag):
        decrypt_object(hashlib.sha256(b"other").digest(), stored)
    p.close()
