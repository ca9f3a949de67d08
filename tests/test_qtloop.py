"""The asyncio loop on Qt: batched ready callbacks, the drain budget, no nesting, asyncio's API."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Callable, Iterator

import pytest
from PySide6.QtCore import QCoreApplication, QTimer

import symphony.qtloop
from symphony.qtloop import QtEventLoop

VAR: contextvars.ContextVar[str] = contextvars.ContextVar("VAR", default="unset")


@pytest.fixture
def loop() -> Iterator[QtEventLoop]:
    app = QCoreApplication.instance()
    assert app is not None
    lp = QtEventLoop(app)
    asyncio.set_event_loop(lp)
    try:
        yield lp
    finally:
        asyncio.set_event_loop(None)
        lp.close()


class QtTurns:
    """Counts turns of the Qt event loop (a zero-time timer firing) while it is started."""

    def __init__(self) -> None:
        self.count = 0
        self.timer = QTimer()
        self.timer.setInterval(0)
        self.timer.timeout.connect(self._tick)

    def _tick(self) -> None:
        self.count += 1


def test_callbacks_run_later_in_order_with_what_they_queue_in_one_drain(
    loop: QtEventLoop, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(symphony.qtloop, "DRAIN_BUDGET", 60.0)
    turns = QtTurns()
    seen: list[tuple[int, int]] = []

    def step(i: int) -> None:
        seen.append((i, turns.count))
        if i < 50:
            loop.call_soon(step, i + 1)

    async def main() -> None:
        turns.timer.start()
        loop.call_soon(step, 0)
        assert seen == []  # never inside call_soon
        while len(seen) < 51:
            await asyncio.sleep(0.001)

    loop.run_until_complete(main())
    turns.timer.stop()
    assert [i for i, _ in seen] == list(range(51))
    # the chain ran in one drain: Qt did not get a turn between two links of it
    assert len({count for _, count in seen}) == 1


def test_a_spent_budget_gives_qt_a_turn(loop: QtEventLoop, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(symphony.qtloop, "DRAIN_BUDGET", -1.0)  # one callback per drain
    turns = QtTurns()
    seen: list[int] = []

    async def main() -> None:
        turns.timer.start()
        for _ in range(5):
            loop.call_soon(lambda: seen.append(turns.count))
        while len(seen) < 5:
            await asyncio.sleep(0)

    loop.run_until_complete(main())
    turns.timer.stop()
    assert len(seen) == 5
    assert seen == sorted(seen)
    assert seen[-1] > seen[0]  # Qt ran between the callbacks


def test_run_ready_inside_a_callback_does_not_nest(loop: QtEventLoop) -> None:
    order: list[str] = []

    def first() -> None:
        order.append("first")
        loop.run_ready()  # must not run "second" inside "first"
        order.append("first done")

    async def main() -> None:
        loop.call_soon(first)
        loop.call_soon(lambda: order.append("second"))
        await asyncio.sleep(0.01)

    loop.run_until_complete(main())
    assert order == ["first", "first done", "second"]


def _from_qt(loop: QtEventLoop, fn: Callable[[], None]) -> None:
    """Run ``fn`` in a Qt timer callback (outside any drain), with the loop running."""
    done = asyncio.Event()

    def call() -> None:
        try:
            fn()
        finally:
            done.set()

    async def main() -> None:
        QTimer.singleShot(0, call)
        await done.wait()
        await asyncio.sleep(0.01)

    loop.run_until_complete(main())


def test_a_hold_queues_without_arming_the_timer_and_its_release_runs_the_queue(
    loop: QtEventLoop,
) -> None:
    ran: list[str] = []
    timer = loop._drain_timer  # the point of a hold: no start/stop of it per reply

    def read_replies() -> None:
        loop.hold()
        loop.hold()  # holds nest
        loop.call_soon(ran.append, "a")
        loop.call_soon(ran.append, "b")
        assert not timer.isActive()
        loop.release()
        assert ran == []  # only the last release drains
        loop.release()
        assert ran == ["a", "b"]  # at once, in order
        assert not timer.isActive()

    _from_qt(loop, read_replies)
    assert ran == ["a", "b"]


def test_what_a_release_leaves_runs_on_a_later_turn(
    loop: QtEventLoop, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(symphony.qtloop, "DRAIN_BUDGET", -1.0)  # one callback per drain
    ran: list[int] = []

    def read_replies() -> None:
        loop.hold()
        for i in range(3):
            loop.call_soon(ran.append, i)
        loop.release()
        assert ran == [0]
        assert loop._drain_timer.isActive()  # the rest is not forgotten

    _from_qt(loop, read_replies)
    assert ran == [0, 1, 2]


def test_a_release_inside_a_drain_leaves_the_queue_to_that_drain(loop: QtEventLoop) -> None:
    order: list[str] = []

    def first() -> None:
        loop.hold()
        loop.call_soon(order.append, "queued in first")
        loop.release()  # a drain is under way: it runs what was queued, after this callback
        order.append("first done")

    async def main() -> None:
        loop.call_soon(first)
        loop.call_soon(order.append, "second")
        await asyncio.sleep(0.01)

    loop.run_until_complete(main())
    assert order == ["first done", "second", "queued in first"]


def test_cancelled_handles_do_not_run(loop: QtEventLoop) -> None:
    ran: list[int] = []

    async def main() -> None:
        handle = loop.call_soon(ran.append, 1)
        loop.call_soon(ran.append, 2)
        handle.cancel()
        await asyncio.sleep(0.01)

    loop.run_until_complete(main())
    assert ran == [2]


def test_tasks_sleep_gather_cancel_and_errors(loop: QtEventLoop) -> None:
    async def work(i: int) -> int:
        await asyncio.sleep(0.001 * i)
        return i * i

    async def forever() -> None:
        await asyncio.sleep(3600)

    async def boom() -> None:
        raise ValueError("boom")

    async def main() -> list[int]:
        hung = asyncio.ensure_future(forever())
        await asyncio.sleep(0)
        hung.cancel()
        with pytest.raises(asyncio.CancelledError):
            await hung
        with pytest.raises(ValueError, match="boom"):
            await boom()
        return list(await asyncio.gather(*(work(i) for i in range(5))))

    assert loop.run_until_complete(main()) == [0, 1, 4, 9, 16]


def test_call_soon_threadsafe_keeps_the_context(loop: QtEventLoop) -> None:
    got: list[str] = []

    async def main() -> None:
        done = asyncio.Event()

        def report() -> None:
            got.append(VAR.get())
            done.set()

        def worker() -> None:
            ctx = contextvars.copy_context()
            ctx.run(VAR.set, "from the thread")
            loop.call_soon_threadsafe(report, context=ctx)

        t = threading.Thread(target=worker)
        t.start()
        await asyncio.wait_for(done.wait(), 10)
        t.join()

    loop.run_until_complete(main())
    assert got == ["from the thread"]


def test_a_closed_loop_refuses_callbacks() -> None:
    app = QCoreApplication.instance()
    lp = QtEventLoop(app)
    lp.close()
    with pytest.raises(RuntimeError, match="closed"):
        lp.call_soon(print)
