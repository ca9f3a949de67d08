"""The blocking socket channel over a real socketpair."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

import pytest

from symphony.protocol import (
    ConnectionClosedError,
    Ping,
    Pong,
    ProtocolViolation,
    Request,
    ResourceLimitError,
    Response,
    SocketChannel,
    encode,
)


@pytest.fixture
def pair() -> Iterator[tuple[SocketChannel, SocketChannel]]:
    a, b = socket.socketpair()
    ca, cb = SocketChannel(a, 1 << 20), SocketChannel(b, 1 << 20)
    yield ca, cb
    ca.close()
    cb.close()


def test_send_recv_and_big_bodies(pair: tuple[SocketChannel, SocketChannel]) -> None:
    a, b = pair
    body = bytes(range(256)) * 3000  # larger than the socket buffer: a thread must read
    t = threading.Thread(target=a.send, args=(Request(1, "m", {"k": 1}, body),))
    t.start()
    assert b.recv(5) == Request(1, "m", {"k": 1}, body)
    t.join()
    a.send_many([Ping(1), Ping(2)])
    assert [b.recv(5), b.recv(5)] == [Ping(1), Ping(2)]


def test_recv_timeout_keeps_partial_bytes(pair: tuple[SocketChannel, SocketChannel]) -> None:
    a, b = pair
    frame = encode(Response(7, "ok"))
    a.sock.sendall(frame[:6])
    with pytest.raises(TimeoutError):
        b.recv(0.05)
    a.sock.sendall(frame[6:])
    assert b.recv(5) == Response(7, "ok")


def test_eof(pair: tuple[SocketChannel, SocketChannel]) -> None:
    a, b = pair
    a.send(Ping(1))
    a.sock.shutdown(socket.SHUT_WR)
    assert b.recv(5) == Ping(1)
    assert b.recv(5) is None
    assert b.recv(5) is None


def test_eof_mid_frame(pair: tuple[SocketChannel, SocketChannel]) -> None:
    a, b = pair
    a.sock.sendall(encode(Ping(1))[:7])
    a.sock.shutdown(socket.SHUT_WR)
    with pytest.raises(ConnectionClosedError):
        b.recv(5)


def test_limits(pair: tuple[SocketChannel, SocketChannel]) -> None:
    a, b = pair
    b.set_max_frame(4096)
    assert b.max_frame == 4096
    with pytest.raises(ResourceLimitError):
        b.send(Response(1, None, bytes(5000)))
    a.send(Response(1, None, bytes(5000)))
    with pytest.raises(ProtocolViolation):
        b.recv(5)


# --- linger: a bounded non-blocking read before blocking ---------------------------------------


def _later(delay: float, fn: object, *args: object) -> threading.Thread:
    t = threading.Timer(delay, fn, args)  # type: ignore[arg-type]
    t.start()
    return t


@contextlib.contextmanager
def _lingering(linger: float) -> Iterator[tuple[SocketChannel, SocketChannel]]:
    """A plain channel and, on the other end, one that lingers ``linger`` seconds."""
    a, b = socket.socketpair()
    ca, cb = SocketChannel(a), SocketChannel(b, linger=linger)
    try:
        yield ca, cb
    finally:
        ca.close()
        cb.close()


@pytest.mark.parametrize("linger", [5.0, 0.0], ids=["linger", "no-linger"])
def test_a_message_arriving_later_is_received(linger: float) -> None:
    # lingering: caught by the linger (no miss); linger 0: a blocking read at once
    with _lingering(linger) as (ca, cb):
        t = _later(0.01, ca.send, Ping(7))
        assert cb.recv() == Ping(7)
        t.join()
        assert (cb._linger_misses, cb._linger_skip) == (0, 0)


def test_a_frame_completed_during_the_linger_is_caught_by_it() -> None:
    with _lingering(5.0) as (ca, cb):
        frame = encode(Request(1, "m", {"k": [1, 2]}, b"\x00" * 100))
        ca.sock.sendall(frame[:7])
        t = _later(0.01, ca.sock.sendall, frame[7:])
        assert cb.recv() == Request(1, "m", {"k": [1, 2]}, b"\x00" * 100)
        t.join()


def test_a_linger_that_catches_nothing_backs_off() -> None:
    with _lingering(0.001) as (ca, cb):
        for i, (misses, skip) in enumerate([(1, 1), (1, 0), (2, 2), (2, 1), (2, 0), (3, 4)]):
            t = _later(0.05, ca.send, Ping(i))  # after the 1 ms linger: it blocks then
            assert cb.recv() == Ping(i)
            t.join()
            assert (cb._linger_misses, cb._linger_skip) == (misses, skip)
        for i in range(4):  # the four skipped: each blocks at once
            ca.send(Ping(10 + i))
            assert cb.recv() == Ping(10 + i)
        assert (cb._linger_misses, cb._linger_skip) == (3, 0)
        ca.send(Ping(99))  # already there: the linger catches it, which ends the back-off
        assert cb.recv() == Ping(99)
        assert (cb._linger_misses, cb._linger_skip) == (0, 0)


def test_an_answer_soon_after_our_send_ends_the_back_off() -> None:
    with _lingering(0.001) as (ca, cb):
        t = _later(0.05, ca.send, Ping(1))
        assert cb.recv() == Ping(1)  # missed: the next linger is skipped
        t.join()
        assert (cb._linger_misses, cb._linger_skip) == (1, 1)
        cb.linger = 5.0  # from now on any answer to our send comes "soon"
        t = _later(0.05, ca.send, Pong(2))
        cb.send(Ping(2))
        assert cb.recv() == Pong(2)  # a blocking read (skipped linger), 50 ms after our send
        t.join()
        assert (cb._linger_misses, cb._linger_skip) == (0, 0)


def test_linger_ends_at_end_of_stream() -> None:
    with _lingering(5.0) as (ca, cb):
        t = _later(0.01, ca.sock.shutdown, socket.SHUT_WR)
        assert cb.recv() is None
        t.join()


def test_no_linger_on_a_socket_with_a_timeout() -> None:
    # A read on such a socket waits out its timeout first, whatever the flags: the linger would
    # then block (and raise TimeoutError) instead of spinning.
    with _lingering(5.0) as (ca, cb):
        cb.sock.settimeout(0.5)
        assert cb._linger() == -1
        ca.send(Ping(1))
        assert cb.recv() == Ping(1)
