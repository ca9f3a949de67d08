"""Run a blocking producer (a model's decode loop, an HTTP read) off the handler thread.

The SDK answers the host's pings from the handler thread, and only while a handler calls into its
context. A handler blocked inside llama.cpp's prompt evaluation or in a socket read would look
unresponsive and could not notice a cancel. :func:`pumped` runs the producer on a worker thread
and hands its items to the calling (handler) thread through a small queue; while waiting it calls
``watch.check()`` every ``interval`` seconds, which answers pings and raises on cancel or deadline.

When the consumer stops early (cancel, an exception from the token sink), the worker is told to
stop after its current item, ``abort`` unblocks it (e.g. shuts a socket down), and the consumer
waits for it to finish — still answering pings — so a model is never used by two threads at once.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from typing import Any, Final, TypeVar

T = TypeVar("T")

#: Items the worker may run ahead of the consumer (bounded, so credit back-pressure holds).
AHEAD: Final = 4


def _nothing() -> None:
    return None


@dataclass(frozen=True, slots=True)
class Watch:
    """How a provider observes its request while it waits.

    Attributes
    ----------
    check
        Raises when the request is cancelled or past its deadline (answers pings first).
    idle
        Answers pings without raising (used while waiting for the worker to stop).
    interval
        Seconds between checks.
    """

    check: Callable[[], None] = _nothing
    idle: Callable[[], object] = _nothing
    interval: float = 0.05


NO_WATCH: Final = Watch()


def pumped(
    source: Callable[[threading.Event], Iterator[T]],
    watch: Watch = NO_WATCH,
    abort: Callable[[], None] = _nothing,
) -> Generator[T, None, None]:
    """Yield the items of ``source(stop)``, produced on a worker thread.

    Parameters
    ----------
    source
        Called on the worker with a ``stop`` event; returns the iterator to drain. It should
        return soon after ``stop`` is set (for sleeps: ``stop.wait(seconds)``).
    watch
        Checked while no item is ready.
    abort
        Called (on the consumer's thread) when the consumer stops early, to unblock the worker.

    Yields
    ------
    T
        The source's items, in order. An exception raised by the source is re-raised here.
    """
    q: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=AHEAD)
    stop = threading.Event()

    def put(entry: tuple[str, Any]) -> bool:
        while not stop.is_set():
            try:
                q.put(entry, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        it: Iterator[T] | None = None
        try:
            it = source(stop)
            for item in it:
                if not put(("item", item)):
                    break
            put(("end", None))
        except BaseException as e:  # handed to the consumer, raised there
            put(("error", e))
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()

    worker = threading.Thread(target=work, name="provider-pump", daemon=True)
    worker.start()
    finished = False
    try:
        while True:
            try:
                kind, value = q.get(timeout=watch.interval)
            except queue.Empty:
                watch.check()
                continue
            if kind == "item":
                yield value
            elif kind == "error":
                finished = True
                raise value
            else:
                finished = True
                return
    finally:
        if not finished:
            stop.set()
            abort()
        while worker.is_alive():
            worker.join(watch.interval)
            watch.idle()
