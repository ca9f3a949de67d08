"""16 Python threads hammering the pool: never a lost or double-granted slot."""

from __future__ import annotations

import threading
from typing import Any

from symphony.pit import AcquireTimeoutError, PoolExhaustedError

THREADS = 16
ROUNDS = 400


def test_sixteen_threads_never_lose_or_double_grant_a_slot(pit: Any) -> None:
    pool = pit.pool
    slots = 4
    pool.register("m", slots=slots, price_per_call=0.001)
    holders = [0] * slots
    guard = threading.Lock()
    violations: list[str] = []
    granted = [0] * THREADS
    start = threading.Barrier(THREADS)

    def worker(n: int) -> None:
        start.wait()
        for i in range(ROUNDS):
            try:
                # Half the threads wait (GIL released), half spin on the non-blocking path.
                if n % 2:
                    lease = pool.acquire("m", owner=f"t{n}", priority=i % 3, timeout=5.0)
                else:
                    lease = pool.try_acquire("m", owner=f"t{n}")
            except (PoolExhaustedError, AcquireTimeoutError):
                continue
            with guard:
                holders[lease.slot] += 1
                if holders[lease.slot] != 1:
                    violations.append(f"slot {lease.slot} granted twice")
            granted[n] += 1
            with guard:
                holders[lease.slot] -= 1
            pool.release(lease)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert violations == []
    info = pool.info("m")
    assert info.in_use == 0
    assert pool.leased() == 0
    assert info.calls == sum(granted)
    assert sum(granted[1::2]) == (THREADS // 2) * ROUNDS  # every waiting acquire got a slot
    # All slots free again: exactly `slots` can be taken.
    leases = [pool.try_acquire("m") for _ in range(slots)]
    assert sorted(lease.slot for lease in leases) == list(range(slots))
    for lease in leases:
        pool.release(lease)
