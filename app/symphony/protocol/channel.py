"""A blocking, thread-safe message channel over a connected stream socket.

Used by the extension child (one reader thread, any number of sending threads) and by plain-socket
hosts such as the test harness. A Qt host does not need it: it feeds what ``QLocalSocket`` reads
into a :class:`~symphony.protocol.codec.FrameDecoder` and writes :func:`encode` output itself.
"""

from __future__ import annotations

import _socket  # not `socket`: its enums and `selectors` cost ~3 ms at every child start
import select
import threading
import time
from collections import deque
from collections.abc import Iterable

from symphony.protocol.codec import HANDSHAKE_MAX_FRAME, FrameDecoder, encode
from symphony.protocol.errors import ConnectionClosedError
from symphony.protocol.messages import Message


class SocketChannel:
    """Send and receive messages over ``sock``.

    Parameters
    ----------
    sock
        A connected ``SOCK_STREAM`` socket (an inherited socketpair end, an AF_UNIX connection).
    max_frame
        The cap for both directions; starts at the handshake cap, raise it with
        :meth:`set_max_frame` once the session is agreed.
    recv_size
        Bytes read per ``recv`` call.
    """

    def __init__(
        self, sock: _socket.socket, max_frame: int = HANDSHAKE_MAX_FRAME, recv_size: int = 65536
    ) -> None:
        self.sock = sock
        self.decoder = FrameDecoder(max_frame)
        self._pending: deque[Message] = deque()
        self._send_lock = threading.Lock()
        self._buf = bytearray(recv_size)
        self._view = memoryview(self._buf)
        self._eof = False

    @property
    def max_frame(self) -> int:
        """The current frame cap (both directions)."""
        return self.decoder.max_frame

    def set_max_frame(self, value: int) -> None:
        """Change the frame cap of both directions (after the handshake)."""
        self.decoder.max_frame = value

    def send(self, message: Message) -> None:
        """Encode and send one message (blocks until the kernel took it all).

        Raises
        ------
        ResourceLimitError
            If the frame exceeds :attr:`max_frame`; nothing is sent.
        OSError
            If the socket fails.
        """
        data = encode(message, self.decoder.max_frame)
        with self._send_lock:
            self.sock.sendall(data)

    def send_many(self, messages: Iterable[Message]) -> None:
        """Send several messages with one system call."""
        cap = self.decoder.max_frame
        data = b"".join(encode(m, cap) for m in messages)
        with self._send_lock:
            self.sock.sendall(data)

    def recv(self, timeout: float | None = None) -> Message | None:
        """Return the next message, or ``None`` at a clean end of stream.

        Parameters
        ----------
        timeout
            Seconds to wait; ``None`` waits for ever.

        Raises
        ------
        TimeoutError
            If no complete message arrived in time (bytes read so far are kept).
        ProtocolViolation
            If the peer sent a malformed or oversized frame.
        ConnectionClosedError
            If the stream ended in the middle of a frame.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._pending:
            if self._eof:
                return None
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0 or not _readable(self.sock, left):
                    raise TimeoutError("no message within the timeout")
            n = self.sock.recv_into(self._buf)
            if n == 0:
                self._eof = True
                if not self.decoder.at_boundary:
                    raise ConnectionClosedError("connection closed in the middle of a frame")
                return None
            self._pending.extend(self.decoder.feed(self._view[:n]))
        return self._pending.popleft()

    def close(self) -> None:
        """Close the socket (idempotent)."""
        try:
            self.sock.shutdown(_socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def _readable(sock: _socket.socket, timeout: float) -> bool:
    if hasattr(select, "poll"):
        p = select.poll()
        p.register(sock.fileno(), select.POLLIN)
        return bool(p.poll(timeout * 1000.0))
    r, _, _ = select.select([sock], [], [], timeout)  # pragma: no cover (no poll: not Linux)
    return bool(r)


__all__ = ["SocketChannel"]
