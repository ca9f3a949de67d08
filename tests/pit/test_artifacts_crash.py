"""Crash consistency: SIGKILL a process that stores artifacts durably, at random moments.

Every artifact whose id the child printed (acknowledged after ``durable=True``) must be there after
reopening, with its bytes intact, and ``verify()`` must pass.
"""

from __future__ import annotations

import gc
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from symphony.pit import Pit

KEY = bytes(range(32))

CHILD = textwrap.dedent(
    """
    import sys
    from symphony.pit import Pit

    def payload(i: int) -> bytes:
        if i % 7 == 3:  # a large, chunked blob now and then (segment synced by the hook)
            return bytes((i * 31 + j) % 251 for j in range(256)) * (4096 + i % 5 * 1024)
        if i % 5 == 1:  # a medium object, not inlined in the journal
            return (b"medium %d " % i) * 9000
        return b"artifact %d " % i * (1 + i % 40)

    p = Pit.open(sys.argv[1], key=bytes(range(32)))
    start = int(sys.argv[2])
    for i in range(start, start + 100_000):
        if i % 11 == 0:
            batch = [(f"batch-{i}-{k}", payload(i + k)) for k in range(3)]
            batch = [b for b in batch if len(b[1]) < 1 << 20]
            ids = p.artifacts.put_many(batch, durable=True)
            print("many", i, *ids, flush=True)
        else:
            aid = p.artifacts.put(f"a{i}", payload(i), durable=True)
            print("one", i, aid, flush=True)
    """
)


def payload(i: int) -> bytes:
    if i % 7 == 3:
        return bytes((i * 31 + j) % 251 for j in range(256)) * (4096 + i % 5 * 1024)
    if i % 5 == 1:
        return (b"medium %d " % i) * 9000
    return b"artifact %d " % i * (1 + i % 40)


@pytest.mark.slow
def test_sigkill_never_loses_acknowledged_artifacts(tmp_path: Path) -> None:
    d = tmp_path / "pit"
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    rng = random.Random(1234)
    # artifact id -> payload index: the bytes are made again to compare (holding them all took
    # 16 GB of memory on a fast disk, where the child acknowledges several GB in 12 trials)
    acked: dict[int, int] = {}
    start = 0
    for _trial in range(12):
        child = subprocess.Popen(
            [sys.executable, str(script), str(d), str(start)],
            stdout=subprocess.PIPE,
        )
        assert child.stdout is not None
        fd = child.stdout.fileno()
        os.set_blocking(fd, False)
        deadline = time.monotonic() + rng.uniform(0.3, 1.5)
        out = b""
        # Read acknowledgements until the deadline, then kill mid-flight.
        while time.monotonic() < deadline and child.poll() is None:
            try:
                out += os.read(fd, 1 << 16)
            except BlockingIOError:
                time.sleep(0.002)
        child.send_signal(signal.SIGKILL)
        child.wait()
        os.set_blocking(fd, True)
        while chunk := os.read(fd, 1 << 16):
            out += chunk
        child.stdout.close()
        lines = out.decode().splitlines(keepends=True)
        last_i = start
        for line in lines:
            if not line.endswith("\n"):
                continue  # torn print: not an acknowledgement
            parts = line.split()
            i = int(parts[1])
            if parts[0] == "one":
                acked[int(parts[2])] = i
                last_i = max(last_i, i + 1)
            else:
                ks = [k for k in range(3) if len(payload(i + k)) < 1 << 20]
                for k, aid in zip(ks, parts[2:], strict=True):
                    acked[int(aid)] = i + k
                last_i = max(last_i, i + 3)
        start = last_i + 10
        p = Pit.open(d, key=KEY)
        try:
            for aid, index in acked.items():
                assert p.artifacts.get(aid) == payload(index), f"artifact {aid} changed"
            assert p.artifacts.verify() >= len(acked)
        finally:
            p.close()
            del p
            gc.collect()
    assert len(acked) > 20
