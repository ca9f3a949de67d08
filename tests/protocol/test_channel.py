"""The blocking socket channel over a real socketpair."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from symphony.protocol import (
    ConnectionClosedError,
    Ping,
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
