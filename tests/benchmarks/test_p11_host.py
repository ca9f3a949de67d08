"""P11-host: request/response round trip through the Qt host (``ExtensionHost.request``).

Same child as P11 (the SDK demo extension), but the host side is the real one: the request goes
through the host's write queue and ``QSocketNotifier``, the answer through the Qt event loop into a
``concurrent.futures.Future``. Recorded, never asserted.

Group ``P11-busy-gui``: the same round trip while the GUI thread is busy — a zero-interval
``QTimer`` burns ``BUSY_SLICE_MS`` of CPU on every turn of the event loop (a stand-in for painting
a large Harmony Board), so each reply waits behind whatever slice is running. The caller is what
the product runs on that thread: a coroutine awaiting ``ExtensionHost.call`` on the app's asyncio
loop (:class:`symphony.qtloop.QtEventLoop`), as the conductor does. Target p99 ≤ 2 ms.
``baseline:idle-gui`` is the same loop with the timer doing nothing.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from PySide6.QtCore import QCoreApplication, QTimer
from pytest_benchmark.fixture import BenchmarkFixture

from symphony.extension_host.host import ExtensionHost
from symphony.qtloop import QtEventLoop

SDK_FIXTURES = Path(__file__).parents[1] / "sdk" / "fixtures"
SAMPLES = 1000
BUSY_SLICE_MS = 1.0


@pytest.mark.benchmark(group="P11-host")
def test_p11_host_roundtrip(benchmark: BenchmarkFixture) -> None:
    if QCoreApplication.instance() is None:
        QCoreApplication([])
    host = ExtensionHost([SDK_FIXTURES])
    try:
        for i in range(100):  # start + warm up
            host.request("test.demo", "echo", {"n": i}).wait()
        samples = []
        for i in range(SAMPLES):
            t0 = time.perf_counter_ns()
            host.request("test.demo", "echo", {"n": i}).wait()
            samples.append(time.perf_counter_ns() - t0)
        benchmark(lambda: host.request("test.demo", "echo", {"n": 0}).wait())
    finally:
        host.shutdown(grace=5)
    samples.sort()
    stats = {
        "p50_us": round(samples[SAMPLES // 2] / 1000, 1),
        "p99_us": round(samples[(SAMPLES * 99) // 100] / 1000, 1),
    }
    benchmark.extra_info["target"] = "p50 <= 60 us, p99 <= 300 us (P11 targets, Qt host included)"
    benchmark.extra_info.update(stats)
    print(f"\nP11-host symphony: {stats}")


def _burn(ms: float) -> None:
    end = time.perf_counter() + ms / 1000
    while time.perf_counter() < end:
        pass


@pytest.mark.benchmark(group="P11-busy-gui")
@pytest.mark.parametrize("case", ["symphony", "baseline:idle-gui"])
def test_p11_host_busy_gui(benchmark: BenchmarkFixture, case: str) -> None:
    app = QCoreApplication.instance() or QCoreApplication([])
    host = ExtensionHost([SDK_FIXTURES])
    loop = QtEventLoop(app)
    busy = QTimer()
    busy.setInterval(0)
    slice_ms = BUSY_SLICE_MS if case == "symphony" else 0.0
    busy.timeout.connect(lambda: _burn(slice_ms))

    async def round_trips(n: int) -> list[int]:
        samples = []
        for i in range(n):
            t0 = time.perf_counter_ns()
            await host.call("test.demo", "echo", {"n": i})
            samples.append(time.perf_counter_ns() - t0)
        return samples

    try:
        with loop:
            loop.run_until_complete(round_trips(50))  # start + warm up
            busy.start()
            # One round of SAMPLES round trips: the table's time is theirs together; the
            # per-trip percentiles are in extra_info (run_until_complete per trip would time
            # the loop's start and stop, a slice or two each, not the trip).
            samples = benchmark.pedantic(
                lambda: loop.run_until_complete(round_trips(SAMPLES)), rounds=1, iterations=1
            )
    finally:
        busy.stop()
        host.shutdown(grace=5)
    samples.sort()
    n = len(samples)
    stats = {
        "p50_us": round(samples[n // 2] / 1000, 1),
        "p99_us": round(samples[(n * 99) // 100] / 1000, 1),
        "busy_slice_ms": slice_ms,
        "round_trips": n,
    }
    if case == "symphony":
        benchmark.extra_info["target"] = "p99 <= 2 ms with the GUI thread busy"
    benchmark.extra_info.update(stats)
    print(f"\nP11-busy-gui {case}: {stats}")
