"""The asyncio event loop on the Qt event loop: qasync with ready callbacks run in batches.

Symphony's coroutines (the conductor, the run controller) live on the GUI thread, on an asyncio
loop that *is* the Qt event loop (``qasync``). qasync turns every ``call_soon`` into a Qt timer of
its own: a task step, a future's callback, each costs a ``startTimer``/``killTimer`` pair and a
timer event, and waits behind every other ready Qt source — a 1 ms paint slice included, once per
hop. :class:`QtEventLoop` keeps qasync for everything else (timers, readers, executors, running
and stopping) and replaces the ready queue:

* ``call_soon`` appends to one queue; one zero-time ``QTimer`` drains it, whatever its length;
* a drain runs what was queued *and what those callbacks queue*, FIFO, for at most
  :data:`DRAIN_BUDGET` seconds, then hands the rest to the next Qt turn, so painting and input
  still get their turn;
* :meth:`QtEventLoop.run_ready` runs the queue now. Code that completes asyncio futures from a
  Qt callback calls it when it is done — the extension host after each read of a child's socket
  — so the awaiting coroutines resume in the same Qt callback instead of one turn later.

A node of a melody that runs in an extension process therefore goes from the child's answer to
the next node's request in one Qt callback (``docs/conductor.md``, P9).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Final

import qasync
from PySide6.QtCore import QCoreApplication, QTimer

__all__ = ["DRAIN_BUDGET", "QtEventLoop"]

#: Longest a drain of ready callbacks runs before Qt gets a turn, in seconds.
DRAIN_BUDGET: Final = 0.002


class QtEventLoop(qasync.QEventLoop):  # type: ignore[misc]  # qasync is untyped
    """A ``qasync.QEventLoop`` whose ready callbacks run in batches (see the module docs).

    Parameters
    ----------
    app
        The running ``QCoreApplication`` (default: the instance).
    already_running
        As for qasync: the Qt event loop already runs (the caller stops and closes the loop).
    """

    def __init__(self, app: QCoreApplication | None = None, *, already_running: bool = False):
        super().__init__(app or QCoreApplication.instance(), already_running=already_running)
        self._soon: deque[asyncio.Handle] = deque()
        self._draining = False
        self._drain_timer = QTimer()
        self._drain_timer.setSingleShot(True)
        self._drain_timer.setInterval(0)
        self._drain_timer.timeout.connect(self.run_ready)

    def call_soon(
        self,
        callback: Callable[..., object],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> asyncio.Handle:
        """Queue ``callback(*args)`` for the next drain (the asyncio contract: never now)."""
        if self.is_closed():
            raise RuntimeError("Event loop is closed")
        handle = asyncio.Handle(callback, args, self, context=context)
        self._soon.append(handle)
        if not self._draining and not self._drain_timer.isActive():
            self._drain_timer.start()
        return handle

    def call_soon_threadsafe(
        self,
        callback: Callable[..., object],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> None:
        """Queue ``callback(*args)`` from any thread (through qasync's queued signal)."""
        if context is not None:  # qasync's own version drops the context
            callback, args = functools.partial(context.run, callback, *args), ()
        super().call_soon_threadsafe(callback, *args)

    def run_ready(self) -> None:
        """Run the ready callbacks now, FIFO, including those they queue, within the budget.

        Does nothing when called from inside a callback of this loop (asyncio never runs one
        callback inside another). What is left after :data:`DRAIN_BUDGET`, or after the loop was
        stopped, waits for the next Qt turn.
        """
        if self._draining:
            return
        queue = self._soon
        if not queue:
            return
        self._draining = True
        end = time.perf_counter() + DRAIN_BUDGET
        try:
            while queue:
                handle = queue.popleft()
                if not handle._cancelled:
                    handle._run()
                if time.perf_counter() > end or not self.is_running():
                    break
        finally:
            self._draining = False
            if queue:
                if not self.is_closed():
                    self._drain_timer.start()
            elif self._drain_timer.isActive():
                # started by a call_soon outside a drain (a reply read by the host): nothing is
                # left for it, and an empty timer event costs as much as a full one
                self._drain_timer.stop()

    def close(self) -> None:
        """Close the loop; ready callbacks not run by now are dropped, as asyncio does."""
        self._drain_timer.stop()
        self._soon.clear()
        super().close()
