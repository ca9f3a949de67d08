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
from os import sched_yield as _sched_yield

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
    linger
        Seconds :meth:`recv` (without a timeout) keeps trying a non-blocking read before it
        blocks, so that a message arriving at once — the next request of a chain, a reply — is
        taken by a thread that never slept (see below); ``0`` blocks at once. Adaptive: a linger
        that catches nothing makes the next ones block at once, 1, 2, 4 … up to 64 times, until
        one catches something again or a message arrives within ``linger`` of our last send.

    Notes
    -----
    Why linger: on a virtual machine whose idle vCPUs halt (no guest halt-polling), a thread woken
    from a blocking read waits ~30–100 µs for its vCPU and then runs with cold caches (decoding a
    49-byte frame took 20 µs instead of 5). The spin yields the CPU (``sched_yield``) on every
    turn, so a handler thread of the same process woken meanwhile runs first; it costs at most
    ``linger`` of CPU per message received (500 µs by default, from our last send on) and took a
    plain request/reply round trip from ~100 µs to ~30 µs here. Where ``MSG_DONTWAIT`` does not
    exist, or on a socket with a timeout, :meth:`recv` blocks at once.
    """

    def __init__(
        self,
        sock: _socket.socket,
        max_frame: int = HANDSHAKE_MAX_FRAME,
        recv_size: int = 65536,
        *,
        linger: float = 500e-6,
    ) -> None:
        self.sock = sock
        self.decoder = FrameDecoder(max_frame)
        self.linger = linger
        self._pending: deque[Message] = deque()
        self._send_lock = threading.Lock()
        self._buf = bytearray(recv_size)
        self._view = memoryview(self._buf)
        self._eof = False
        self._linger_skip = 0
        self._linger_misses = 0
        self._sent_at = 0.0  # when the last send finished (any thread)

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
            self._sent_at = time.perf_counter()

    def send_many(self, messages: Iterable[Message]) -> None:
        """Send several messages with one system call."""
        cap = self.decoder.max_frame
        data = b"".join(encode(m, cap) for m in messages)
        with self._send_lock:
            self.sock.sendall(data)
            self._sent_at = time.perf_counter()

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
            n = self._linger() if self.linger > 0 and _MSG_DONTWAIT and deadline is None else -1
            if n < 0:
                n = self.sock.recv_into(self._buf)
                if (self._linger_skip or self._linger_misses) and (
                    time.perf_counter() - self._sent_at < self.linger
                ):
                    # a linger would have caught this one: the peer answers fast again
                    self._linger_skip = self._linger_misses = 0
            if n == 0:
                self._eof = True
                if not self.decoder.at_boundary:
                    raise ConnectionClosedError("connection closed in the middle of a frame")
                return None
            self._pending.extend(self.decoder.feed(self._view[:n]))
        return self._pending.popleft()

    def _linger(self) -> int:
        """Read without blocking for up to :attr:`linger` seconds; ``-1`` if nothing came."""
        if self._linger_skip:
            self._linger_skip -= 1
            return -1
        if self.sock.gettimeout() is not None:  # a read would wait out the socket's timeout
            return -1
        recv_into, buf, linger = self.sock.recv_into, self._buf, self.linger
        until = time.perf_counter() + linger
        while True:
            try:
                n = recv_into(buf, 0, _MSG_DONTWAIT)
            except BlockingIOError:
                # an answer sent meanwhile (by a handler thread) restarts the wait: what comes
                # next is most likely the peer's reaction to it
                now, sent = time.perf_counter(), self._sent_at
                if now < until or now < sent + linger:
                    _sched_yield()  # a thread of ours woken meanwhile (a handler) runs first
                    continue
                self._linger_misses += 1
                self._linger_skip = 1 << min(self._linger_misses - 1, 6)
                return -1
            self._linger_misses = 0
            return n

    def close(self) -> None:
        """Close the socket (idempotent)."""
        try:
            self.sock.shutdown(_socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


#: ``recv`` flag for one non-blocking call (Linux, the BSDs, macOS); elsewhere no linger.
_MSG_DONTWAIT: int = getattr(_socket, "MSG_DONTWAIT", 0)


def _readable(sock: _socket.socket, timeout: float) -> bool:
    if hasattr(select, "poll"):
        p = select.poll()
        p.register(sock.fileno(), select.POLLIN)
        return bool(p.poll(timeout * 1000.0))
    r, _, _ = select.select([sock], [], [], timeout)  # pragma: no cover (no poll: not Linux)
    return bool(r)


__all__ = ["SocketChannel"]
