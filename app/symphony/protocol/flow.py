"""Flow control: stream credit and the token bucket that rate-limits logs (sans-I/O).

Credit algorithm (see ``docs/protocol.md``): the receiver of a stream grants an initial window in
the request (``credit``); each ``stream_data`` frame costs one credit; the receiver adds more with
``credit`` frames (``grant`` ≥ 1) as its consumer drains items. A sender with no credit waits; a
sender that sends without credit commits a protocol violation.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from symphony.protocol.errors import ProtocolViolation
from symphony.protocol.messages import MAX_CREDIT


class CreditWindow:
    """Credit accounting of one stream, usable on either side.

    The sender calls :meth:`consume` before each item (or checks :attr:`available`); the receiver
    mirrors the same object with :meth:`receive` to detect a peer that overruns its credit.

    Parameters
    ----------
    initial
        The initial window granted in the request.
    """

    __slots__ = ("_available", "_sent")

    def __init__(self, initial: int) -> None:
        if not 0 <= initial <= MAX_CREDIT:
            raise ValueError(f"initial credit must be in [0, {MAX_CREDIT}]")
        self._available = initial
        self._sent = 0

    @property
    def available(self) -> int:
        """Items that may still be sent."""
        return self._available

    @property
    def sent(self) -> int:
        """Items consumed so far (the next ``seq``)."""
        return self._sent

    def consume(self) -> int:
        """Spend one credit for the next item and return its ``seq``.

        Raises
        ------
        ProtocolViolation
            If no credit is left (the receiver calls this for each item received).
        """
        if self._available <= 0:
            raise ProtocolViolation("stream item sent without credit")
        self._available -= 1
        seq = self._sent
        self._sent += 1
        return seq

    def grant(self, n: int) -> None:
        """Add ``n`` credits (a received or sent ``credit`` frame).

        Raises
        ------
        ProtocolViolation
            If ``n`` < 1 or the outstanding credit would exceed ``MAX_CREDIT``.
        """
        if n < 1 or self._available + n > MAX_CREDIT:
            raise ProtocolViolation(f"credit grant {n} out of range")
        self._available += n


class CreditGranter:
    """The receiver's replenishing policy: grant half a window each time half is consumed.

    Parameters
    ----------
    window
        The window granted in the request.
    """

    __slots__ = ("_pending", "_threshold", "window")

    def __init__(self, window: int) -> None:
        self.window = window
        self._threshold = max(1, window // 2)
        self._pending = 0

    def consumed(self, n: int = 1) -> int:
        """Record that the consumer processed ``n`` items.

        Returns
        -------
        int
            The grant to send now in a ``credit`` frame, or ``0`` to send nothing yet.
        """
        self._pending += n
        if self._pending >= self._threshold:
            grant, self._pending = self._pending, 0
            return grant
        return 0


class TokenBucket:
    """A token bucket: ``rate`` tokens per second, at most ``burst`` banked.

    Parameters
    ----------
    rate
        Tokens added per second (``0`` means nothing passes once the burst is spent).
    burst
        Capacity, and the initial fill.
    clock
        Monotonic clock in seconds.
    """

    __slots__ = ("_clock", "_last", "_tokens", "burst", "rate")

    def __init__(
        self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = float(rate)
        self.burst = float(burst)
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock()

    def try_take(self, n: float = 1.0) -> bool:
        """Take ``n`` tokens if available.

        Returns
        -------
        bool
            ``True`` if the tokens were taken, ``False`` if the caller must drop (or wait).
        """
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens >= n:
            self._tokens -= n
            return True
        return False


__all__ = ["CreditGranter", "CreditWindow", "TokenBucket"]
