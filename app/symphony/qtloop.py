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
  — so the awaiting coroutines resume in the same Qt callback instead of one turn later;
* between :meth:`QtEventLoop.hold` and :meth:`QtEventLoop.release` (which drains), ``call_soon``
  queues without arming the timer: a reply read by the host would otherwise start it only for
  the drain that follows at once to stop it again (~3 µs of ``QTimer`` calls per reply).

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
        self._held = 0
        # whether _drain_timer is started, mirrored: isActive() is a Qt call per drain
        self._armed = False
        self._drain_timer = QTimer()
        self._drain_timer.setSingleShot(True)
        self._drain_timer.setInterval(0)
        self._drain_timer.timeout.connect(self._on_drain_timer)

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
        if not (self._draining or self._held or self._armed):
            self._armed = True
            self._drain_timer.start()
        return handle

    def hold(self) -> None:
        """Queue ``call_soon`` callbacks without arming the drain timer until :meth:`release`.

        For a caller that will drain right after what it is doing (the extension host reading
        replies). Holds nest; call :meth:`release` once for each, in a ``finally``.
        """
        self._held += 1

    def release(self) -> None:
        """End a :meth:`hold`; the last one runs the ready callbacks now (:meth:`run_ready`)."""
        self._held -= 1
        if not self._held:
            self.run_ready()
            if self._soon and not self._armed and not self._draining and not self.is_closed():
                # left for later (the budget, a stopped loop, or a drain already under way that
                # will arm it itself): the timer makes sure it runs
                self._armed = True
                self._drain_timer.start()

    def _on_drain_timer(self) -> None:
        self._armed = False
        self.run_ready()

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
                    self._armed = True
                    self._drain_timer.start()
            elif self._armed:
                # started by a call_soon outside a drain: nothing is left for it, and an empty
                # timer event costs as much as a full one
                self._armed = False
                self._drain_timer.stop()

    def close(self) -> None:
        """Close the loop; ready callbacks not run by now are dropped, as asyncio does."""
        self._armed = False
        self._drain_timer.stop()
        self._soon.clear()
        super().close()
