"""The Pit's resident memory at idle stays small (≤ 10 MB)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

PROBE = r"""
import json, sys, time
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096
from symphony.pit import Pit
before = rss()
pit = Pit.open(sys.argv[1], key=bytes(range(32)))
time.sleep(0.2)  # the flusher thread runs; nothing else happens
after = rss()
pit.close()
print(json.dumps({"before": before, "after": after}))
"""


def test_idle_pit_costs_at_most_10_mb(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path / "p")],
        capture_output=True,
        text=True,
        check=True,
    )
    m = json.loads(out.stdout)
    grown = m["after"] - m["before"]
    assert grown <= 10 * 2**20, f"an idle Pit grew the process by {grown / 2**20:.1f} MiB"
