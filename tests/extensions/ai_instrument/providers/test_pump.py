"""The pump: a blocking producer on a worker, items and errors on the caller's thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from symphony.extensions.ai_instrument.providers.pump import Watch, pumped


class Cancelled(Exception):
    pass


def test_items_in_order_on_the_calling_thread() -> None:
    threads: set[str] = set()

    def source(stop: threading.Event) -> Iterator[int]:
        threads.add(threading.current_thread().name)
        yield from range(10)

    assert list(pumped(source)) == list(range(10))
    assert threads == {"provider-pump"}


def test_source_errors_are_raised_to_the_consumer() -> None:
    def source(stop: threading.Event) -> Iterator[int]:
        yield 1
        raise OSError("boom")

    got: list[int] = []
    with pytest.raises(OSError, match="boom"):
        got.extend(pumped(source))
    assert got == [1]


def test_watch_is_checked_while_the_source_blocks_and_cancel_stops_it() -> None:
    checks = []
    aborted = threading.Event()
    done = threading.Event()

    def source(stop: threading.Event) -> Iterator[int]:
        try:
            stop.wait(10)  # a blocking read, unblocked by abort
            yield 1
        finally:
            done.set()

    def check() -> None:
        checks.append(time.monotonic())
        if len(checks) >= 3:
            raise Cancelled

    def abort() -> None:
        aborted.set()

    t0 = time.monotonic()
    with pytest.raises(Cancelled):
        list(pumped(source, Watch(check=check, interval=0.02), abort))
    assert time.monotonic() - t0 < 2
    assert aborted.is_set()
    assert done.is_set()  # the worker finished before the consumer returned


def test_consumer_stopping_early_stops_the_producer() -> None:
    produced = []

    def source(stop: threading.Event) -> Iterator[int]:
        for i in range(10_000):
            produced.append(i)
            yield i

    for x in pumped(source):
        if x == 2:
            break
    assert len(produced) < 20  # bounded run-ahead
