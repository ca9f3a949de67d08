"""The authenticated handshake: success, wrong token, replayed hello, version mismatch."""

from __future__ import annotations

import io
import socket
import threading

import pytest

from symphony.protocol import (
    AuthenticationError,
    ChildHandshake,
    ErrorCode,
    ErrorResponse,
    HandshakeError,
    Hello,
    HostHandshake,
    IncompatibleProtocolError,
    ProtocolViolation,
    Request,
    Session,
    SocketChannel,
    Welcome,
    new_token,
    read_token,
    write_token,
)
from symphony.protocol._record import replace
from symphony.protocol.codec import HANDSHAKE_MAX_FRAME, MIN_MAX_FRAME
from symphony.protocol.handshake import hmac_sha256

TOKEN = new_token()


def child(token: bytes = TOKEN, **kw: object) -> ChildHandshake:
    return ChildHandshake(token, "ext", "1.0", capabilities={"methods": {}}, **kw)  # type: ignore[arg-type]


def test_success_agrees_on_the_same_session() -> None:
    host, ch = HostHandshake(TOKEN, max_frame=1 << 20, capabilities={"x": 1}), child()
    welcome = host.accept(ch.hello(host.challenge()))
    session = ch.finish(welcome)
    assert session == host.session
    assert session.protocol == 1
    assert session.max_frame == 1 << 20
    assert session.host_capabilities == {"x": 1}
    assert session.extension_id == "ext"


def test_limits_take_the_smaller_frame_and_pending() -> None:
    host = HostHandshake(TOKEN, max_frame=1 << 24, limits={"max_pending": 10})
    ch = child(max_frame=8192, max_pending=4)
    session = ch.finish(host.accept(ch.hello(host.challenge())))
    assert session.max_frame == 8192
    assert session.limits["max_pending"] == 4
    tiny = HostHandshake(TOKEN, max_frame=1)
    ch2 = child()
    assert ch2.finish(tiny.accept(ch2.hello(tiny.challenge()))).max_frame == MIN_MAX_FRAME


def test_wrong_token_is_unauthorized() -> None:
    host, ch = HostHandshake(TOKEN), child(new_token())
    with pytest.raises(AuthenticationError) as info:
        host.accept(ch.hello(host.challenge()))
    assert info.value.code == ErrorCode.UNAUTHORIZED
    assert info.value.fatal
    reject = host.reject(info.value)
    assert reject == ErrorResponse(None, ErrorCode.UNAUTHORIZED, info.value.message)
    with pytest.raises(AuthenticationError):
        ch.finish(reject)


def test_replayed_hello_fails() -> None:
    first = HostHandshake(TOKEN)
    recorded = child().hello(first.challenge())
    first.accept(recorded)
    # the same token (worst case: reused) but a new connection: a new host nonce
    second = HostHandshake(TOKEN)
    with pytest.raises(AuthenticationError):
        second.accept(recorded)
    # and a hello cannot be accepted twice on one connection
    with pytest.raises(ProtocolViolation):
        first.accept(recorded)


def test_tampered_hello_fails() -> None:
    host = HostHandshake(TOKEN)
    hello = child().hello(host.challenge())
    forged = replace(hello, extension_id="other")
    with pytest.raises(AuthenticationError):
        host.accept(forged)


def test_forged_welcome_fails_on_the_child() -> None:
    host, ch = HostHandshake(TOKEN), child()
    welcome = host.accept(ch.hello(host.challenge()))
    with pytest.raises(AuthenticationError):
        ch.finish(replace(welcome, limits={**welcome.limits, "max_frame": 1 << 30}))


def test_version_mismatch_is_a_distinct_fatal_code() -> None:
    host = HostHandshake(TOKEN, protocols=(2, 4))
    ch = child()
    with pytest.raises(IncompatibleProtocolError) as info:
        host.accept(ch.hello(host.challenge()))
    assert info.value.code == ErrorCode.INCOMPATIBLE_PROTOCOL == -32006
    assert info.value.fatal
    assert info.value.data == {"host": [2, 4], "extension": [1, 1]}
    with pytest.raises(IncompatibleProtocolError):
        ch.finish(host.reject(info.value))


def test_highest_common_version_is_chosen() -> None:
    host = HostHandshake(TOKEN, protocols=(1, 5))
    ch = child(protocols=(3, 9))
    assert ch.finish(host.accept(ch.hello(host.challenge()))).protocol == 5


def test_child_refuses_a_version_outside_its_range() -> None:
    host = HostHandshake(TOKEN, protocols=(1, 5))
    ch = child(protocols=(1, 2))
    hello = ch.hello(host.challenge())
    # a buggy host ignoring the child's range (MAC it correctly to reach the version check)
    from symphony.protocol.handshake import welcome_mac

    w = Welcome(5, {}, {"max_frame": 8192})
    w = replace(w, mac=welcome_mac(TOKEN, hello.mac, w))
    with pytest.raises(IncompatibleProtocolError):
        ch.finish(w)


def test_out_of_order_messages() -> None:
    host, ch = HostHandshake(TOKEN), child()
    with pytest.raises(ProtocolViolation):
        host.accept(Request(1, "m"))
    with pytest.raises(ProtocolViolation):
        ch.hello(Request(1, "m"))
    with pytest.raises(ProtocolViolation):
        ch.finish(Request(1, "m"))
    ch.hello(HostHandshake(TOKEN).challenge())
    with pytest.raises(ProtocolViolation):
        ch.hello(HostHandshake(TOKEN).challenge())
    with pytest.raises(ProtocolViolation):
        ch.finish(Request(1, "m"))


def test_host_choosing_a_frame_cap_above_the_child_is_refused() -> None:
    host, ch = HostHandshake(TOKEN), child(max_frame=8192)
    hello = ch.hello(host.challenge())
    from symphony.protocol.handshake import welcome_mac

    w = Welcome(1, {}, {"max_frame": 1 << 20})
    w = replace(w, mac=welcome_mac(TOKEN, hello.mac, w))
    with pytest.raises(HandshakeError, match="max_frame"):
        ch.finish(w)


def test_token_io() -> None:
    buf = io.BytesIO()
    write_token(buf, TOKEN)
    assert buf.getvalue() == TOKEN.hex().encode() + b"\n"
    buf.seek(0)
    assert read_token(buf) == TOKEN
    for bad in (b"", b"abc\n", b"zz" * 32 + b"\n", TOKEN.hex().encode()[:-1] + b"\n"):
        with pytest.raises(AuthenticationError):
            read_token(io.BytesIO(bad))
    with pytest.raises(ValueError, match="32 bytes"):
        write_token(io.BytesIO(), b"short")
    with pytest.raises(ValueError, match="32 bytes"):
        HostHandshake(b"short")
    assert new_token() != new_token()


def test_handshake_over_a_socketpair() -> None:
    a, b = socket.socketpair()
    host_ch, child_ch = SocketChannel(a), SocketChannel(b)
    result: list[Session] = []

    def run_child() -> None:
        ch = child()
        challenge = child_ch.recv(5)
        assert challenge is not None
        child_ch.send(ch.hello(challenge))
        reply = child_ch.recv(5)
        assert reply is not None
        result.append(ch.finish(reply))

    t = threading.Thread(target=run_child)
    t.start()
    host = HostHandshake(TOKEN)
    host_ch.send(host.challenge())
    hello = host_ch.recv(5)
    assert isinstance(hello, Hello)
    assert host_ch.max_frame == HANDSHAKE_MAX_FRAME
    host_ch.send(host.accept(hello))
    t.join(5)
    assert result == [host.session]
    host_ch.close()
    child_ch.close()


# RFC 4231, test cases 1, 2, 4, 6 and 7 (HMAC-SHA-256): keys shorter than, equal to and longer
# than the 64-byte block.
RFC4231 = [
    (b"\x0b" * 20, b"Hi There",
     "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
    (b"Jefe", b"what do ya want for nothing?",
     "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
    (bytes(range(1, 26)), b"\xcd" * 50,
     "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
    (b"\xaa" * 131, b"Test Using Larger Than Block-Size Key - Hash Key First",
     "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
    (b"\xaa" * 131,
     b"This is a test using a larger than block-size key and a larger than block-size data. "
     b"The key needs to be hashed before being used by the HMAC algorithm.",
     "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"),
]  # fmt: skip


@pytest.mark.parametrize(("key", "message", "expected"), RFC4231)
def test_hmac_sha256_matches_rfc_4231(key: bytes, message: bytes, expected: str) -> None:
    assert hmac_sha256(key, message).hex() == expected


def test_hmac_sha256_matches_the_standard_library() -> None:
    import hashlib
    import hmac
    import random

    rng = random.Random(4231)
    for n in range(200):
        key = rng.randbytes(rng.choice([0, 1, 32, 63, 64, 65, 200]))
        message = rng.randbytes(n * 7)
        assert hmac_sha256(key, message) == hmac.new(key, message, hashlib.sha256).digest()


def test_a_childs_start_does_not_load_openssl() -> None:
    import subprocess
    import sys

    probe = (
        "import sys, symphony.sdk.runner\n"
        "print(sorted({'hashlib', '_hashlib', 'hmac'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
